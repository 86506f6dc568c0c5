"""Backfill benchmark: land the full year of 2013, then backfill raw + dbt for all 365 partitions in one run.

    python benchmarks/backfill.py                      # target: <= 60 s wall on 2 cores (land + backfill)
    python benchmarks/backfill.py --storage batched    # only the product's instance (skip the comparison)
    python benchmarks/backfill.py --planned-events subset

Each storage runs in its own process, fresh data dir and Dagster instance: ``batched`` is the product's
``dagster.yaml`` (mlops_assets.instance.BatchingSqliteEventLogStorage), ``dagster-default`` is Dagster's stock
run-sharded SQLite event log. Prints wall time per phase and step, rows/s, events stored, peak RSS, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

TARGET_SECONDS = 60.0
REPO_ROOT = Path(__file__).resolve().parent.parent
STORAGES = ("dagster-default", "batched")


def _instance_yaml(storage: str) -> str:
    if storage == "batched":
        return (REPO_ROOT / "dagster.yaml").read_text()
    return "telemetry:\n  enabled: false\n"


def _step_seconds(instance, run_id: str) -> tuple[dict[str, float], int]:
    """Wall seconds per step from the run's STEP_START / STEP_SUCCESS events, and how many events the run stored."""
    starts: dict[str, float] = {}
    durations: dict[str, float] = {}
    entries = instance.all_logs(run_id)
    for entry in entries:
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            durations[event.step_key] = entry.timestamp - starts[event.step_key]
    return durations, len(entries)


def run_one(storage: str, start: date, end: date) -> dict:
    """One backfill in a fresh data dir and instance; returns the measured phases (runs in a child process)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"mlops_backfill_bench_{storage}_"))
    os.environ["MLOPS_DATA_DIR"] = str(workdir / "data")
    os.environ["DAGSTER_HOME"] = str(workdir / "dagster_home")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    (workdir / "dagster_home").mkdir(parents=True)
    (workdir / "dagster_home" / "dagster.yaml").write_text(_instance_yaml(storage))

    import logging

    import dagster as dg

    logging.getLogger("dagster").setLevel(logging.WARNING)

    from mlops_assets.definitions import defs
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.lib.landing import land_days
    from mlops_assets.lib.warehouse import WarehouseLocation

    started = time.perf_counter()
    land_days(SETTINGS.landing_root, start, end)
    land_s = time.perf_counter() - started

    # Raw + dbt only (the features and the model have their own benchmarks).
    keys = dg.AssetSelection.from_string("group:raw or group:transform").resolve(defs.resolve_asset_graph())
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        # The run `dagster asset materialize --select 'group:raw or group:transform' --partition-range` launches.
        result = job.execute_in_process(
            instance=instance,
            asset_selection=list(keys),
            tags={
                "dagster/asset_partition_range_start": start.isoformat(),
                "dagster/asset_partition_range_end": end.isoformat(),
            },
        )
        backfill_s = time.perf_counter() - started
        assert result.success
        steps, events = _step_seconds(instance, result.run_id)
        storage_class = type(instance.event_log_storage).__name__

    with WarehouseLocation.from_settings(SETTINGS).connect() as con:
        rows, days = con.execute("select count(*), count(distinct flight_date) from flights_enriched").fetchone()
    return {
        "storage": storage,
        "storage_class": storage_class,
        "land_s": land_s,
        "backfill_s": backfill_s,
        "steps": steps,
        "events": events,
        "rows": rows,
        "days": days,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "dbt_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _print_run(result: dict) -> None:
    total = result["land_s"] + result["backfill_s"]
    print(f"\n{result['storage']} ({result['storage_class']}): {result['days']} days, {result['events']:,} events")
    print(f"{'phase':<44} {'wall s':>8}")
    print(f"{'land (write landing zone)':<44} {result['land_s']:>8.1f}")
    print(f"{'backfill raw + dbt, one run':<44} {result['backfill_s']:>8.1f}")
    for step, seconds in result["steps"].items():
        if seconds >= 0.5:
            print(f"{'  step ' + step:<44} {seconds:>8.1f}")
    bookkeeping = result["backfill_s"] - sum(result["steps"].values())
    print(f"{'  run bookkeeping outside steps':<44} {bookkeeping:>8.1f}")
    print(f"{'total (land + backfill)':<44} {total:>8.1f}")
    print(f"flights_enriched rows: {result['rows']:,}; rows/s (backfill): {result['rows'] / result['backfill_s']:,.0f}")
    own, dbt = result["peak_rss_mib"], result["dbt_peak_rss_mib"]
    print(f"peak RSS: process {own:,.0f} MiB, largest child (dbt) {dbt:,.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2013, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2013, 12, 31))
    parser.add_argument("--storage", choices=(*STORAGES, "both"), default="both")
    parser.add_argument(
        "--planned-events",
        choices=("per-partition", "subset"),
        default="per-partition",
        help="Dagster's default logs one 'materialisation planned' event per asset partition before the run starts; "
        "'subset' logs one per asset (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS), at the price that a failed "
        "run no longer marks its partitions failed",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_one(args.storage, args.start, args.end)))
        return 0

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "DAGSTER_"))}
    if args.planned_events == "subset":
        env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "true"
    storages = STORAGES if args.storage == "both" else (args.storage,)
    results = []
    for storage in storages:
        command = [sys.executable, __file__, "--child", "--storage", storage]
        command += ["--start", args.start.isoformat(), "--end", args.end.isoformat()]
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-8000:])
            raise SystemExit(f"backfill benchmark: the {storage} run failed (exit {completed.returncode})")
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    print(f"\nbackfill benchmark: {args.start} .. {args.end}, {os.cpu_count()} cores")
    print(f"planned events: {args.planned_events}")
    for result in results:
        _print_run(result)
    if len(results) == 2:
        default, batched = results
        print(f"\n{'storage':<18} {'events':>8} {'backfill s':>11} {'total s':>8}")
        for result in results:
            total = result["land_s"] + result["backfill_s"]
            print(f"{result['storage']:<18} {result['events']:>8,} {result['backfill_s']:>11.1f} {total:>8.1f}")
        print(f"ratio batched / dagster-default (backfill wall): {batched['backfill_s'] / default['backfill_s']:.2f}")
    product = next(r for r in results if r["storage"] == "batched") if "batched" in storages else results[-1]
    total = product["land_s"] + product["backfill_s"]
    verdict = "PASS" if total <= TARGET_SECONDS else "MISS"
    print(f"target <= {TARGET_SECONDS:.0f} s wall (land + backfill, {product['storage']}): {total:.1f} s {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
