"""validated_features + feature_store in real Dagster runs over the warehouse fixture."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from mlops_assets.definitions import defs
from mlops_assets.defs.common import SETTINGS, LakeResource, WarehouseConfig
from mlops_assets.defs.features import feature_store, validated_features
from mlops_assets.defs.features.resources import FeatureStoreResource
from mlops_assets.lib.feature_contract import OUTCOME_COLUMNS, prepare_model_rows, split_scope
from mlops_assets.lib.feature_paths import entity_table_uri, partition_uri
from mlops_assets.lib.feature_validation import validate_features
from mlops_assets.lib.feature_views import (
    FEATURE_VIEWS,
    feature_tables,
    latest_per_key,
    merge_entity_table,
    read_warehouse_inputs,
)
from mlops_assets.lib.io import parquet_bytes, write_bytes_atomic
from mlops_assets.lib.online import OnlineLookupError
from mlops_assets.lib.point_in_time import build_training_frame
from mlops_assets_tests.conftest import Warehouse
from mlops_assets_tests.helpers import materialize_range, scratch_warehouse

FEATURES = "group:features"


def _metadata(instance, key: str, partition: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    assert event is not None
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def test_features_graph_wiring() -> None:
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("validated_features")).parent_keys == {dg.AssetKey("flights_enriched")}
    assert graph.get(dg.AssetKey("feature_store")).parent_keys == {
        dg.AssetKey("validated_features"),
        dg.AssetKey("flights_enriched"),
        dg.AssetKey("delay_history"),
    }
    checks = {key.name for key in graph.asset_check_keys if key.asset_key == dg.AssetKey("validated_features")}
    assert {"invalid_fraction_within_threshold", "unique_flight_id", "no_outcome_columns"} <= checks


def test_two_days_validate_materialise_and_serve_online(warehouse: Warehouse, dagster_instance) -> None:
    first, last = warehouse.end - timedelta(days=1), warehouse.end
    result = materialize_range(defs, dagster_instance, FEATURES, first, last)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations if e.check_name != "no_rows_quarantined")
    lake = str(warehouse.lake_root)
    for day in (first, last):
        valid = pl.read_parquet(partition_uri(lake, "validated", day))
        with warehouse.connect() as con:
            expected = con.execute(
                "select count(*) from flights_enriched where flight_date = ? and tailnum is not null", [day]
            ).fetchone()[0]
        quarantined = pl.read_parquet(partition_uri(lake, "quarantine", day))
        assert valid.height + quarantined.height == expected
        assert valid["tailnum"].null_count() == 0
        assert not set(valid.columns) & set(OUTCOME_COLUMNS)
    meta = _metadata(dagster_instance, "feature_store", last.isoformat())
    assert meta["watermark"] == (last + timedelta(days=1)).isoformat() + "T00:00:00"
    # Each materialisation records the contract's column schema (read off the pandera model), never an outcome.
    for key, extra in (("validated_features", set()), ("quarantined_features", {"failed_rules"})):
        names = {
            column.name
            for column in _metadata(dagster_instance, key, last.isoformat())["dagster/column_schema"].columns
        }
        assert "distance" in names and extra <= names and not names & set(OUTCOME_COLUMNS)

    # The online store returns the statistics the latest day produced: those that serve the day after it, online
    # before that day's first prediction.
    route_stats = pl.read_parquet(entity_table_uri(lake, "route_delay_stats"))
    latest = route_stats.filter(pl.col("event_ts").dt.date() == last + timedelta(days=1)).row(0, named=True)
    store = FeatureStoreResource.from_settings(SETTINGS)
    online = store.online_features(
        ["route_delay_stats:route_delay_rate_28d", "route_delay_stats:route_flights_28d"],
        [{"route": latest["route"]}],
    )
    assert online["route_delay_rate_28d"][0] == latest["route_delay_rate_28d"]
    assert online["route_flights_28d"][0] == latest["route_flights_28d"]

    # Re-running an older day re-materialises up to our watermark instead of resetting it; Feast re-apply is a no-op.
    again = materialize_range(defs, dagster_instance, FEATURES, first, first)
    assert again.success
    meta = _metadata(dagster_instance, "feature_store", first.isoformat())
    assert meta["watermark"] == (last + timedelta(days=1)).isoformat() + "T00:00:00"
    assert meta["materialized_from"] == first.isoformat() + "T00:00:00"
    online = store.online_features(["route_delay_stats:route_delay_rate_28d"], [{"route": latest["route"]}])
    assert online["route_delay_rate_28d"][0] == latest["route_delay_rate_28d"]

    # The training frame for the window has one row per validated flight. Statistics for a day come from the
    # feature_store partition of the day before, so the last day's flights carry the statistics dbt joined, wherever
    # their prediction time falls on their own day (before midnight, the previous day's statistics apply).
    frame = build_training_frame(lake, first, last)
    validated = pl.concat([pl.read_parquet(partition_uri(lake, "validated", d)) for d in (first, last)])
    assert frame.height == validated.height
    joined = frame.join(validated.select("flight_id", "route_delay_rate_28d"), on="flight_id", suffix="_v").filter(
        (pl.col("prediction_ts").dt.date() == pl.col("flight_date")) & (pl.col("flight_date") == last)
    )
    assert joined.height > 0.4 * frame.height
    assert joined.filter(pl.col("route_delay_rate_28d").ne_missing(pl.col("route_delay_rate_28d_v"))).height == 0


def test_all_bad_partition_fails_and_writes_nothing_downstream(warehouse: Warehouse, tmp_path: Path) -> None:
    day = warehouse.end
    bad_warehouse = scratch_warehouse(warehouse.location, tmp_path / "bad")
    with bad_warehouse.connect(read_only=False) as con:
        con.execute(warehouse.location.attach_sql(read_only=True, alias="src"))
        con.execute(
            "create table flights_enriched as select * replace (-1.0 as distance) "
            "from src.flights_enriched where flight_date = ?",
            [day],
        )
        rows = con.execute("select count(*) from flights_enriched where tailnum is not null").fetchone()[0]
    lake = tmp_path / "lake"
    small = dg.Definitions(
        assets=[validated_features, feature_store],
        resources={
            "lake": LakeResource(
                landing_root=str(tmp_path / "landing"), lake_root=str(lake), warehouse=WarehouseConfig.of(bad_warehouse)
            ),
            "feature_store": FeatureStoreResource(
                repo_dir=str(SETTINGS.feast_repo_dir),
                registry_path=str(tmp_path / "registry.db"),
                online_store=f"sqlite:///{tmp_path / 'online.db'}",
                lake_root=str(lake),
            ),
        },
    )
    with dg.instance_for_test() as instance:
        result = materialize_range(small, instance, "*", day, day, raise_on_error=False)
        assert not result.success
        failure = next(event for event in result.all_events if event.is_step_failure)
        message = failure.step_failure_data.user_failure_data.description
        assert "distance:greater_than(0)" in message and f"{rows}/{rows} rows invalid" in message
        assert instance.get_latest_materialization_event(dg.AssetKey("validated_features")) is None
        assert instance.get_latest_materialization_event(dg.AssetKey("feature_store")) is None
    assert not Path(partition_uri(str(lake), "validated", day)).exists()
    assert not any(Path(entity_table_uri(str(lake), spec.name)).exists() for spec in FEATURE_VIEWS)
    assert not (tmp_path / "online.db").exists()
    quarantine = pl.read_parquet(partition_uri(str(lake), "quarantine", day))
    assert quarantine.height == rows
    assert set(quarantine["failed_rules"]) == {"distance:greater_than(0)"}


def test_threshold_is_configurable(warehouse: Warehouse, tmp_path: Path) -> None:
    """One bad row in a day: quarantined under the default 1%, but fails a zero-tolerance run."""
    day = date.fromisoformat(warehouse.end.isoformat())
    bad_warehouse = scratch_warehouse(warehouse.location, tmp_path / "one_bad")
    with bad_warehouse.connect(read_only=False) as con:
        con.execute(warehouse.location.attach_sql(read_only=True, alias="src"))
        con.execute("create table flights_enriched as select * from src.flights_enriched where flight_date = ?", [day])
        con.execute(
            "update flights_enriched set carrier = 'ZZ' where flight_id = (select min(flight_id) from flights_enriched)"
        )
    lake = tmp_path / "lake"
    small = dg.Definitions(
        assets=[validated_features],
        resources={
            "lake": LakeResource(
                landing_root=str(tmp_path / "landing"), lake_root=str(lake), warehouse=WarehouseConfig.of(bad_warehouse)
            ),
        },
    )
    job = small.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        ok = job.execute_in_process(instance=instance, partition_key=day.isoformat())
        assert ok.success
        quarantine = pl.read_parquet(partition_uri(str(lake), "quarantine", day))
        assert quarantine["failed_rules"].to_list() == ["carrier:isin"]
        strict = job.execute_in_process(
            instance=instance,
            partition_key=day.isoformat(),
            run_config={"ops": {"validated_features": {"config": {"max_invalid_fraction": 0.0}}}},
            raise_on_error=False,
        )
        assert not strict.success


def test_online_write_matches_feast_materialize(warehouse: Warehouse, tmp_path: Path) -> None:
    """The feature_store asset writes each key's latest row itself; the online store must end up exactly as after
    Feast's own ``materialize`` over the same window, for every key and feature of every view."""
    first, last = warehouse.end - timedelta(days=1), warehouse.end
    with warehouse.connect() as con:
        enriched = con.sql(
            "select * from flights_enriched where flight_date between ? and ?", params=[first, last]
        ).pl()
    valid = validate_features(prepare_model_rows(split_scope(enriched)[0])).valid
    fresh = feature_tables(valid, read_warehouse_inputs(warehouse.location, first, last))
    batch_views = [spec for spec in FEATURE_VIEWS if not spec.live]
    tables = {spec.name: merge_entity_table(spec, None, fresh[spec.name], [first, last]) for spec in batch_views}
    lake = str(tmp_path / "lake")
    for name, table in tables.items():
        write_bytes_atomic(entity_table_uri(lake, name), parquet_bytes(table))

    def store(label: str) -> FeatureStoreResource:
        return FeatureStoreResource(
            repo_dir=str(SETTINGS.feast_repo_dir),
            registry_path=str(tmp_path / label / "registry.db"),
            online_store=f"sqlite:///{tmp_path / label / 'online.db'}",
            lake_root=lake,
        )

    # Feast materialises by stamp, we write by producing day: the stamps of the two days' rows run from the first
    # day's midnight to the statistics stamped the day after the last (wall clock, labelled UTC for Feast).
    start = datetime(first.year, first.month, first.day)
    end = max(table["event_ts"].max() for table in tables.values()) + timedelta(seconds=1)
    materialized, written = store("feast"), store("ours")
    materialized.materialize(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), list(tables))
    for spec in batch_views:
        written.write_online(spec.name, latest_per_key(spec, tables[spec.name], first, last))

    for spec in batch_views:
        keys = [{spec.join_key: key} for key in tables[spec.name][spec.join_key].unique().sort().to_list()]
        keys.append({spec.join_key: "NO-SUCH-KEY"})
        features = [f"{spec.name}:{name}" for name in spec.features]
        # Feast's own lookup of Feast's own materialisation is the reference for our write and for our reader.
        expected = materialized.get_store().get_online_features(features=features, entity_rows=keys).to_dict()
        assert materialized.online_features(features, keys) == expected
        assert written.online_features(features, keys) == expected
        first_feature = expected[next(iter(spec.features))]
        assert any(value is not None for value in first_feature) and first_feature[-1] is None


def test_serving_reader_rejects_bad_requests_by_name(tmp_path: Path) -> None:
    store = FeatureStoreResource(
        repo_dir=str(SETTINGS.feast_repo_dir),
        registry_path=str(tmp_path / "registry.db"),
        online_store=f"sqlite:///{tmp_path / 'online.db'}",
        lake_root=str(tmp_path / "lake"),
    )
    store.ensure_applied()
    reader = store.online_reader()
    feature = "route_delay_stats:route_delay_rate_28d"
    with pytest.raises(OnlineLookupError, match="unknown feature view 'no_such_view'"):
        reader.read(["no_such_view:x"], [{"route": "JFK-LAX"}])
    with pytest.raises(OnlineLookupError, match="entity row 1 has no route for feature view 'route_delay_stats'"):
        reader.read([feature], [{"route": "JFK-LAX"}, {"carrier": "UA"}])
    # Applied but never written: every key is unknown, as Feast answers it.
    assert reader.read([feature], [{"route": "JFK-LAX"}]) == {"route": ["JFK-LAX"], "route_delay_rate_28d": [None]}
