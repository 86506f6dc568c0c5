"""The production-profile online store: a real redis-server on 127.0.0.1, started here and stopped by PID."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from mlops_assets.defs.features.resources import FeatureStoreResource
from mlops_assets.lib.feature_contract import prepare_model_rows, split_scope
from mlops_assets.lib.feature_paths import entity_table_uri
from mlops_assets.lib.feature_validation import validate_features
from mlops_assets.lib.feature_views import FEATURE_VIEWS, feature_tables, merge_entity_table, read_warehouse_inputs
from mlops_assets.lib.intraday import with_intraday_keys
from mlops_assets.lib.io import parquet_bytes, write_bytes_atomic
from mlops_assets.service.runtime import OnlineFeatures
from mlops_assets.service.scoring import SERVING_VIEWS
from mlops_assets.settings import load_settings
from mlops_assets_tests.conftest import Warehouse
from mlops_assets_tests.servers import redis_server


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    with redis_server(tmp_path / "redis") as server:
        yield server.port


def test_production_profile_serves_from_redis(warehouse: Warehouse, redis_port: int, tmp_path: Path) -> None:
    settings = load_settings(
        {
            "MLOPS_PROFILE": "production",
            "MLOPS_DATA_DIR": str(tmp_path / "data"),
            "MLOPS_LAKE_ROOT": str(tmp_path / "lake"),
            "MLOPS_MLFLOW_TRACKING_URI": "http://127.0.0.1:1",  # required in production; unused here
            "MLOPS_FEAST_ONLINE_STORE": f"redis://127.0.0.1:{redis_port}/0",
            "MLOPS_FEAST_REGISTRY": str(tmp_path / "feast" / "registry.db"),
        }
    )
    day = warehouse.end
    with warehouse.connect() as con:
        enriched = con.sql("select * from flights_enriched where flight_date = ?", params=[day]).pl()
    valid = validate_features(prepare_model_rows(split_scope(enriched)[0])).valid
    tables = feature_tables(valid, read_warehouse_inputs(warehouse.location, day, day))
    for spec in FEATURE_VIEWS:
        merged = merge_entity_table(spec, None, tables[spec.name], [day])
        write_bytes_atomic(entity_table_uri(settings.lake_root, spec.name), parquet_bytes(merged))

    store = FeatureStoreResource.from_settings(settings)
    assert store.get_store().config.online_store.type == "redis"
    # The day's rows are stamped from its midnight to the statistics it produced for the next day.
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    batch_views = [spec for spec in FEATURE_VIEWS if not spec.live]
    store.materialize(start, start + timedelta(days=2), [spec.name for spec in batch_views])
    # The live views arrive through their push sources, as the departure feed sends them.
    for spec in FEATURE_VIEWS:
        if spec.live:
            store.push_online(spec.push_source, tables[spec.name].drop("source_date"))

    route = tables["route_delay_stats"].row(0, named=True)
    weather = tables["origin_weather"].filter(pl.col("origin") == "JFK").sort("event_ts").row(-1, named=True)
    online = store.online_features(
        ["route_delay_stats:route_delay_rate_28d", "origin_weather:weather_temp"],
        [{"route": route["route"], "origin": "JFK"}],
    )
    assert online["route_delay_rate_28d"] == [route["route_delay_rate_28d"]]
    assert online["weather_temp"] == [weather["weather_temp"]]
    unknown = store.online_features(["route_delay_stats:route_delay_rate_28d"], [{"route": "XXX-YYY"}])
    assert unknown["route_delay_rate_28d"] == [None]

    # Our serving reader (one pipelined HMGET per view) answers exactly what Feast's generic lookup answers,
    # for every view and feature at once, unknown keys included.
    keyed = with_intraday_keys(valid.select("flight_date", "route", "carrier", "origin", "dest", "tailnum").head(40))
    rows = [
        {key: value for key, value in row.items() if key != "flight_date"} for row in keyed.to_dicts()
    ] + [
        {
            "route": "XXX-YYY", "carrier": "XX", "origin": "XXX", "dest": "YYY", "tailnum": "N0",
            "origin_day": "XXX|2013-01-01", "carrier_origin_day": "XX|XXX|2013-01-01", "carrier_day": "XX|2013-01-01",
            "dest_day": "YYY|2013-01-01", "tail_day": "N0|2013-01-01",
        }
    ]  # fmt: skip
    features = [f"{spec.name}:{name}" for spec in FEATURE_VIEWS for name in spec.features]
    expected = store.get_store().get_online_features(features=features, entity_rows=rows).to_dict()
    assert store.online_features(features, rows) == expected
    # Pushed intraday values are served: the end-of-day state of the first flight's origin.
    origin_today = tables["origin_today"].filter(pl.col("origin_day") == rows[0]["origin_day"]).sort("event_ts")
    assert expected["origin_departed_today"][0] == origin_today["origin_departed_today"][-1] > 0

    # The service's fetch on Redis (its store-specific part; the rest of the scoring path is the SQLite one): every
    # serving view's values are Feast's, each row's stamp is the stored row's event_ts, and no view is unavailable.
    fetched = OnlineFeatures(store.online_reader(), store.get_store()).fetch(rows)
    assert fetched.unavailable == {}
    for spec in SERVING_VIEWS:
        for name in spec.features:
            assert fetched.values[name] == expected[name], f"{spec.name}.{name}"
        assert fetched.event_times[spec.name][-1] is None, spec.name  # the unknown row
    assert fetched.event_times["origin_today"][0] == origin_today["event_ts"][-1]
    dest_today = tables["dest_today"].filter(pl.col("dest_day") == rows[0]["dest_day"]).sort("event_ts")
    assert fetched.event_times["dest_today"][0] == dest_today["event_ts"][-1]
