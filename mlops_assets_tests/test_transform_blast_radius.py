"""No blast radius: a failed or defective day in the warehouse never fails another day's run.

The dbt tests of the daily models and of the stg_flights/stg_weather views are asset checks scoped to the partition
window being built, so they still catch the defects of their own day. Real in-process Dagster runs of the raw and
transform assets on a small warehouse of the test's own (lake, landing zone and DuckLake under tmp_path).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from mlops_assets.defs import raw, transform
from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.resources import build_resources
from mlops_assets.lib.landing import land_days
from mlops_assets.lib.raw_lake import partition_uri, quarantine_uri
from mlops_assets.lib.raw_tables import landed_file_path
from mlops_assets.lib.warehouse import WarehouseLocation
from mlops_assets.settings import Settings
from mlops_assets_tests.helpers import materialize_range

START, GOOD_DAY, BAD_DAY, NEXT_DAY = date(2013, 1, 1), date(2013, 1, 2), date(2013, 1, 3), date(2013, 1, 4)
UNKNOWN_CARRIER = "ZZ"  # a well-formed code (passes the raw gate) that stg_airlines does not know: a dbt test fails


def _settings(root: Path) -> Settings:
    # The product's settings for the test's own lake, landing zone and warehouse (dbt gets them as --vars).
    return replace(
        SETTINGS,
        landing_root=str(root / "landing"),
        lake_root=str(root / "lake"),
        warehouse_catalog=f"sqlite:{root / 'warehouse.sqlite'}",
        warehouse_data_path=f"{root / 'warehouse'}/",
    )


def _defs(root: Path) -> dg.Definitions:
    resources = build_resources(_settings(root))
    return dg.Definitions.merge(
        raw.defs,
        transform.defs,
        dg.Definitions(resources={"lake": resources["lake"], "dbt": resources["dbt"]}, executor=dg.in_process_executor),
    )


def _warehouse(root: Path) -> WarehouseLocation:
    return WarehouseLocation.from_settings(_settings(root))


def _deliver_bad_day(landing: Path) -> None:
    """BAD_DAY's flights: one flight of an unknown carrier, and two rows whose times would break stg_flights'
    make_timestamp for every day if they reached the lake (minute 75)."""
    path = landed_file_path(landing, "flights", BAD_DAY)
    frame = pl.read_csv(path, infer_schema=False)
    index = pl.int_range(pl.len())
    frame = frame.with_columns(
        pl.when(index == 0).then(pl.lit(UNKNOWN_CARRIER)).otherwise(pl.col("carrier")).alias("carrier"),
        pl.when(index == 1).then(pl.lit("2475")).otherwise(pl.col("sched_dep_time")).alias("sched_dep_time"),
        pl.when(index == 2).then(pl.lit("2475")).otherwise(pl.col("sched_arr_time")).alias("sched_arr_time"),
    )
    frame.write_csv(path)


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}


def test_a_failed_and_a_defective_day_never_fail_the_next_day(tmp_path: Path) -> None:
    defs = _defs(tmp_path)
    land_days(tmp_path / "landing", START, NEXT_DAY)
    _deliver_bad_day(tmp_path / "landing")
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        first = materialize_range(defs, instance, "group:raw or group:transform", START, GOOD_DAY)
        assert first.success

        # The bad day: the gate quarantines the 2475 rows; the unknown carrier reaches the lake and its own day's
        # scoped dbt test fails the run.
        failed = materialize_range(defs, instance, "tag:daily", BAD_DAY, BAD_DAY, raise_on_error=False)
        assert not failed.success
        failed_checks = sorted(name for name, passed in _check_results(failed).items() if not passed)
        assert failed_checks == ["relationships_stg_flights_carrier__carrier__ref_stg_airlines_"]
        quarantined = pl.read_parquet(quarantine_uri(str(tmp_path / "lake"), "flights", BAD_DAY))
        assert quarantined.height == 2
        published = pl.read_parquet(partition_uri(str(tmp_path / "lake"), "flights", BAD_DAY))
        assert published.filter(
            (pl.col("sched_dep_time") % 100 >= 60) | (pl.col("sched_arr_time") % 100 >= 60)
        ).is_empty()
        assert published.filter(pl.col("carrier") == UNKNOWN_CARRIER).height == 1

        # A defective row written straight into a neighbouring day of the warehouse: a duplicated flight with an
        # impossible label and hour, which fails unique, accepted_values and accepted_range on a whole-table scan.
        with _warehouse(tmp_path).connect(read_only=False) as con:
            con.execute(
                "insert into flights_enriched select * replace (7 as is_delayed, 99 as sched_dep_hour) "
                "from flights_enriched where flight_date = ? limit 1",
                [GOOD_DAY],
            )

        # The good neighbour runs clean: every check of its run judged its own day, and passed.
        following = materialize_range(defs, instance, "tag:daily", NEXT_DAY, NEXT_DAY)
        assert following.success
        checks = _check_results(following)
        assert {"unique_flights_enriched_flight_id", "accepted_values_flights_enriched_is_delayed__0__1"} <= set(checks)
        assert "relationships_stg_flights_carrier__carrier__ref_stg_airlines_" in checks
        assert all(checks.values()), checks

    with _warehouse(tmp_path).connect() as con:
        days = dict(con.execute("select flight_date, count(*) from flights_enriched group by 1").fetchall())
        # The staging view reads the whole lake, the bad day included, without error.
        lake_days = con.execute("select count(distinct flight_date) from stg_flights").fetchone()[0]
        defective = con.execute("select count(*) from flights_enriched where is_delayed = 7").fetchone()[0]
    assert lake_days == 4
    assert set(days) == {START, GOOD_DAY, NEXT_DAY} and days[NEXT_DAY] > 600
    assert defective == 1  # the bad row is still there: the next day's run neither failed on it nor touched it
