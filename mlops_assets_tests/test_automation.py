"""The automation conditions follow data arrival on replayed 2013 days, evaluated against a real Dagster instance.

Materialisations are reported to the instance as runless events (what a finished run records), so the test checks
the conditions themselves, tick by tick, with ``evaluate_automation_conditions`` and its cursor, as the automation
sensor would evaluate them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import dagster as dg
import pytest

from mlops_assets.definitions import defs
from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.training.assets import FIRST_WEEK, TRAINED_MODEL_KEY, weekly_partitions
from mlops_assets.lib.retrain import is_scheduled_week
from mlops_assets.lib.windows import training_windows

GRAPH = defs.resolve_asset_graph()
DAILY_KEYS = {key for key in GRAPH.get_all_asset_keys() if GRAPH.get(key).partitions_def is not None}
RAW_DAILY = [dg.AssetKey(["raw", "flights"]), dg.AssetKey(["raw", "weather"])]
DIMENSIONS = [key for key in GRAPH.get_all_asset_keys() if GRAPH.get(key).partitions_def is None]
DRIFT = dg.AssetKey("drift_profile")
# Every daily asset below raw but drift_profile, which also waits for the day's blocking data-quality checks, so it
# is requested on the tick after the features' run recorded them.
DAILY_CHAIN = {
    key
    for key in DAILY_KEYS
    if GRAPH.get(key).partitions_def is not weekly_partitions and key not in (*RAW_DAILY, DRIFT)
}
FEATURE_CHECKS = [key for key in GRAPH.asset_check_keys if key.asset_key == dg.AssetKey("validated_features")]


class Ticks:
    """Successive evaluations of every automation condition, the cursor carried from one to the next."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None

    def __call__(self) -> dict[dg.AssetKey, set[str | None]]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        requested: dict[dg.AssetKey, set[str | None]] = {}
        for key in GRAPH.get_all_asset_keys():
            partitions = result.get_requested_partitions(key)
            if partitions:
                requested[key] = set(partitions)
        return requested


def report(instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey], partitions: Iterable[str | None]) -> None:
    """Materialisations in dependency order, as a run records them."""
    wanted = set(keys)
    ordered = [key for key in GRAPH.toposorted_asset_keys if key in wanted]
    for partition in partitions:
        for key in ordered:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def report_checks(instance: dg.DagsterInstance, passed: bool) -> None:
    for check in FEATURE_CHECKS:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=check.asset_key, check_name=check.name, passed=passed)
        )


def days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


@pytest.fixture()
def ticks() -> Iterator[Ticks]:
    with dg.instance_for_test() as instance:
        tick = Ticks(instance)
        assert tick() == {}, "nothing has landed: nothing may be requested"
        report(instance, DIMENSIONS, [None])
        tick()
        yield tick


def test_a_landed_day_propagates_through_the_daily_chain_and_only_that_day(ticks: Ticks) -> None:
    day = "2013-03-05"  # not the partition set's last day: eager() alone would ignore it
    report(ticks.instance, RAW_DAILY, [day])
    requested = ticks()
    assert set(requested) == DAILY_CHAIN, f"expected every daily asset below raw, got {sorted(requested)}"
    assert all(partitions == {day} for partitions in requested.values()), requested

    report(ticks.instance, DAILY_CHAIN, [day])
    assert ticks() == {}, "drift_profile waits for the day's checks"
    report_checks(ticks.instance, passed=True)
    assert ticks() == {DRIFT: {day}}, "the drift profile follows once the day's checks passed"
    report(ticks.instance, [DRIFT], [day])
    assert ticks() == {}, "a handled day is not requested again"

    # Re-landed: the same day again, all the way down. The checks passed before, so drift_profile joins the same run,
    # where the blocking checks stop it if the new data fails them.
    report(ticks.instance, RAW_DAILY, [day])
    requested = ticks()
    assert set(requested) == DAILY_CHAIN | {DRIFT} and all(p == {day} for p in requested.values()), requested


def test_a_relanded_day_also_rebuilds_the_day_after_it(ticks: Ticks) -> None:
    # flights_enriched D joins the statistics delay_history built at the end of D - 1 (its dbt meta says so): a
    # re-landed D changes them, so D + 1 of flights_enriched and of everything below it is rebuilt too; no other day.
    landed = days(date(2013, 3, 10), date(2013, 3, 12))
    report(ticks.instance, RAW_DAILY, landed)
    ticks()
    report(ticks.instance, DAILY_CHAIN, landed)
    report_checks(ticks.instance, passed=True)
    ticks()
    report(ticks.instance, [DRIFT], landed)
    assert ticks() == {}

    report(ticks.instance, RAW_DAILY, ["2013-03-11"])
    seen: dict[dg.AssetKey, set[str | None]] = {}
    for _ in range(3):  # each tick's requests reported as done, until nothing more is requested
        requested = ticks()
        for key, partitions in requested.items():
            seen.setdefault(key, set()).update(partitions)
            report(ticks.instance, [key], partitions)
    enriched_and_below = {dg.AssetKey("flights_enriched"), *GRAPH.get(dg.AssetKey("flights_enriched")).child_keys}
    below = set(enriched_and_below)
    while True:
        grown = below | {child for key in below for child in GRAPH.get(key).child_keys}
        if grown == below:
            break
        below = grown
    expected = {key: {"2013-03-11", "2013-03-12"} if key in below else {"2013-03-11"} for key in DAILY_CHAIN | {DRIFT}}
    assert seen == expected, seen


def test_a_day_that_failed_its_data_quality_checks_is_not_profiled(ticks: Ticks) -> None:
    day = "2013-03-07"
    report(ticks.instance, RAW_DAILY, [day])
    ticks()
    report(ticks.instance, DAILY_CHAIN, [day])
    ticks()
    report_checks(ticks.instance, passed=False)
    assert DRIFT not in ticks(), "bad data must block drift (and so retraining)"


def test_a_day_whose_tables_land_apart_waits_for_the_second(ticks: Ticks) -> None:
    day = "2013-03-06"
    report(ticks.instance, RAW_DAILY[:1], [day])
    flights_only = {dg.AssetKey("stg_flights"), dg.AssetKey("delay_history")}
    assert ticks() == {key: {day} for key in flights_only}, "only what reads flights alone may run"
    report(ticks.instance, flights_only, [day])
    ticks()
    report(ticks.instance, RAW_DAILY[1:], [day])
    requested = ticks()
    assert set(requested) == DAILY_CHAIN - flights_only, requested


def test_a_redelivered_dimension_does_not_rerun_the_landed_days(ticks: Ticks) -> None:
    landed = days(date(2013, 3, 1), date(2013, 3, 3))
    report(ticks.instance, RAW_DAILY, landed)
    ticks()
    report(ticks.instance, DAILY_CHAIN, landed)
    assert ticks() == {}
    report(ticks.instance, [dg.AssetKey(["raw", "planes"])], [None])
    requested = ticks()
    assert set(requested) == {dg.AssetKey("stg_planes")}, requested


def _weeks_with_all_training_days(instance: dg.DagsterInstance, week: date) -> None:
    windows = training_windows(week, week + timedelta(days=7), SETTINGS.train_days, SETTINGS.valid_days, 7)
    report(instance, DAILY_CHAIN, days(windows.train_start, windows.valid_end))


def test_a_scheduled_week_trains_once_its_days_arrived_and_only_once(ticks: Ticks) -> None:
    scheduled = FIRST_WEEK + timedelta(weeks=SETTINGS.retrain_every_weeks)
    assert is_scheduled_week(scheduled, FIRST_WEEK, SETTINGS.retrain_every_weeks)
    windows = training_windows(scheduled, scheduled + timedelta(days=7), SETTINGS.train_days, SETTINGS.valid_days, 7)
    # Every day but the last validation day: the model waits.
    report(ticks.instance, DAILY_CHAIN, days(windows.train_start, windows.valid_end - timedelta(days=1)))
    assert TRAINED_MODEL_KEY not in ticks()
    report(ticks.instance, DAILY_CHAIN, [windows.valid_end.isoformat()])
    requested = ticks()
    assert requested.get(TRAINED_MODEL_KEY) == {scheduled.isoformat()}, requested

    report(ticks.instance, [TRAINED_MODEL_KEY], [scheduled.isoformat()])
    ticks()
    # A re-landed day inside its window does not re-run the sweep.
    report(ticks.instance, DAILY_CHAIN, [windows.train_start.isoformat()])
    assert TRAINED_MODEL_KEY not in ticks()


def test_weeks_off_the_schedule_are_left_to_the_drift_sensor(ticks: Ticks) -> None:
    off = FIRST_WEEK + timedelta(weeks=1)
    assert SETTINGS.retrain_every_weeks > 1 and not is_scheduled_week(off, FIRST_WEEK, SETTINGS.retrain_every_weeks)
    _weeks_with_all_training_days(ticks.instance, off)
    assert TRAINED_MODEL_KEY not in ticks()


def test_every_asset_has_a_freshness_policy_and_is_kept_current() -> None:
    job_sensors = [s for s in defs.sensors or [] if not isinstance(s, dg.AutomationConditionSensorDefinition)]
    repository = defs.get_repository_def()
    sensor_jobs = [repository.get_job(target.job_name) for sensor in job_sensors for target in sensor.targets]
    sensor_targets = {key for job in sensor_jobs for key in job.asset_layer.selected_asset_keys}
    for key in GRAPH.get_all_asset_keys():
        node = GRAPH.get(key)
        assert node.freshness_policy is not None, f"{key.to_user_string()} has no FreshnessPolicy"
        if key == dg.AssetKey("bento_image") and not SETTINGS.docker_host:
            # Documented exception: it needs a Docker engine, so it is automated only where MLOPS_DOCKER_HOST is set
            # (elsewhere every new bento would start a run that cannot succeed).
            assert node.automation_condition is None
            continue
        assert node.automation_condition is not None or key in sensor_targets, (
            f"{key.to_user_string()} has neither an AutomationCondition nor a sensor that targets it"
        )
