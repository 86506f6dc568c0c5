"""Training logic without Dagster: windows, encoding, deterministic refit, and the sweep's failure handling."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_assets.lib.boosting import concat_model_data, model_text, refit, training_params
from mlops_assets.lib.feature_contract import LABEL_COLUMN, PARTITION_COLUMN
from mlops_assets.lib.point_in_time import build_training_frame
from mlops_assets.lib.search_space import sample_configs
from mlops_assets.lib.sweep import SweepFailedError, SweepSettings, run_sweep
from mlops_assets.lib.training import (
    MODEL_FEATURE_COLUMNS,
    CategoryVocabulary,
    TrainingDataError,
    auc,
    model_data,
)
from mlops_assets.lib.windows import training_windows
from mlops_assets_tests.conftest import FEATURES_END, FEATURES_START, Warehouse
from mlops_assets_tests.servers import ray_head

TINY_SWEEP = SweepSettings(num_samples=2, max_rounds=30, early_stopping_rounds=10, report_every=5, max_failures=0)


@given(
    start=st.dates(min_value=date(2013, 1, 1), max_value=date(2030, 1, 1)),
    length=st.integers(1, 31),
    train=st.integers(1, 120),
    valid=st.integers(1, 30),
    holdout=st.integers(1, 30),
)
def test_windows_are_ordered_disjoint_and_never_reach_past_the_partition(
    start: date, length: int, train: int, valid: int, holdout: int
) -> None:
    w = training_windows(start, start + timedelta(days=length), train, valid, holdout)
    assert w.train_start <= w.train_end < w.valid_start <= w.valid_end < w.holdout_start <= w.holdout_end
    assert (w.train_end - w.train_start).days + 1 == train
    assert (w.valid_end - w.valid_start).days + 1 == valid
    assert (w.holdout_end - w.holdout_start).days + 1 == holdout
    assert w.holdout_end == start + timedelta(days=length - 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_days": 0}, "train_days must be at least 1"),
        ({"valid_days": True}, "valid_days must be an int"),
        ({"partition_end": date(2013, 2, 1)}, "must be after partition_start"),
    ],
)
def test_bad_windows_name_the_parameter(kwargs: dict, message: str) -> None:
    args = {
        "partition_start": date(2013, 2, 4),
        "partition_end": date(2013, 2, 11),
        "train_days": 28,
        "valid_days": 7,
        "holdout_days": 7,
    }
    with pytest.raises(ValueError, match=message):
        training_windows(**(args | kwargs))


@pytest.fixture(scope="module")
def frames(feature_lake: Warehouse) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = build_training_frame(str(feature_lake.lake_root), FEATURES_START, FEATURES_END)
    cut = FEATURES_END - timedelta(days=7)
    return frame.filter(pl.col(PARTITION_COLUMN) <= cut), frame.filter(pl.col(PARTITION_COLUMN) > cut)


def test_model_data_encodes_every_servable_feature_and_unknown_categories_as_missing(frames) -> None:
    train_frame, valid_frame = frames
    vocabulary = CategoryVocabulary.fit(train_frame)
    data = model_data(train_frame, vocabulary)
    assert data.feature_names == MODEL_FEATURE_COLUMNS
    assert data.rows == train_frame.height
    assert "weather_age_minutes" not in data.feature_names  # not served online, so not a model input
    unseen = valid_frame.head(1).with_columns(pl.lit("ZZZ").alias("dest"))
    encoded = model_data(unseen, vocabulary)
    assert str(encoded.features[0, MODEL_FEATURE_COLUMNS.index("dest")]) == "nan"
    assert CategoryVocabulary.from_json(vocabulary.to_json()) == vocabulary


def test_model_data_names_missing_columns() -> None:
    with pytest.raises(TrainingDataError, match="lacks columns"):
        model_data(pl.DataFrame({"flight_id": ["x"], LABEL_COLUMN: [1]}), CategoryVocabulary({}))


def test_refit_is_byte_identical_whatever_the_input_row_order(frames) -> None:
    train_frame, valid_frame = frames
    vocabulary = CategoryVocabulary.fit(train_frame)
    params = training_params(sample_configs(1, seed=7)[0], num_threads=2)

    def fit(frame: pl.DataFrame) -> str:
        data = concat_model_data(model_data(frame, vocabulary), model_data(valid_frame, vocabulary))
        return model_text(refit(params, data, num_boost_round=40))

    first = fit(train_frame)
    assert fit(train_frame) == first
    assert fit(train_frame.sample(fraction=1.0, shuffle=True, seed=3)) == first
    # The comparison can fail: a different seed gives a different model.
    other = training_params(sample_configs(1, seed=7)[0] | {"seed": 99}, num_threads=2)
    data = concat_model_data(model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary))
    assert model_text(refit(other, data, num_boost_round=40)) != first


def test_a_failing_trial_does_not_kill_the_sweep(frames, local_ray: None) -> None:
    train_frame, valid_frame = frames
    vocabulary = CategoryVocabulary.fit(train_frame)
    train, valid = model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary)
    good, bad = sample_configs(2, seed=1)
    bad["num_leaves"] = 1  # LightGBM refuses: "Check failed: (num_leaves) > (1)"
    completed = []
    result = run_sweep(
        train, valid, TINY_SWEEP, configs=[good, bad], on_trial_complete=lambda r, d, n: completed.append(d)
    )
    assert sorted(t.status for t in result.trials) == ["ERROR", "TERMINATED"]
    assert result.best.params == good
    assert result.best.history and result.best.valid_auc == max(v for _, v in result.best.history)
    assert completed == [1, 2]
    failed = next(t for t in result.trials if t.status == "ERROR")
    assert "num_leaves" in failed.error_summary


def test_a_sweep_where_every_trial_fails_raises(frames, local_ray: None) -> None:
    train_frame, valid_frame = frames
    vocabulary = CategoryVocabulary.fit(train_frame)
    train, valid = model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary)
    configs = [c | {"num_leaves": 1} for c in sample_configs(2, seed=1)]
    with pytest.raises(SweepFailedError, match=r"all 2 trials of the sweep failed .*num_leaves"):
        run_sweep(train, valid, TINY_SWEEP, configs=configs)


def test_sweep_beats_chance_on_real_data(frames, local_ray: None) -> None:
    train_frame, valid_frame = frames
    vocabulary = CategoryVocabulary.fit(train_frame)
    train, valid = model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary)
    result = run_sweep(train, valid, TINY_SWEEP)
    assert len(result.trials) == 2
    best = result.best
    booster = refit(training_params(best.params, num_threads=2), train, num_boost_round=best.best_iteration or 1)
    assert auc(booster, valid) > 0.6


def test_two_concurrent_sweeps_of_the_same_seed_choose_the_same_trial(frames, local_ray: None) -> None:
    """Ray Tune's ASHA made this fail: which of two concurrent trials reached a rung first decided which one stopped.
    Six trials, two at a time, judged after two reports of five rounds; the halving rule must stop some of them."""
    train_frame, valid_frame = frames
    vocabulary = CategoryVocabulary.fit(train_frame)
    train, valid = model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary)
    settings = replace(TINY_SWEEP, num_samples=6, grace_period_reports=2, reduction_factor=2)

    def outcome() -> list[tuple[int, float | None, int | None, int | None]]:
        result = run_sweep(train, valid, settings)
        return [(t.index, t.valid_auc, t.best_iteration, t.stopped_at_report) for t in result.trials] + [
            (result.best.index, result.best.valid_auc, result.best.best_iteration, None)
        ]

    first = outcome()
    assert any(stopped is not None for *_, stopped in first[:-1]), first
    assert outcome() == first


# Runs a tiny sweep as a Ray Client (argv: client address, train and valid Parquet) and prints its trials as JSON.
_CLIENT_SWEEP = """
import json, sys
import polars as pl
from mlops_assets.lib.search_space import sample_configs
from mlops_assets.lib.sweep import SweepSettings, run_sweep
from mlops_assets.lib.training import CategoryVocabulary, model_data

address, train_path, valid_path = sys.argv[1:4]
train_frame, valid_frame = pl.read_parquet(train_path), pl.read_parquet(valid_path)
vocabulary = CategoryVocabulary.fit(train_frame)
good, bad = sample_configs(2, seed=1)
bad["num_leaves"] = 1
done = []
settings = SweepSettings(num_samples=2, max_rounds=30, early_stopping_rounds=10, report_every=5, max_failures=0)
result = run_sweep(
    model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary), settings, address,
    configs=[good, bad], on_trial_complete=lambda record, finished, total: done.append([record.status, finished]),
)
trials = [{"status": t.status, "reports": len(t.history), "error": t.error_summary} for t in result.trials]
print("RESULT " + json.dumps({"trials": trials, "notified": done, "best_is_good": result.best.params == good}))
"""


def test_a_sweep_as_a_ray_client_reports_every_trial_in_the_caller(frames, tmp_path: Path) -> None:
    """Under Ray Client (production's ray://…, a pod's or a container's Ray) Tune's driver runs on the cluster, with a
    pickled copy of the callbacks: the trials' results and the progress must still reach the calling process."""
    train_frame, valid_frame = frames
    train_frame.write_parquet(tmp_path / "train.parquet")
    valid_frame.write_parquet(tmp_path / "valid.parquet")
    with ray_head(tmp_path / "ray") as ray:
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("RAY_")}
        env = {**inherited, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": ray.token}
        parquet = [str(tmp_path / "train.parquet"), str(tmp_path / "valid.parquet")]
        done = subprocess.run(
            [sys.executable, "-c", _CLIENT_SWEEP, ray.client_address, *parquet],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert sorted(t["status"] for t in result["trials"]) == ["ERROR", "TERMINATED"]
    assert result["best_is_good"]
    assert [finished for _, finished in result["notified"]] == [1, 2]
    good = next(t for t in result["trials"] if t["status"] == "TERMINATED")
    assert good["reports"] > 0
    assert "num_leaves" in next(t for t in result["trials"] if t["status"] == "ERROR")["error"]
