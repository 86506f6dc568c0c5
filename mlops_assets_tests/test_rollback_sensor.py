"""The automated rollback end to end: real LightGBM models in a real MLflow store, real drift_profile runs on the
conftest lake, the sensor against a real Dagster instance (build_sensor_context), the rollback job in process.

A model trained on shuffled labels (the same features and rows, no skill) is promoted over a good one; once
drift_profile has scored both on enough labelled days the sensor requests the rollback, and the job restores the
good one. The reverse (a good champion over the shuffled one) is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date

import dagster as dg
import numpy as np
import pytest

from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.monitoring.assets import (
    AB_DAYS,
    AB_DELTA,
    AB_HIGH,
    AB_LOW,
    CHALLENGER_SCORE,
    CHAMPION_SCORE,
    PREVIOUS_AUC,
    PREVIOUS_SCORE,
    drift_profile,
    read_day_scores,
)
from mlops_assets.defs.monitoring.sensors import ROLLBACK_REASON_TAG, champion_rollback_sensor
from mlops_assets.defs.training.promotion import rollback_champion
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.evaluation_metrics import point_metrics
from mlops_assets.lib.feature_contract import LABEL_COLUMN
from mlops_assets.lib.model_registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, alias_version, promote
from mlops_assets_tests.test_monitoring_assets import DAYS, Setup, _register_champion
from mlops_assets_tests.test_monitoring_assets import setup as monitoring_setup  # noqa: F401  (a module fixture)

# Its own registered model: the lake is the session's, and a champion's drift reference is kept there per
# <model>-v<version>, so the same name would share version numbers (and references) with test_monitoring_assets.
MODEL_NAME = "flight_delay_rollback"


@dataclass(frozen=True)
class Models:
    setup: Setup
    instance: dg.DagsterInstance
    good: str
    bad: str


@pytest.fixture(scope="module")
def models(monitoring_setup: Setup) -> Iterator[Models]:  # noqa: F811
    base = monitoring_setup.tracking
    tracking = MlflowTracking(
        tracking_uri=base.tracking_uri,
        registry_uri=base.registry_uri,
        artifact_root=base.artifact_root,
        experiment_name=MODEL_NAME,
        registered_model_name=MODEL_NAME,
    )
    setup = replace(
        monitoring_setup, tracking=tracking, resources={**monitoring_setup.resources, "mlflow_tracking": tracking}
    )
    good = _register_champion(setup, promote_it=False)
    bad = _register_champion(setup, shuffle_labels=True, promote_it=False)
    # Its own instance: the sensor reads every drift_profile day it records, and only this module's should count.
    with dg.instance_for_test() as instance:
        yield Models(setup, instance, good, bad)


def _profile(models: Models, day: date) -> dict[str, dg.MetadataValue]:
    result = dg.materialize(
        [drift_profile], instance=models.instance, resources=models.setup.resources, partition_key=day.isoformat()
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node(drift_profile.op.name)
    return dict(materialization.metadata)


def _evaluate(models: Models) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_sensor_context(
        instance=models.instance,
        resources={"mlflow_tracking": models.setup.tracking, "lake": models.setup.resources["lake"]},
    )
    result = champion_rollback_sensor(context)
    assert isinstance(result, dg.RunRequest | dg.SkipReason), result
    return result


def _alias(models: Models, alias: str) -> str | None:
    version = alias_version(models.setup.tracking.client(), MODEL_NAME, alias)
    return str(version.version) if version is not None else None


def _promote(models: Models, version: str) -> None:
    promote(models.setup.tracking.client(), MODEL_NAME, version, "test")


def _number(metadata: dict[str, dg.MetadataValue], key: str) -> float:
    value = metadata[key].value
    assert isinstance(value, int | float), (key, value)
    return float(value)


@dataclass(frozen=True)
class BadOverGood:
    days: list[dict[str, dg.MetadataValue]]
    after_two_days: dg.RunRequest | dg.SkipReason
    after_three_days: dg.RunRequest | dg.SkipReason

    @property
    def request(self) -> dg.RunRequest:
        assert isinstance(self.after_three_days, dg.RunRequest), self.after_three_days
        return self.after_three_days


@pytest.fixture(scope="module")
def bad_over_good(models: Models) -> BadOverGood:
    """good promoted, then bad over it; the sensor evaluated after two, then three profiled days."""
    _promote(models, models.good)
    _promote(models, models.bad)
    days = [_profile(models, DAYS[0]), _profile(models, DAYS[1])]
    after_two_days = _evaluate(models)
    days.append(_profile(models, DAYS[2]))
    return BadOverGood(days, after_two_days, _evaluate(models))


def test_a_worse_champion_over_its_first_labelled_days_is_rolled_back(
    models: Models, bad_over_good: BadOverGood
) -> None:
    assert (_alias(models, CHAMPION), _alias(models, PREVIOUS_CHAMPION)) == (models.bad, models.good)
    two = bad_over_good.after_two_days
    assert isinstance(two, dg.SkipReason) and "2 of the 3 days needed" in (two.skip_message or "")
    request = bad_over_good.request
    assert request.run_key == f"rollback-{MODEL_NAME}-v{models.bad}"
    reason = request.run_config["ops"]["restore_previous_champion"]["config"]["reason"]
    assert reason.startswith(f"automated rollback of v{models.bad} to v{models.good} on {DAYS[0]}..{DAYS[2]}")
    assert "over 3 labelled day(s)" in reason and "95% CI" in reason
    assert request.tags[ROLLBACK_REASON_TAG] == reason[:200]
    # The figures it states are the days' own: the mean of the daily AUC differences on the same rows.
    expected = np.mean([_number(d, "roc_auc") - _number(d, PREVIOUS_AUC) for d in bad_over_good.days])
    assert f"{expected:+.4f} over 3" in reason and expected < -0.1


def test_the_days_scores_are_persisted_paired_on_the_same_rows(models: Models, bad_over_good: BadOverGood) -> None:
    scores = read_day_scores(models.setup.lake_root, DAYS[1])
    assert scores is not None and (scores.champion, scores.previous_champion) == (models.bad, models.good)
    assert scores.challenger is None  # the challenger alias is the champion itself: no shadow
    frame, metadata = scores.frame, bad_over_good.days[1]
    assert set(frame.columns) == {LABEL_COLUMN, CHAMPION_SCORE, PREVIOUS_SCORE, CHALLENGER_SCORE}
    assert frame.height == _number(metadata, "rows") and frame.get_column(CHALLENGER_SCORE).null_count() == frame.height
    y, p_champion, p_previous = scores.pair(PREVIOUS_SCORE)
    assert point_metrics(y, p_champion)["roc_auc"] == pytest.approx(_number(metadata, "roc_auc"), abs=1e-9)
    assert point_metrics(y, p_previous)["roc_auc"] == pytest.approx(_number(metadata, PREVIOUS_AUC), abs=1e-9)
    assert metadata["previous_champion_version"].value == models.good


def test_the_requested_run_restores_the_previous_champion_once(models: Models, bad_over_good: BadOverGood) -> None:
    request = bad_over_good.request
    config = request.run_config["ops"]["restore_previous_champion"]["config"]
    assert config["expected_champion"] == models.bad
    # Decided for another champion (the alias moved between the decision and the run): it fails, nothing moves.
    stale = {"ops": {"restore_previous_champion": {"config": {**config, "expected_champion": models.good}}}}
    failed = rollback_champion.execute_in_process(
        run_config=stale,
        resources={"mlflow_tracking": models.setup.tracking},
        instance=models.instance,
        raise_on_error=False,
    )
    assert not failed.success
    (failure,) = [event for event in failed.all_events if event.is_step_failure]
    assert f"decided for 'champion' v{models.good}, but 'champion' is now v{models.bad}" in str(
        failure.step_failure_data.error
    )
    assert (_alias(models, CHAMPION), _alias(models, PREVIOUS_CHAMPION)) == (models.bad, models.good)
    result = rollback_champion.execute_in_process(
        run_config=request.run_config,
        resources={"mlflow_tracking": models.setup.tracking},
        instance=models.instance,
        tags=request.tags,
    )
    assert result.success
    assert (_alias(models, CHAMPION), _alias(models, PREVIOUS_CHAMPION)) == (models.good, None)
    demoted = models.setup.tracking.client().get_model_version(MODEL_NAME, models.bad)
    assert demoted.tags["rolled_back_reason"].startswith(f"automated rollback of v{models.bad}")
    # Nothing left to roll back to: the sensor skips (and the run key would not repeat it anyway).
    again = _evaluate(models)
    assert isinstance(again, dg.SkipReason) and PREVIOUS_CHAMPION in (again.skip_message or "")


def test_a_better_champion_is_kept_and_the_online_ab_has_a_paired_ci(
    models: Models, bad_over_good: BadOverGood
) -> None:
    # Good over bad; the shuffled model is also the shadow challenger (its alias is the newest registered version).
    _promote(models, models.bad)
    _promote(models, models.good)
    aliases = (_alias(models, CHAMPION), _alias(models, PREVIOUS_CHAMPION), _alias(models, CHALLENGER))
    assert aliases == (models.good, models.bad, models.bad)
    days = [_profile(models, day) for day in DAYS]
    result = _evaluate(models)
    assert isinstance(result, dg.SkipReason), result
    message = result.skip_message or ""
    assert "not worse beyond the CI" in message and f"champion v{models.good} vs previous v{models.bad}" in message
    # The A/B (challenger - champion) over the days of this pair so far: none on the first day, a CI from the second.
    assert AB_DELTA not in days[0]
    assert (_number(days[1], AB_DAYS), _number(days[2], AB_DAYS)) == (2, 3)
    expected = np.mean([_number(d, "shadow_roc_auc") - _number(d, "roc_auc") for d in days])
    low, delta, high = (_number(days[2], key) for key in (AB_LOW, AB_DELTA, AB_HIGH))
    assert delta == pytest.approx(expected) and low <= delta <= high < 0


def test_the_sensor_states_the_configured_rule() -> None:
    description = champion_rollback_sensor.description or ""
    assert f"{SETTINGS.rollback_min_days} labelled days" in description
    assert f"below -{SETTINGS.rollback_tolerance:g}" in description
