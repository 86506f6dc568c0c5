"""Features benchmark: pandera validation throughput, Feast materialise of one day, online lookup latency.

    python benchmarks/features.py                                # lands 2013 and builds raw + dbt first (~1 min)
    python benchmarks/features.py --warehouse path/to/warehouse.sqlite   # reuse a warehouse with the full year

Targets (in-process, SQLite online store): online p99 <= 1 ms (1 entity) and <= 10 ms (100 entities); materialise one
day <= 1 s. Everything runs in a fresh temporary data dir.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_assets.lib.warehouse import WarehouseLocation


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _build_warehouse(workdir: Path) -> WarehouseLocation:
    import dagster as dg

    from mlops_assets.definitions import defs
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.lib.landing import land_days
    from mlops_assets.lib.warehouse import WarehouseLocation

    land_days(SETTINGS.landing_root, date(2013, 1, 1), date(2013, 12, 31))
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.from_string("group:raw or group:transform").resolve(graph)
    with dg.instance_for_test(temp_dir=str(workdir / "dagster_home")) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=list(keys),
            tags={
                "dagster/asset_partition_range_start": "2013-01-01",
                "dagster/asset_partition_range_end": "2013-12-31",
            },
        )
    assert result.success
    return WarehouseLocation.from_settings(SETTINGS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--warehouse", type=Path, help="the SQLite catalog of an existing warehouse with flights_enriched for 2013"
    )
    parser.add_argument("--lookups", type=int, default=1000, help="online lookups per measurement")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mlops_features_bench_"))
    os.environ["MLOPS_DATA_DIR"] = str(workdir / "data")
    os.environ["DAGSTER_HOME"] = str(workdir / "dagster_home")
    os.environ["FEAST_USAGE"] = "False"
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    (workdir / "dagster_home").mkdir(parents=True)
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    import polars as pl

    from mlops_assets.defs.features.resources import FeatureStoreResource
    from mlops_assets.lib.feature_contract import prepare_model_rows, split_scope
    from mlops_assets.lib.feature_paths import entity_table_uri
    from mlops_assets.lib.feature_validation import validate_features
    from mlops_assets.lib.feature_views import (
        FEATURE_VIEWS,
        feature_tables,
        latest_per_key,
        merge_entity_table,
        read_warehouse_inputs,
    )
    from mlops_assets.lib.intraday import with_intraday_keys
    from mlops_assets.lib.io import parquet_bytes, write_bytes_atomic
    from mlops_assets.lib.point_in_time import point_in_time_join
    from mlops_assets.lib.warehouse import WarehouseLocation
    from mlops_assets.settings import load_settings

    settings = load_settings()
    warehouse = (
        WarehouseLocation(f"sqlite:{args.warehouse.resolve()}", "", str(settings.duckdb_extension_dir))
        if args.warehouse
        else _build_warehouse(workdir)
    )
    with warehouse.connect() as con:
        enriched = con.sql("select * from flights_enriched order by flight_date, flight_id").pl()
    rows: list[tuple[str, str, str, str]] = []

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        outcome = validate_features(prepare_model_rows(split_scope(enriched)[0]))
        timings.append(time.perf_counter() - started)
    best = min(timings)
    rows.append(
        (
            "validation, full year",
            f"{enriched.height:,} rows in {best:.2f} s",
            f"{enriched.height / best:,.0f} rows/s",
            "-",
        )
    )
    valid = outcome.valid

    spine = with_intraday_keys(
        valid.select("flight_id", "prediction_ts", "flight_date", "route", "carrier", "origin", "dest", "tailnum")
    )
    fresh_all = feature_tables(valid, read_warehouse_inputs(warehouse, date(2013, 1, 1), date(2013, 12, 31)))
    tables_all = {spec.name: merge_entity_table(spec, None, fresh_all[spec.name], []) for spec in FEATURE_VIEWS}
    # The daily online write covers the batch views; the intraday views are pushed live by the departure feed.
    batch_views = [spec for spec in FEATURE_VIEWS if not spec.live]
    started = time.perf_counter()
    point_in_time_join(spine, tables_all)
    rows.append(
        ("point-in-time ASOF join, full year", f"{spine.height:,} rows", f"{time.perf_counter() - started:.2f} s", "-")
    )

    last_day = date(2013, 12, 31)
    for spec in batch_views:
        table = tables_all[spec.name].filter(pl.col("source_date") < last_day)
        write_bytes_atomic(entity_table_uri(settings.lake_root, spec.name), parquet_bytes(table))
    store = FeatureStoreResource.from_settings(settings)
    started = time.perf_counter()
    store.get_store()
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    store.ensure_applied()
    rows.append(
        (
            "feast import + FeatureStore / apply",
            f"{import_seconds:.1f} s / {time.perf_counter() - started:.2f} s",
            "-",
            "once per process",
        )
    )
    names = [spec.name for spec in batch_views]
    started = time.perf_counter()
    store.materialize(datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 12, 31, tzinfo=UTC), names)
    rows.append(
        (
            "materialise Jan 1 .. Dec 30 (catch-up)",
            f"{len(names)} views",
            f"{time.perf_counter() - started:.2f} s",
            "-",
        )
    )

    # One day: the feature_store asset's daily work (merge the day's rows into the entity tables, then write each
    # key's latest row online), against Feast's own materialize of the same window, which reads the tables back.
    day_valid = valid.filter(pl.col("flight_date") == last_day)
    started = time.perf_counter()
    fresh = {name: table.filter(pl.col("source_date") == last_day) for name, table in fresh_all.items()}
    merged = {}
    for spec in batch_views:
        uri = entity_table_uri(settings.lake_root, spec.name)
        merged[spec.name] = merge_entity_table(spec, pl.read_parquet(uri), fresh[spec.name], [last_day])
        write_bytes_atomic(uri, parquet_bytes(merged[spec.name]))
    merge_seconds = time.perf_counter() - started
    # Feast materialises by stamp: the day's rows run from its midnight to the statistics stamped the next midnight.
    day_start = datetime(2013, 12, 31)
    day_end = day_start + timedelta(days=2)
    feast_samples, ours_samples = [], []
    for _ in range(3):
        started = time.perf_counter()
        store.materialize(day_start.replace(tzinfo=UTC), day_end.replace(tzinfo=UTC), names)
        feast_samples.append(time.perf_counter() - started)
        started = time.perf_counter()
        for spec in batch_views:
            store.write_online(spec.name, latest_per_key(spec, merged[spec.name], last_day, last_day))
        ours_samples.append(time.perf_counter() - started)
    feast_seconds, ours_seconds = statistics.median(feast_samples), statistics.median(ours_samples)
    rows.append(
        (
            "materialise one day, Feast materialize",
            f"{len(names)} views",
            f"{feast_seconds:.2f} s (median of 3)",
            "-",
        )
    )
    rows.append(
        (
            "materialise one day, feature_store asset",
            f"{len(names)} views + {merge_seconds:.2f} s merge",
            f"{ours_seconds:.3f} s (median of 3), {feast_seconds / ours_seconds:.0f}x faster",
            "<= 1 s " + ("PASS" if merge_seconds + ours_seconds <= 1 else "MISS") + " (incl. merge)",
        )
    )

    # Online lookup: Feast's generic get_online_features against our serving reader (the feature_store resource's
    # online_features), same store, same requests; the targets apply to the serving path.
    feast_store = store.get_store()
    reader = store.online_reader()
    latest = day_valid.unique("route")
    entities_all = latest.select("route", "carrier", "origin", "tailnum").to_dicts()
    while len(entities_all) < 100:
        entities_all = entities_all + entities_all
    one_view = ["route_delay_stats:route_delay_rate_28d", "route_delay_stats:route_flights_28d"]
    all_views = [f"{spec.name}:{name}" for spec in batch_views for name in spec.features]

    def feast_lookup(features: list[str], entity_rows: list[dict]) -> dict:
        return feast_store.get_online_features(features=features, entity_rows=entity_rows).to_dict()

    for label, features in (("1 view", one_view), ("all batch views", all_views)):
        for count, target in ((1, 1.0), (100, 10.0)):
            entity_rows = entities_all[:count]
            if label == "1 view":
                entity_rows = [{"route": row["route"]} for row in entity_rows]
            else:
                entity_rows = [row | {"tailnum": row["tailnum"] or "N0"} for row in entity_rows]
            assert reader.read(features, entity_rows) == feast_lookup(features, entity_rows)
            iterations = args.lookups if count == 1 else max(100, args.lookups // 5)
            latencies = {}
            for path, lookup in (("Feast get_online_features", feast_lookup), ("serving reader", reader.read)):
                for _ in range(20):
                    lookup(features, entity_rows)
                lat = []
                for _ in range(iterations):
                    started = time.perf_counter()
                    lookup(features, entity_rows)
                    lat.append((time.perf_counter() - started) * 1000)
                latencies[path] = (_percentile(lat, 0.5), _percentile(lat, 0.99))
            size = f"{count} entit{'y' if count == 1 else 'ies'}, {label}, {len(features)} features"
            feast_p99 = latencies["Feast get_online_features"][1]
            for path, (p50, p99) in latencies.items():
                if path == "serving reader":
                    verdict = f"p99 <= {target:g} ms " + ("PASS" if p99 <= target else "MISS")
                    verdict += f"; {feast_p99 / p99:.1f}x faster at p99"
                else:
                    verdict = "-"
                rows.append((f"online lookup, {path}", size, f"p50 {p50:.2f} ms, p99 {p99:.2f} ms", verdict))

    width = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("measurement", "size", "measured", "target")
    width = [max(w, len(h)) for w, h in zip(width, header, strict=True)]
    print("\n" + " | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)))
    print("-+-".join("-" * w for w in width))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, width, strict=True)))
    print(f"\nwarehouse: {warehouse.catalog}\nworkdir: {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
