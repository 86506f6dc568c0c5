"""Sweep benchmark: the same N trials as a plain loop and through our Ray Tune sweep, plus the refit's overhead.

Run: ``.venv/bin/python benchmarks/sweep.py [--trials 8 16] [--repeats 3] [--lake DIR]``

Data: the product's feature table, the frame ``trained_model`` trains on. The window is the first weekly partition the
default settings can train (``MLOPS_TRAIN_DAYS=91``, ``MLOPS_VALID_DAYS=7``: week 2013-04-15, training 2013-01-07 ..
04-07, validation 04-08 .. 04-14). The lake is built by the pipeline itself, untimed, in a temporary data dir: the days
2013-01-01 .. the validation end are landed (``mlops_assets.lib.landing.land_days``) and ``group:raw or
group:transform``, then ``group:features``, materialised in-process over them as one run each. ``--lake DIR`` reuses a
lake the pipeline built before (e.g. ``data/lake`` of ``benchmarks/quality.py``'s data dir) instead. The frame is
``mlops_assets.lib.point_in_time.build_training_frame`` over training + validation, split by day, categories encoded
with ``CategoryVocabulary.fit`` on the training days and the matrices from ``mlops_assets.lib.training.model_data``.

(a) loop: each configuration trained in turn with LightGBM on every core (``num_threads`` = 2 here), early stopping on
    the validation week, as a notebook would.
(b) sweep: :func:`mlops_assets.lib.sweep.run_sweep` on the same configurations, timed from before local Ray starts
    to after it is shut down (start-up included), two concurrent one-thread trials, successive
    halving (lib/halving.py).
Targets (issue 4): sweep/loop <= 1.5 on 2 cores; refit / bare ``lgb.train`` <= 1.3 (median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
# mlops_assets_tests.helpers.materialize_range: the single-run backfill the tests and the year build use.
sys.path.insert(0, str(REPO_ROOT))

from quality import set_environment  # noqa: E402  (after the path above; imports no mlops_assets)

if TYPE_CHECKING:
    from mlops_assets.lib.boosting import ModelData
    from mlops_assets.lib.sweep import SweepSettings

REFIT_ROUNDS = 200
LAKE_START = date(2013, 1, 1)


def run_loop(train: ModelData, valid: ModelData, configs: Sequence[Mapping[str, Any]], settings: SweepSettings) -> list:
    """The same trials as a plain sequential loop on all cores (the benchmark's baseline): one booster each."""
    from mlops_assets.lib.boosting import train_booster, training_params

    num_threads = settings.cpus_per_trial * settings.max_concurrent_trials
    boosters: list = []
    for config in configs:
        params = training_params(config, num_threads=num_threads, use_gpu=settings.use_gpu)
        boosters.append(
            train_booster(
                params, train, valid, settings.max_rounds, early_stopping_rounds=settings.early_stopping_rounds
            )
        )
    return boosters


def build_lake(end: date) -> tuple[str, float]:
    """Land LAKE_START .. ``end`` and materialise raw + dbt, then the features, over it; the lake root and seconds."""
    import logging

    import dagster as dg

    logging.getLogger("dagster").setLevel(logging.WARNING)
    from mlops_assets.definitions import defs
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.lib.landing import land_days
    from mlops_assets_tests.helpers import materialize_range

    started = time.perf_counter()
    land_days(SETTINGS.landing_root, LAKE_START, end)
    with dg.DagsterInstance.get() as instance:
        for selection in ("group:raw or group:transform", "group:features"):
            if not materialize_range(defs, instance, selection, LAKE_START, end, raise_on_error=False).success:
                raise SystemExit(f"sweep benchmark: materialising {selection} over {LAKE_START} .. {end} failed")
    return SETTINGS.lake_root, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lake", type=Path, help="a lake root the pipeline built (default: build one in a temp dir)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mlops_sweep_bench_"))
    set_environment(workdir)
    (workdir / "dagster_home").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", workdir / "dagster_home" / "dagster.yaml")

    import lightgbm as lgb
    import polars as pl

    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.defs.training.assets import FIRST_WEEK
    from mlops_assets.lib.boosting import refit, training_params
    from mlops_assets.lib.feature_contract import PARTITION_COLUMN
    from mlops_assets.lib.point_in_time import build_training_frame
    from mlops_assets.lib.search_space import sample_configs
    from mlops_assets.lib.sweep import SweepSettings, run_sweep
    from mlops_assets.lib.training import CategoryVocabulary, model_data, require_both_classes
    from mlops_assets.lib.windows import training_windows

    windows = training_windows(
        FIRST_WEEK, FIRST_WEEK + timedelta(days=7), SETTINGS.train_days, SETTINGS.valid_days, SETTINGS.holdout_days
    )
    if args.lake is None:
        lake_root, build_s = build_lake(windows.valid_end)
        print(f"lake: {LAKE_START} .. {windows.valid_end} by the pipeline in {build_s:.0f} s (--lake {lake_root})")
    else:
        lake_root = str(args.lake)
        print(f"lake: {lake_root} (reused)")

    # As trained_model builds its matrices.
    frame = build_training_frame(lake_root, windows.train_start, windows.valid_end)
    train_frame = frame.filter(pl.col(PARTITION_COLUMN) <= windows.train_end)
    valid_frame = frame.filter(pl.col(PARTITION_COLUMN) >= windows.valid_start)
    vocabulary = CategoryVocabulary.fit(train_frame)
    train, valid = model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary)
    require_both_classes(train, "training")
    require_both_classes(valid, "validation")
    settings = SweepSettings()
    print(
        f"data: week {FIRST_WEEK}: {train.rows:,} train rows ({windows.train_start} .. {windows.train_end}), "
        f"{valid.rows:,} validation rows ({windows.valid_start} .. {windows.valid_end}), "
        f"{len(train.feature_names)} features"
    )
    print(
        f"sweep: {settings.max_concurrent_trials} concurrent trials x {settings.cpus_per_trial} CPU, up to "
        f"{settings.max_rounds} rounds, early stopping {settings.early_stopping_rounds}, halving every "
        f"{settings.report_every} rounds\n"
    )

    print(f"{'trials':>6} | {'loop s':>7} | {'sweep s':>7} | {'Ray start s':>11} | {'sweep/loop':>10} | best AUC")
    print("-" * 66)
    for count in args.trials:
        configs = sample_configs(count, settings.seed)
        started = time.perf_counter()
        run_loop(train, valid, configs, settings)
        loop_s = time.perf_counter() - started
        started = time.perf_counter()
        result = run_sweep(train, valid, settings, "local", configs=configs)
        sweep_s = time.perf_counter() - started
        ratio = sweep_s / loop_s
        print(
            f"{count:>6} | {loop_s:>7.1f} | {sweep_s:>7.1f} | {result.ray_start_s:>11.1f} | {ratio:>10.2f} | "
            f"{result.best.valid_auc:.4f}"
        )

    params = training_params(sample_configs(1, settings.seed)[0], num_threads=2)
    refit_times, bare_times = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        refit(params, train, REFIT_ROUNDS)
        refit_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        lgb.train(
            dict(params),
            lgb.Dataset(
                train.features,
                label=train.label,
                feature_name=list(train.feature_names),
                categorical_feature=list(train.categorical_features),
            ),
            num_boost_round=REFIT_ROUNDS,
        )
        bare_times.append(time.perf_counter() - started)
    refit_s, bare_s = statistics.median(refit_times), statistics.median(bare_times)
    print(f"\nfinal training on the {train.rows:,} train rows, {REFIT_ROUNDS} rounds, median of {args.repeats}:")
    print(f"{'refit s':>8} | {'bare lgb.train s':>16} | {'ratio':>5}")
    print(f"{refit_s:>8.2f} | {bare_s:>16.2f} | {refit_s / bare_s:>5.2f}")


if __name__ == "__main__":
    main()
