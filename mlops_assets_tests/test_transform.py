"""The dbt project in the asset graph: lineage, checks, point-in-time history, analyst path, idempotent reruns."""

import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from mlops_assets.definitions import defs
from mlops_assets.defs.transform.assets import (
    DBT_INVOCATION_DIR_PATTERN,
    DBT_INVOCATIONS_KEPT,
    LOCK_RETRY_WAIT_S,
    build_transform_assets,
)
from mlops_assets.defs.transform.dbt_cli import DbtCli
from mlops_assets.settings import DBT_PROJECT_DIR
from mlops_assets_tests.conftest import Warehouse
from mlops_assets_tests.helpers import hold_write_lock, materialize_range

RAW_KEYS = {dg.AssetKey(["raw", table]) for table in ("flights", "weather", "planes", "airports", "airlines")}


def test_dbt_sources_are_the_raw_assets_and_lineage_connects() -> None:
    graph = defs.resolve_asset_graph()
    materializable = set(graph.materializable_asset_keys)
    assert materializable >= RAW_KEYS
    # No dbt source dangles as an external asset: every dependency of a dbt model is an asset we materialise.
    assert {key for key in graph.get_all_asset_keys() if key not in materializable} == set()
    # stg_flights reads the destination's time zone from raw/airports (scheduled arrival on the New York clock).
    assert graph.get(dg.AssetKey("stg_flights")).parent_keys == {
        dg.AssetKey(["raw", "flights"]),
        dg.AssetKey(["raw", "airports"]),
    }
    enriched_parents = graph.get(dg.AssetKey("flights_enriched")).parent_keys
    assert {dg.AssetKey(name) for name in ("stg_flights", "stg_weather", "stg_planes", "delay_history")} <= (
        enriched_parents
    )


def test_daily_selection_orders_raw_before_dbt_and_dimensions_are_unpartitioned() -> None:
    # `tag:daily` runs raw, the staging views and the daily models in one run: the dbt step must wait for the raw
    # steps, which it does only if the path raw -> stg -> model stays inside the selection.
    graph = defs.resolve_asset_graph()
    daily = dg.AssetSelection.from_string("tag:daily")
    inside = (dg.AssetSelection.assets("flights_enriched").upstream() & daily).resolve(graph)
    assert {dg.AssetKey(["raw", "flights"]), dg.AssetKey(["raw", "weather"])} <= inside
    assert {dg.AssetKey("stg_flights"), dg.AssetKey("stg_weather"), dg.AssetKey("delay_history")} <= inside
    # The README's dimension command selects no partitioned asset (the CLI refuses those without --partition).
    selection = "not tag:daily and not group:training and not group:serving"
    dimensions = dg.AssetSelection.from_string(selection).resolve(graph)
    assert dimensions and all(graph.get(key).partitions_def is None for key in dimensions)


def test_dbt_tests_are_asset_checks() -> None:
    check_keys = {str(key) for key in defs.resolve_asset_graph().asset_check_keys}
    assert any("flights_enriched" in key and "unique_flights_enriched_flight_id" in key for key in check_keys)
    assert any("accepted_range" in key for key in check_keys)
    assert any("unique_combination_delay_history" in key for key in check_keys)


def test_every_asset_has_a_freshness_policy() -> None:
    graph = defs.resolve_asset_graph()
    missing = [
        key.to_user_string() for key in graph.materializable_asset_keys if graph.get(key).freshness_policy is None
    ]
    assert missing == []


def test_history_counts_only_outcomes_known_before_the_flight_day(warehouse: Warehouse) -> None:
    day = warehouse.end
    with warehouse.connect() as con:
        route, flights, rate = con.execute(
            "select route, route_flights_28d, route_delay_rate_28d from flights_enriched "
            "where flight_date = ? and route_flights_28d > 20 order by flight_id limit 1",
            [day],
        ).fetchone()
        expected_flights, expected_rate = con.execute(
            "select count(*), avg(is_delayed) from stg_flights "
            "where route = ? and flight_date >= ? and flight_date < ? and outcome_known_at < ?",
            [route, day - timedelta(days=28), day, day],
        ).fetchone()
        # The route flies on ``day`` (the row above is one of its flights), so a window that leaked the flight's own
        # day in would count strictly more flights: this makes the equality above discriminating.
        same_day_included = con.execute(
            "select count(*) from stg_flights where route = ? and flight_date >= ? and flight_date <= ?",
            [route, day - timedelta(days=28), day],
        ).fetchone()[0]
        # The statistics of the day are built at the end of the day before: delay_history's partition day - 1.
        built_on_eve = con.execute(
            "select flights from delay_history where partition_date = ? and entity_type = 'route' and entity = ?",
            [day - timedelta(days=1), route],
        ).fetchone()[0]
    assert (flights, round(rate, 9)) == (expected_flights, round(expected_rate, 9))
    assert same_day_included > flights
    assert built_on_eve == flights


def test_weather_is_observed_before_prediction_time(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        late = con.execute(
            "select count(*) from flights_enriched where weather_age_minutes < 0 or weather_age_minutes > 180"
        ).fetchone()[0]
        with_weather = con.execute("select avg((weather_temp is not null)::int) from flights_enriched").fetchone()[0]
    assert late == 0
    assert with_weather > 0.95


def test_rebuilding_a_partition_replaces_its_rows(warehouse: Warehouse, dagster_instance) -> None:
    day = warehouse.start + timedelta(days=3)
    query = "select count(*), count(distinct flight_id) from flights_enriched where flight_date = ?"
    with warehouse.connect() as con:
        before = con.execute(query, [day]).fetchone()
    result = materialize_range(defs, dagster_instance, "group:transform", day, day)
    assert result.success
    with warehouse.connect() as con:
        after = con.execute(query, [day]).fetchone()
        total_days = con.execute("select count(distinct flight_date) from flights_enriched").fetchone()[0]
    assert before == after and after[0] == after[1] > 600
    assert total_days == (warehouse.end - warehouse.start).days + 1


def test_a_dbt_step_that_meets_another_commit_retries_and_succeeds(warehouse: Warehouse, dagster_instance) -> None:
    # Another process (a writer outside Dagster's pool) is committing to the catalog while dbt builds.
    day = warehouse.start + timedelta(days=4)
    # The lock outlasts dbt's start-up and goes before the retry comes (LOCK_RETRY_WAIT_S later): one retry is enough.
    holder = hold_write_lock(warehouse.location, LOCK_RETRY_WAIT_S * 0.6)
    try:
        daily_models = "group:transform and tag:daily"
        result = materialize_range(defs, dagster_instance, daily_models, day, day, raise_on_error=False)
    finally:
        holder.kill()
        holder.wait()
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries, "the locked dbt step was not retried"
    assert "warehouse is busy with another process's commit" in "\n".join(
        str(record.user_message) for record in dagster_instance.all_logs(result.run_id)
    )
    assert result.success, "the retried dbt step did not succeed once the lock was released"
    with warehouse.connect() as con:
        rows, flights = con.execute(
            "select count(*), count(distinct flight_id) from flights_enriched where flight_date = ?", [day]
        ).fetchone()
    assert rows == flights > 600  # the refused commit left nothing behind, the retried one wrote the day once


def test_analyst_model_joins_the_graph_without_python_changes(tmp_path: Path) -> None:
    project_dir = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    (project_dir / "models" / "marts").mkdir()
    (project_dir / "models" / "marts" / "carrier_scorecard.sql").write_text(
        "select carrier, carrier_name, avg(is_delayed) as delay_rate\n"
        "from {{ ref('flights_enriched') }}\ngroup by all\n"
    )
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    project.preparer.prepare(project)
    analyst_defs = dg.Definitions(
        assets=build_transform_assets(project), resources={"dbt": DbtCliResource(project_dir=project)}
    )
    graph = analyst_defs.resolve_asset_graph()
    scorecard = graph.get(dg.AssetKey("carrier_scorecard"))
    assert scorecard.parent_keys == {dg.AssetKey("flights_enriched")}
    assert scorecard.group_name == "transform"
    assert scorecard.freshness_policy is not None
    assert graph.get(dg.AssetKey("flights_enriched")).partitions_def is not None


def test_daily_models_are_partitioned_like_the_raw_tables() -> None:
    graph = defs.resolve_asset_graph()
    raw_partitions = graph.get(dg.AssetKey(["raw", "flights"])).partitions_def
    assert raw_partitions is not None
    assert graph.get(dg.AssetKey("flights_enriched")).partitions_def == raw_partitions
    assert raw_partitions.get_first_partition_key() == date(2013, 1, 1).isoformat()
    assert raw_partitions.get_last_partition_key() == date(2013, 12, 31).isoformat()


def test_dbt_resource_reports_the_version_dbt_itself_reports() -> None:
    # DbtCli reads the version from package metadata instead of starting `dbt --version` in every run; the two
    # must agree, or dagster-dbt would treat the executable as the wrong engine.
    resource = defs.resources["dbt"]
    assert isinstance(resource, DbtCli)
    printed = subprocess.run([resource.dbt_executable, "--version"], capture_output=True, text=True, check=True).stdout
    assert re.search(r"installed:\s*(\d+\.\d+\.\d+)", printed).group(1) == str(resource._cli_version)


def test_dbt_invocation_dirs_are_pruned(warehouse: Warehouse) -> None:
    # The warehouse fixture ran dbt through the assets; each run prunes dagster-dbt's per-invocation target dirs.
    target = DBT_PROJECT_DIR / "target"
    kept = [path for path in target.iterdir() if re.fullmatch(DBT_INVOCATION_DIR_PATTERN, path.name)]
    assert 1 <= len(kept) <= DBT_INVOCATIONS_KEPT
