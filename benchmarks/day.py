"""Day benchmark: one newly landed day through the whole daily graph, from landing to a fresh drift profile.

    python benchmarks/day.py [--days 3]

Targets on 2 cores (issue 14): <= 30 s per day from landing to drift_profile; the day's whylogs profile <= 100 ms;
the drift statistics <= 10 ms.

Setup (not timed): a fresh data dir and Dagster instance, 2013-01-01..02-17 landed and materialised, a LightGBM
champion registered in MLflow on its 28-day training window (as trained_model registers one, without the sweep,
which has its own benchmark) with its evaluation report, and one drift_profile run that builds the champion's
reference (timed separately: once per champion).

Timed, per day: the day's files land; the landing sensor is evaluated and its run executed; then the automation
conditions are evaluated (``evaluate_automation_conditions``, as the automation sensor does) and every requested
partition executed in-process, tick after tick, until nothing is requested. The day counts from landing until its
drift_profile is materialised. Prints one row per day and the medians.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

TARGET_DAY_S, TARGET_PROFILE_MS, TARGET_DRIFT_MS = 30.0, 100.0, 10.0
SETUP_END = date(2013, 2, 17)
WEEK = "2013-02-11"


def _environment(workdir: Path) -> None:
    # This script is its own process; settings are read at import, so the data dir is set before importing them.
    os.environ.update(
        MLOPS_DATA_DIR=str(workdir / "data"),
        DAGSTER_HOME=str(workdir / "dagster_home"),
        MLOPS_TRAIN_DAYS="28",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        WHYLOGS_NO_ANALYTICS="1",
        FEAST_USAGE="False",
    )
    (workdir / "dagster_home").mkdir(parents=True)
    repo = Path(__file__).resolve().parent.parent
    (workdir / "dagster_home" / "dagster.yaml").write_text((repo / "dagster.yaml").read_text())


def _register_champion(tracking, lake_root: str) -> str:
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.lib.boosting import refit, training_params
    from mlops_assets.lib.model_registry import promote
    from mlops_assets.lib.point_in_time import build_training_frame
    from mlops_assets.lib.training import CategoryVocabulary, input_example, model_data
    from mlops_assets.lib.training import auc as model_auc
    from mlops_assets.lib.windows import training_windows

    week = date.fromisoformat(WEEK)
    windows = training_windows(week, week + timedelta(days=7), SETTINGS.train_days, SETTINGS.valid_days, 7)
    train = build_training_frame(lake_root, windows.train_start, windows.train_end)
    holdout = build_training_frame(lake_root, windows.holdout_start, windows.holdout_end)
    vocabulary = CategoryVocabulary.fit(train)
    data = model_data(train, vocabulary)
    booster = refit(training_params({"num_leaves": 31, "learning_rate": 0.05}, num_threads=2), data, 200)
    report = {"metrics": {"candidate": {"roc_auc": {"estimate": model_auc(booster, model_data(holdout, vocabulary))}}}}
    tags = {"dagster.partition": WEEK, "training_data_hash": "bench", "git_sha": "bench", "config_hash": "bench"}
    with tracking.parent_run("day-benchmark", tags) as run:
        tracking.log_params(run, windows.as_metadata())
        tracking.log_text(run, vocabulary.to_json(), "encoding/categories.json")
        tracking.log_text(run, json.dumps(report), f"evaluation/{WEEK}/report.json")
        version = tracking.register_lightgbm(run, booster, input_example(data).to_pandas(), tags, alias="challenger")
    promote(tracking.client(), tracking.registered_model_name, version, "day benchmark")
    return version


def _run_until_quiet(defs, instance, cursor):
    """Automation ticks, each requested partition executed in-process, until a tick requests nothing."""
    import dagster as dg

    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    ticks = 0
    while True:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        ticks += 1
        by_partition: dict[str | None, list] = {}
        for key in graph.get_all_asset_keys():
            for partition in result.get_requested_partitions(key):
                by_partition.setdefault(partition, []).append(key)
        if not by_partition:
            return cursor, ticks
        for partition, keys in by_partition.items():
            job.execute_in_process(instance=instance, asset_selection=keys, partition_key=partition)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="days landed and timed after the setup (default 3)")
    args = parser.parse_args()
    _environment(Path(tempfile.mkdtemp(prefix="mlops_day_bench_")))
    logging.getLogger("dagster").setLevel(logging.ERROR)

    import dagster as dg

    from mlops_assets.definitions import defs
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.defs.monitoring.assets import DRIFT_PROFILE_KEY
    from mlops_assets.defs.raw.sensors import landing_sensor
    from mlops_assets.defs.resources import build_resources
    from mlops_assets.lib.landing import land_days

    resources = build_resources(SETTINGS)
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        land_days(SETTINGS.landing_root, SETTINGS.partitions_start, SETUP_END)
        job = defs.resolve_implicit_global_asset_job_def()
        keys = dg.AssetSelection.from_string("not group:training and not group:monitoring").resolve(
            defs.resolve_asset_graph()
        )
        tags = {
            "dagster/asset_partition_range_start": SETTINGS.partitions_start.isoformat(),
            "dagster/asset_partition_range_end": SETUP_END.isoformat(),
        }
        assert job.execute_in_process(instance=instance, asset_selection=list(keys), tags=tags).success
        version = _register_champion(resources["mlflow_tracking"], SETTINGS.lake_root)
        setup_s = time.perf_counter() - started
        started = time.perf_counter()
        assert job.execute_in_process(
            instance=instance, asset_selection=[DRIFT_PROFILE_KEY], partition_key=SETUP_END.isoformat()
        ).success
        reference_s = time.perf_counter() - started

        sensor_cursor = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources)).cursor
        # The first tick only records the state the setup left; then every later update is new.
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        rows = []
        for offset in range(1, args.days + 1):
            day = SETUP_END + timedelta(days=offset)
            started = time.perf_counter()
            land_days(SETTINGS.landing_root, day, day)
            sensed = landing_sensor(
                dg.build_sensor_context(instance=instance, cursor=sensor_cursor, resources=resources)
            )
            sensor_cursor = sensed.cursor
            for request in sensed.run_requests:
                raw_job = defs.resolve_job_def(request.job_name)
                assert raw_job.execute_in_process(instance=instance, tags=request.tags).success
            cursor, ticks = _run_until_quiet(defs, instance, cursor)
            wall = time.perf_counter() - started
            event = instance.get_latest_materialization_event(DRIFT_PROFILE_KEY)
            materialization = event.asset_materialization if event else None
            if materialization is None or materialization.partition != day.isoformat():
                raise SystemExit(f"{day}: automation did not materialise drift_profile for the day")
            meta = materialization.metadata
            rows.append(
                {
                    "day": day.isoformat(),
                    "wall_s": wall,
                    "ticks": ticks,
                    "rows": int(meta["rows"].value),
                    "profile_ms": float(meta["profile_ms"].value),
                    "drift_ms": float(meta["drift_ms"].value),
                    "drift": float(meta["drift_score"].value),
                    "excess": float(meta["drift_excess"].value),
                    "auc": float(meta["roc_auc"].value),
                }
            )

    print(f"setup {setup_s:.0f} s (champion v{version}); champion reference built in {reference_s:.1f} s (once)")
    print(
        f"{'day':<12}{'wall s':>8}{'ticks':>7}{'rows':>7}{'profile ms':>12}{'drift ms':>10}"
        f"{'drift':>8}{'excess':>8}{'AUC':>8}"
    )
    for r in rows:
        print(
            f"{r['day']:<12}{r['wall_s']:>8.1f}{r['ticks']:>7}{r['rows']:>7}{r['profile_ms']:>12.1f}"
            f"{r['drift_ms']:>10.1f}{r['drift']:>8.3f}{r['excess']:>+8.3f}{r['auc']:>8.3f}"
        )
    medians = {k: statistics.median(r[k] for r in rows) for k in ("wall_s", "profile_ms", "drift_ms")}
    print(
        f"median: day {medians['wall_s']:.1f} s (target <= {TARGET_DAY_S:.0f}), profile {medians['profile_ms']:.0f} ms "
        f"(<= {TARGET_PROFILE_MS:.0f}), drift statistics {medians['drift_ms']:.1f} ms (<= {TARGET_DRIFT_MS:.0f})"
    )


if __name__ == "__main__":
    main()
