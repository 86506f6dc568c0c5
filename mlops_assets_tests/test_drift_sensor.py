"""The drift -> retrain sensor against a real Dagster instance (build_sensor_context), and the rule it applies.

drift_profile materialisations are reported with the metadata the asset records; the sensor reads them back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pytest

from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.features.assets import FEATURE_STORE_KEY
from mlops_assets.defs.features.checks import VALIDATED_KEY
from mlops_assets.defs.monitoring.assets import AUC_DECAY, DRIFT_EXCESS, DRIFT_PROFILE_KEY, ROWS
from mlops_assets.defs.monitoring.sensors import drift_retrain_sensor, retrain_policy
from mlops_assets.defs.training.assets import TRAINED_MODEL_KEY
from mlops_assets.lib.retrain import DayMonitor, decide, is_scheduled_week, week_of

HIGH, LOW = SETTINGS.drift_threshold * 2, SETTINGS.drift_threshold / 3
LATEST = date(2013, 7, 10)  # a Wednesday: its week is 2013-07-08


@pytest.fixture()
def instance() -> Iterator[dg.DagsterInstance]:
    """Every feature day up to LATEST built, so a requested week's training data exists."""
    with dg.instance_for_test() as instance:
        day = SETTINGS.partitions_start
        while day <= LATEST:
            for key in (VALIDATED_KEY, FEATURE_STORE_KEY):
                instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=day.isoformat()))
            day += timedelta(days=1)
        yield instance


def test_a_week_whose_training_days_are_not_all_built_waits() -> None:
    # A day of the window that failed (e.g. a run that lost a race for the warehouse) must not start a sweep that
    # fails at once: the sensor waits, naming the day, and requests the week once it is built.
    with dg.instance_for_test() as instance:
        gap = date(2013, 7, 1)  # the validation week's first day: in the window whatever MLOPS_TRAIN_DAYS
        day = SETTINGS.partitions_start
        while day <= LATEST:
            keys = [FEATURE_STORE_KEY] if day == gap else [VALIDATED_KEY, FEATURE_STORE_KEY]
            for key in keys:
                instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=day.isoformat()))
            day += timedelta(days=1)
        _profiled(instance, [HIGH] * 7)
        waiting = _evaluate(instance)
        assert not waiting.run_requests and "1 of its training and validation days are not built (2013-07-01)" in _skip(
            waiting
        )
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=VALIDATED_KEY, partition=gap.isoformat()))
        (request,) = _evaluate(instance, cursor=waiting.cursor).run_requests
        assert request.partition_key == "2013-07-08"


def _profiled(instance: dg.DagsterInstance, scores: list[float], rows: int = 900, decay: float = 0.0) -> None:
    """One drift_profile materialisation per day, ending on LATEST (scores oldest first)."""
    for offset, score in enumerate(scores):
        day = LATEST - timedelta(days=len(scores) - 1 - offset)
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=DRIFT_PROFILE_KEY,
                partition=day.isoformat(),
                metadata={ROWS: rows, DRIFT_EXCESS: score, AUC_DECAY: decay},
            )
        )


def _evaluate(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return drift_retrain_sensor(context)


def _skip(result: dg.SensorResult) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""


def test_persistent_drift_requests_the_current_week_once(instance: dg.DagsterInstance) -> None:
    _profiled(instance, [LOW, HIGH, LOW, HIGH, LOW, HIGH, HIGH])
    result = _evaluate(instance)
    (request,) = result.run_requests
    assert request.partition_key == "2013-07-08" and request.asset_selection == [TRAINED_MODEL_KEY]
    assert request.run_key == "drift-retrain-2013-07-08" and "4 of the last 7" in request.tags["mlops/retrain_reason"]
    # The cursor survives a restart: the same state does not request the week again (cooldown on the request).
    again = _evaluate(instance, cursor=result.cursor)
    assert not again.run_requests and "cooldown" in _skip(again)


def test_one_odd_day_or_a_calm_latest_day_does_not_retrain(instance: dg.DagsterInstance) -> None:
    _profiled(instance, [LOW, LOW, LOW, LOW, LOW, LOW, HIGH])
    assert not _evaluate(instance).run_requests
    _profiled(instance, [HIGH, HIGH, HIGH, HIGH, HIGH, HIGH, LOW])
    result = _evaluate(instance)
    assert not result.run_requests and "within thresholds" in _skip(result)


def test_performance_decay_alone_retrains(instance: dg.DagsterInstance) -> None:
    _profiled(instance, [LOW] * 7, decay=SETTINGS.decay_threshold * 1.5)
    (request,) = _evaluate(instance).run_requests
    assert "AUC decay" in request.tags["mlops/retrain_reason"]


def test_small_days_and_a_recent_model_hold_it_back(instance: dg.DagsterInstance) -> None:
    _profiled(instance, [HIGH] * 7, rows=SETTINGS.drift_min_rows - 1)
    assert not _evaluate(instance).run_requests
    _profiled(instance, [HIGH] * 7)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=TRAINED_MODEL_KEY, partition="2013-07-01"))
    result = _evaluate(instance)
    assert not result.run_requests and "cooldown" in _skip(result)


def test_nothing_profiled_yet(instance: dg.DagsterInstance) -> None:
    result = _evaluate(instance)
    assert not result.run_requests and "no monitored day" in _skip(result)


def test_rule_data_quality_failure_blocks_and_never_retrains() -> None:
    policy = retrain_policy(SETTINGS)
    days = [DayMonitor(LATEST - timedelta(days=i), 900, HIGH, None, True) for i in range(1, 7)]
    bad_latest = DayMonitor(LATEST, 900, HIGH, None, quality_passed=False)
    decision = decide([*days, bad_latest], policy, last_trained_week=None)
    assert not decision.retrain and "data-quality" in decision.reason
    good_latest = DayMonitor(LATEST, 900, HIGH, None, quality_passed=True)
    assert decide([*days, good_latest], policy, last_trained_week=None).week == week_of(LATEST)


def test_schedule_counts_weeks_from_the_first() -> None:
    first = date(2013, 4, 8)
    assert [is_scheduled_week(first + timedelta(weeks=w), first, 4) for w in range(9)] == [
        True,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
        True,
    ]
    assert not is_scheduled_week(first - timedelta(weeks=4), first, 4)
    with pytest.raises(ValueError, match="every_weeks"):
        is_scheduled_week(first, first, 0)
