"""Sweep benchmark: the same N trials as a plain loop and through our Ray Tune sweep, plus the refit's overhead.

Run: ``.venv/bin/python benchmarks/sweep.py [--trials 8 16] [--repeats 3]``

Data: all 2013 flights from the package (Jan-Aug train, 220k rows; Sep validate), schedule, dimension and weather
features (see ``_data.py``), the size a yearly model trains on.

(a) loop: each configuration trained in turn with LightGBM on every core (``num_threads`` = 2 here), early stopping on
    the validation month, as a notebook would.
(b) sweep: :func:`mlops_assets.lib.sweep.run_sweep` on the same configurations, timed from before local Ray starts
    to after it is shut down (start-up included), two concurrent one-thread trials, ASHA.
Targets (issue 4): sweep/loop <= 1.5 on 2 cores; refit / bare ``lgb.train`` <= 1.3 (median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import CATEGORICAL_COLUMNS, FEATURE_COLUMNS, LABEL_COLUMN, benchmark_frames

from mlops_assets.lib.boosting import ModelData, refit, train_booster, training_params
from mlops_assets.lib.search_space import sample_configs
from mlops_assets.lib.sweep import SweepSettings, run_sweep
from mlops_assets.lib.training import CategoryVocabulary

REFIT_ROUNDS = 200


def run_loop(train: ModelData, valid: ModelData, configs: Sequence[Mapping[str, Any]], settings: SweepSettings) -> list:
    """The same trials as a plain sequential loop on all cores (the benchmark's baseline): one booster each."""
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


def encode(frame: pl.DataFrame, vocabulary: CategoryVocabulary) -> ModelData:
    encoded = vocabulary.encode(frame.sort("flight_id"))
    return ModelData(
        features=encoded.select(pl.col(c).cast(pl.Float32) for c in FEATURE_COLUMNS).to_numpy(order="c"),
        label=encoded.get_column(LABEL_COLUMN).cast(pl.Float32).to_numpy(),
        feature_names=FEATURE_COLUMNS,
        categorical_features=CATEGORICAL_COLUMNS,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    frames = benchmark_frames()
    vocabulary = CategoryVocabulary.fit(frames.train, CATEGORICAL_COLUMNS)
    train, valid = encode(frames.train, vocabulary), encode(frames.valid, vocabulary)
    settings = SweepSettings()
    print(f"data: {train.rows:,} train rows, {valid.rows:,} validation rows, {len(FEATURE_COLUMNS)} features")
    print(
        f"sweep: {settings.max_concurrent_trials} concurrent trials x {settings.cpus_per_trial} CPU, up to "
        f"{settings.max_rounds} rounds, early stopping {settings.early_stopping_rounds}, ASHA every "
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
                feature_name=list(FEATURE_COLUMNS),
                categorical_feature=list(CATEGORICAL_COLUMNS),
            ),
            num_boost_round=REFIT_ROUNDS,
        )
        bare_times.append(time.perf_counter() - started)
    refit_s, bare_s = statistics.median(refit_times), statistics.median(bare_times)
    print(f"\nfinal training, {REFIT_ROUNDS} rounds, median of {args.repeats}:")
    print(f"{'refit s':>8} | {'bare lgb.train s':>16} | {'ratio':>5}")
    print(f"{refit_s:>8.2f} | {bare_s:>16.2f} | {refit_s / bare_s:>5.2f}")


if __name__ == "__main__":
    main()
