"""drift_profile end to end: real features, a real LightGBM champion in a real MLflow store, in-process Dagster runs.

The champion is registered directly (as trained_model does after its sweep) on the conftest training window, with
the window parameters and an evaluation report logged on its run, then promoted with the registry's own ``promote``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.monitoring.assets import (
    CHAMPION_SCORE,
    DRIFT_PROFILE_KEY,
    PREVIOUS_SCORE,
    drift_profile,
    read_day_scores,
)
from mlops_assets.defs.resources import build_resources
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib import drift, prediction_log
from mlops_assets.lib.boosting import refit, training_params
from mlops_assets.lib.feature_contract import KEY_COLUMN, LABEL_COLUMN
from mlops_assets.lib.model_artifacts import load_version
from mlops_assets.lib.model_registry import CHAMPION, alias_version, promote
from mlops_assets.lib.point_in_time import build_training_frame
from mlops_assets.lib.training import (
    MODEL_FEATURE_COLUMNS,
    CategoryVocabulary,
    in_model_order,
    input_example,
    model_data,
)
from mlops_assets.lib.windows import training_windows
from mlops_assets_tests.conftest import FEATURES_END, FEATURES_START, TRAINING_PARTITION, Warehouse

DAYS = [date(2013, 2, 11), date(2013, 2, 12), date(2013, 2, 13)]
HOLDOUT_AUC = 0.70
SERVED_FLIGHTS = 200  # of DAYS[2], logged as the service would log them
SKEWED_FLIGHTS = 8  # of those, served 0.3 above their offline score (online features that training never saw)


@dataclass(frozen=True)
class Setup:
    tracking: MlflowTracking
    resources: dict[str, object]
    lake_root: str


@pytest.fixture(scope="module")
def setup(feature_lake: Warehouse, dagster_instance: object, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    from mlops_assets.definitions import defs
    from mlops_assets_tests.helpers import materialize_range

    assert materialize_range(defs, dagster_instance, "group:features", DAYS[0], DAYS[-1]).success
    tmp = tmp_path_factory.mktemp("monitoring")
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        registry_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        artifact_root=str(tmp / "artifacts"),
    )
    return Setup(tracking, {**build_resources(SETTINGS), "mlflow_tracking": tracking}, str(feature_lake.lake_root))


def _register_champion(setup: Setup, *, shuffle_labels: bool = False, promote_it: bool = True) -> str:
    """Register a model of the conftest window (and promote it unless told not to). ``shuffle_labels`` trains it on
    permuted labels: a real model of the same features and rows, with no skill (the rollback tests' bad champion)."""
    week = date.fromisoformat(TRAINING_PARTITION)
    windows = training_windows(week, date(2013, 2, 18), SETTINGS.train_days, SETTINGS.valid_days, 7)
    assert (windows.train_start, windows.valid_end) == (FEATURES_START, FEATURES_END)
    frame = build_training_frame(setup.lake_root, windows.train_start, windows.train_end)
    if shuffle_labels:
        frame = frame.with_columns(pl.col(LABEL_COLUMN).shuffle(seed=7))
    vocabulary = CategoryVocabulary.fit(frame)
    data = model_data(frame, vocabulary)
    booster = refit(training_params({"num_leaves": 15, "learning_rate": 0.08}, num_threads=2), data, 80)
    tags = {"dagster.partition": TRAINING_PARTITION, "training_data_hash": "t", "git_sha": "t", "config_hash": "t"}
    report = {"metrics": {"candidate": {"roc_auc": {"estimate": HOLDOUT_AUC, "low": 0.68, "high": 0.72}}}}
    with setup.tracking.parent_run("monitoring-test", tags) as run:
        setup.tracking.log_params(run, windows.as_metadata())
        setup.tracking.log_text(run, vocabulary.to_json(), "encoding/categories.json")
        setup.tracking.log_text(run, json.dumps(report), f"evaluation/{TRAINING_PARTITION}/report.json")
        version = setup.tracking.register_lightgbm(
            run, booster, input_example(data).to_pandas(), tags, alias="challenger"
        )
    if promote_it:
        promote(setup.tracking.client(), setup.tracking.registered_model_name, version, "test")
    return version


def _profile(setup: Setup, instance: object, day: date) -> dict[str, dg.MetadataValue]:
    result = dg.materialize(
        [drift_profile],
        instance=instance,
        resources=setup.resources,
        partition_key=day.isoformat(),  # type: ignore[arg-type]
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node(drift_profile.op.name)
    return materialization.metadata


@pytest.fixture(scope="module")
def flow(setup: Setup, dagster_instance: object) -> Iterator[dict[str, object]]:
    steps: dict[str, object] = {"before": _profile(setup, dagster_instance, DAYS[0])}
    steps["version"] = _register_champion(setup)
    steps["day1"] = _profile(setup, dagster_instance, DAYS[1])
    _serve(setup, DAYS[2], str(steps["version"]))
    steps["day2"] = _profile(setup, dagster_instance, DAYS[2])
    yield steps


def _serve(setup: Setup, day: date, version: str) -> None:
    """Log the first SERVED_FLIGHTS of the day through the service's writer, each asked twice (the earlier answer is
    superseded); the champion's offline score, except SKEWED_FLIGHTS of them."""
    client = setup.tracking.client()
    champion = load_version(client, alias_version(client, setup.tracking.registered_model_name, CHAMPION))
    frame = build_training_frame(setup.lake_root, day, day)
    scores = champion.predict(model_data(frame, champion.vocabulary).features)
    flights = in_model_order(frame).get_column(KEY_COLUMN).cast(pl.String).to_list()
    writer = prediction_log.PredictionLogWriter(setup.lake_root, batch_rows=150)
    for attempt in ("early", "final"):
        for index in range(SERVED_FLIGHTS):
            score = float(scores[index]) + (0.3 if index < SKEWED_FLIGHTS else 0.0)
            writer.append(
                {
                    prediction_log.FLIGHT_ID: flights[index],
                    prediction_log.DAY_COLUMN: day,
                    prediction_log.CHAMPION_VERSION: version,
                    prediction_log.CHAMPION_SCORE: 0.5 if attempt == "early" else min(score, 1.0),
                }
            )
    writer.close()


def _uri(setup: Setup, day: date, name: str) -> Path:
    return Path(setup.lake_root) / "monitoring" / "drift_profile" / f"date={day.isoformat()}" / name


def test_without_a_champion_the_features_are_profiled_and_no_drift_is_claimed(
    setup: Setup, flow: dict[str, object]
) -> None:
    metadata = flow["before"]
    assert metadata["champion_version"].value == "none" and "drift_score" not in metadata  # type: ignore[index]
    view = drift.deserialize(_uri(setup, DAYS[0], "features.bin").read_bytes())
    assert set(MODEL_FEATURE_COLUMNS) <= set(view.get_columns())
    rows = build_training_frame(setup.lake_root, DAYS[0], DAYS[0]).height
    assert view.get_column(MODEL_FEATURE_COLUMNS[0]).get_metric("counts").to_summary_dict()["n"] == rows


def test_live_performance_matches_a_recomputation_on_the_days_rows(setup: Setup, flow: dict[str, object]) -> None:
    metadata = flow["day1"]
    client = setup.tracking.client()
    champion = load_version(client, alias_version(client, setup.tracking.registered_model_name, CHAMPION))
    data = model_data(build_training_frame(setup.lake_root, DAYS[1], DAYS[1]), champion.vocabulary)
    p = champion.predict(data.features)
    auc = roc_auc_score(data.label, p)
    assert metadata["champion_version"].value == flow["version"]  # type: ignore[index]
    assert metadata["rows"].value == data.rows  # type: ignore[index]
    assert metadata["roc_auc"].value == pytest.approx(auc, abs=1e-6)  # type: ignore[index]
    assert metadata["log_loss"].value == pytest.approx(log_loss(data.label, p), rel=1e-4)  # type: ignore[index]
    assert metadata["auc_decay"].value == pytest.approx((HOLDOUT_AUC - auc) / HOLDOUT_AUC, abs=1e-6)  # type: ignore[index]
    assert 0 <= metadata["ece"].value < 0.3  # type: ignore[index]


def test_drift_is_measured_against_the_champions_training_reference(setup: Setup, flow: dict[str, object]) -> None:
    metadata = flow["day1"]
    score = metadata["drift_score"].value  # type: ignore[index]
    assert 0.0 < score < 0.5, score
    reference_dir = Path(setup.lake_root) / "monitoring" / "reference" / f"{setup.tracking.registered_model_name}-v1"
    reference = drift.deserialize((reference_dir / "features.bin").read_bytes())
    train_rows = build_training_frame(setup.lake_root, FEATURES_START, date(2013, 2, 3)).height
    assert reference.get_column(MODEL_FEATURE_COLUMNS[0]).get_metric("counts").to_summary_dict()["n"] == train_rows
    scores = drift.deserialize(_uri(setup, DAYS[1], "scores.bin").read_bytes())
    assert CHAMPION_SCORE in scores.get_columns()
    summary = json.loads(_uri(setup, DAYS[1], "drift.json").read_text())
    assert summary["drift_score"] == pytest.approx(score)
    assert set(summary["columns"]) == set(MODEL_FEATURE_COLUMNS)
    assert sum(c["weight"] for c in summary["columns"].values()) == pytest.approx(1.0)
    # A day has one day of the week: a calendar feature the partition fixes is reported but not scored.
    assert summary["columns"]["day_of_week"]["weight"] == 0.0 and summary["columns"]["day_of_week"]["js"] > 0.5
    baseline = json.loads((reference_dir / "baseline.json").read_text())
    assert baseline["days"] == 28 and 0.0 < baseline["median"] <= baseline["p90"] < 1.0
    assert metadata["drift_excess"].value == pytest.approx(score - baseline["p90"])  # type: ignore[index]


def test_the_days_labels_and_scores_are_kept_for_paired_comparisons(setup: Setup, flow: dict[str, object]) -> None:
    metadata = flow["day1"]
    scores = read_day_scores(setup.lake_root, DAYS[1])
    assert scores is not None and scores.champion == flow["version"]
    # One champion, nothing to roll back to: the previous champion's column is empty and no figure is claimed.
    assert scores.previous_champion is None and scores.challenger is None
    assert scores.frame.height == metadata["rows"].value  # type: ignore[index]
    assert scores.frame.get_column(PREVIOUS_SCORE).null_count() == scores.frame.height
    y, p, _ = scores.pair(PREVIOUS_SCORE)
    assert roc_auc_score(y, p) == pytest.approx(metadata["roc_auc"].value, abs=1e-9)  # type: ignore[index]
    assert "previous_champion_roc_auc" not in metadata and "ab_days" not in metadata  # type: ignore[operator]
    summary = json.loads(_uri(setup, DAYS[1], "drift.json").read_text())
    assert summary["previous_champion"] is None and summary["online_ab"] is None


def test_a_rerun_replaces_the_partition(setup: Setup, flow: dict[str, object], dagster_instance: object) -> None:
    again = _profile(setup, dagster_instance, DAYS[2])
    view = drift.deserialize(_uri(setup, DAYS[2], "features.bin").read_bytes())
    counts = view.get_column(MODEL_FEATURE_COLUMNS[0]).get_metric("counts").to_summary_dict()
    assert counts["n"] == again["rows"].value  # type: ignore[index]  # replaced, not appended to
    assert again["drift_score"].value == pytest.approx(flow["day2"]["drift_score"].value)  # type: ignore[index]
    assert not list(_uri(setup, DAYS[2], "x").parent.glob(".*.tmp"))


def test_drift_profile_is_daily_with_freshness_and_data_arrival_automation() -> None:
    from mlops_assets.definitions import defs

    node = defs.resolve_asset_graph().get(DRIFT_PROFILE_KEY)
    assert node.partitions_def is not None and node.freshness_policy is not None
    assert "in_latest_time_window" not in str(node.automation_condition.get_snapshot())
    assert np.isfinite(SETTINGS.drift_threshold)


def test_a_range_run_records_each_days_figures_for_the_sensor(
    setup: Setup, flow: dict[str, object], dagster_instance: object
) -> None:
    from mlops_assets.defs.monitoring.sensors import monitored_days

    result = dg.materialize(
        [drift_profile],
        instance=dagster_instance,  # type: ignore[arg-type]
        resources=setup.resources,
        tags={
            "dagster/asset_partition_range_start": DAYS[1].isoformat(),
            "dagster/asset_partition_range_end": DAYS[2].isoformat(),
        },
    )
    assert result.success
    days = {d.day: d for d in monitored_days(dagster_instance, window_days=2)}  # type: ignore[arg-type]
    assert set(days) == {DAYS[1], DAYS[2]}
    for day, single in ((DAYS[1], flow["day1"]), (DAYS[2], flow["day2"])):
        assert days[day].rows == single["rows"].value  # type: ignore[index]
        assert days[day].drift_score == pytest.approx(single["drift_excess"].value)  # type: ignore[index]


def test_what_was_served_is_read_from_the_prediction_log(setup: Setup, flow: dict[str, object]) -> None:
    without_log, metadata = flow["day1"], flow["day2"]
    assert without_log["served_requests"].value == 0  # type: ignore[index]
    assert metadata["served_requests"].value == 2 * SERVED_FLIGHTS  # type: ignore[index]
    assert metadata["served_flights"].value == SERVED_FLIGHTS  # type: ignore[index]
    assert metadata["served_labelled"].value == SERVED_FLIGHTS  # type: ignore[index]
    assert metadata["serving_skew_compared"].value == SERVED_FLIGHTS  # type: ignore[index]
    assert metadata["serving_skewed_share"].value == pytest.approx(SKEWED_FLIGHTS / SERVED_FLIGHTS)  # type: ignore[index]
    assert 0.29 < metadata["serving_skew_max"].value <= 0.3 + 1e-9  # type: ignore[index,operator]
    summary = json.loads(_uri(setup, DAYS[2], "drift.json").read_text())
    assert summary["served"]["labelled"] == SERVED_FLIGHTS
