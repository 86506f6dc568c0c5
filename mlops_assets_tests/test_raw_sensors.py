"""The landing sensor on a real instance: a day is requested once both tables landed, or after the wait."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.defs.common import LakeResource
from mlops_assets.defs.raw import defs as raw_defs
from mlops_assets.defs.raw.sensors import landing_sensor
from mlops_assets.lib.landing import LANDING_WAIT, land_days
from mlops_assets_tests.helpers import warehouse_config

DAY = date(2013, 3, 2)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def lake(tmp_path: Path) -> LakeResource:
    return LakeResource(
        landing_root=str(tmp_path / "landing"),
        lake_root=str(tmp_path / "lake"),
        warehouse=warehouse_config(tmp_path / "warehouse"),
    )


def _evaluate(instance: dg.DagsterInstance, lake: LakeResource, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lake": lake})
    result = landing_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _ranges(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [
        (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"])
        for request in result.run_requests or []
        if request.job_name == "raw_daily_job"
    ]


def _land_only(lake: LakeResource, table: str, start: date, end: date) -> None:
    """Land [start, end], then take away the other daily table's files: that table has not arrived yet."""
    land_days(Path(lake.landing_root), start, end)
    other = "weather" if table == "flights" else "flights"
    for path in (Path(lake.landing_root) / other).glob("*.csv"):
        path.unlink()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_day_waits_for_its_missing_table_then_runs_once_both_are_there(
    instance: dg.DagsterInstance, lake: LakeResource
) -> None:
    _land_only(lake, "flights", DAY, DAY)
    first = _evaluate(instance, lake, None)
    assert _ranges(first) == []  # the dimensions landed with the day are requested; the day is not
    # Not remembered as handled: the next evaluation still sees the day's flights file as new.
    assert f"flights/{DAY}.csv" not in json.loads(first.cursor or "{}")

    second = _evaluate(instance, lake, first.cursor)
    assert not second.run_requests
    assert second.skip_reason is not None and f"weather of {DAY}" in second.skip_reason.skip_message

    later = Path(lake.landing_root).parent / "later"
    land_days(later, DAY, DAY)
    (later / "weather" / f"{DAY}.csv").rename(Path(lake.landing_root) / "weather" / f"{DAY}.csv")
    third = _evaluate(instance, lake, second.cursor)
    assert _ranges(third) == [(DAY.isoformat(), DAY.isoformat())]
    # Handled: nothing more until a file changes again.
    assert _ranges(_evaluate(instance, lake, third.cursor)) == []


def test_complete_days_run_as_one_range_while_an_incomplete_one_waits(
    instance: dg.DagsterInstance, lake: LakeResource
) -> None:
    land_days(Path(lake.landing_root), date(2013, 3, 1), date(2013, 3, 4))
    (Path(lake.landing_root) / "weather" / "2013-03-04.csv").unlink()
    result = _evaluate(instance, lake, None)
    assert _ranges(result) == [("2013-03-01", "2013-03-03")]
    assert "flights/2013-03-04.csv" not in json.loads(result.cursor or "{}")


def test_after_the_wait_the_day_runs_alone_and_its_missing_table_fails_by_name(
    instance: dg.DagsterInstance, lake: LakeResource
) -> None:
    _land_only(lake, "flights", DAY, DAY)
    _age(Path(lake.landing_root) / "flights" / f"{DAY}.csv", LANDING_WAIT.total_seconds() + 60)
    result = _evaluate(instance, lake, None)
    assert _ranges(result) == [(DAY.isoformat(), DAY.isoformat())]
    request = next(r for r in result.run_requests or [] if r.job_name == "raw_daily_job")
    assert request.tags["mlops/landing_timeout"] == "weather"
    assert f"flights/{DAY}.csv" in json.loads(result.cursor or "{}")

    # The requested run, executed for real: flights publishes, weather fails naming the file and the fix.
    run = (
        dg.Definitions.merge(raw_defs, dg.Definitions(resources={"lake": lake}))
        .resolve_job_def("raw_daily_job")
        .execute_in_process(instance=instance, partition_key=DAY.isoformat(), raise_on_error=False)
    )
    failure = next(event for event in run.all_events if event.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert f"asset raw/weather partition {DAY}" in message
    assert "rule not_landed" in message and f"mlops-assets land {DAY}" in message
    assert (Path(lake.raw_table_uri("flights")) / f"date={DAY}" / "data.parquet").exists()


def test_re_landing_one_table_of_a_complete_day_requests_it_again(
    instance: dg.DagsterInstance, lake: LakeResource
) -> None:
    land_days(Path(lake.landing_root), DAY, DAY)
    first = _evaluate(instance, lake, None)
    assert _ranges(first) == [(DAY.isoformat(), DAY.isoformat())]
    _age(Path(lake.landing_root) / "weather" / f"{DAY}.csv", 10)  # a new mtime: re-landed
    assert _ranges(_evaluate(instance, lake, first.cursor)) == [(DAY.isoformat(), DAY.isoformat())]


def test_a_sensor_without_cursor_skips_days_ingested_after_they_landed(
    instance: dg.DagsterInstance, lake: LakeResource
) -> None:
    """A fresh (or reset) cursor on a landing zone ingested by other runs (a CLI backfill): only what changed since
    its raw partition was materialised is requested, not every landed day again."""
    land_days(Path(lake.landing_root), date(2013, 3, 1), date(2013, 3, 3))
    # Ingested after landing (what a `dagster asset materialize` range run records); 2013-03-03 never was.
    for table in ("flights", "weather"):
        for day in ("2013-03-01", "2013-03-02"):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["raw", table], partition=day))
    for table in ("planes", "airports", "airlines"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["raw", table]))
    first = _evaluate(instance, lake, None)
    assert _ranges(first) == [("2013-03-03", "2013-03-03")]
    assert not [r for r in first.run_requests or [] if r.job_name == "raw_dimensions_job"]
    # An ingested day landed again afterwards is new again, with or without a cursor.
    _age(Path(lake.landing_root) / "flights" / "2013-03-01.csv", -60)  # an mtime after the materialisation
    assert _ranges(_evaluate(instance, lake, None)) == [("2013-03-01", "2013-03-01"), ("2013-03-03", "2013-03-03")]
    assert _ranges(_evaluate(instance, lake, first.cursor)) == [("2013-03-01", "2013-03-01")]


def test_identical_dimensions_re_delivered_with_a_day_are_not_a_change(
    instance: dg.DagsterInstance, lake: LakeResource
) -> None:
    """Every landing re-delivers the dimension files; only a change of content requests raw_dimensions_job."""

    def dimension_runs(result: dg.SensorResult) -> int:
        return sum(1 for r in result.run_requests or [] if r.job_name == "raw_dimensions_job")

    land_days(Path(lake.landing_root), DAY, DAY)
    first = _evaluate(instance, lake, None)
    assert dimension_runs(first) == 1
    next_day = date(2013, 3, 3)
    land_days(Path(lake.landing_root), next_day, next_day)
    planes = Path(lake.landing_root) / "planes"
    for table in ("planes", "airports", "airlines"):
        for path in (Path(lake.landing_root) / table).glob("*.csv"):
            _age(path, -60)  # re-delivered: a new mtime, whatever the clock's resolution
    second = _evaluate(instance, lake, first.cursor)
    assert dimension_runs(second) == 0 and _ranges(second) == [(next_day.isoformat(), next_day.isoformat())]

    (changed,) = planes.glob("*.csv")
    lines = changed.read_text().splitlines(keepends=True)
    changed.write_text("".join(lines[:-1]))  # one plane fewer: a real change of a dimension
    _age(changed, -120)
    third = _evaluate(instance, lake, second.cursor)
    assert dimension_runs(third) == 1 and _ranges(third) == []
    assert dimension_runs(_evaluate(instance, lake, third.cursor)) == 0
