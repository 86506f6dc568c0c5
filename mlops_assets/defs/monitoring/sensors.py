"""Drift/decay -> retrain: the sensor that requests a ``trained_model`` week between scheduled ones; and the automated
rollback of a newly promoted champion that does worse live than the one it replaced.

It reads what ``drift_profile`` recorded for the last ``MLOPS_DRIFT_WINDOW_DAYS`` days (in data time: the newest
profiled day is "today") and applies :func:`mlops_assets.lib.retrain.decide`. A request trains the week of the newest
day, whose training and validation days have all landed; the new model goes through ``evaluation_report`` and its
blocking gate like every other (automation evaluates it once its holdout week has landed), so a retrain never
bypasses promotion. The run key is the week, so a week is requested at most once whatever the sensor sees later.

Rollback: ``drift_profile`` scores ``previous_champion`` on the same labelled rows as the champion every day and keeps
both in the day's ``scores.parquet``. The rollback sensor reads the days profiled since the current champion was
promoted (data time: the days whose recorded champion and previous champion are the current pair) and applies
:func:`mlops_assets.lib.rollback.decide`. A rollback is a run of the ``rollback_champion`` job (the same step as the
CLI's ``mlops-assets rollback``), with a reason stating the figures, and no human step; serving follows the alias. The
run key is the champion's version, so one champion is rolled back at most once.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg

from mlops_assets.defs.common import SETTINGS, LakeResource
from mlops_assets.defs.features.assets import FEATURE_STORE_KEY
from mlops_assets.defs.features.checks import VALIDATED_KEY
from mlops_assets.defs.monitoring.assets import (
    AUC_DECAY,
    CHAMPION_VERSION,
    DRIFT_EXCESS,
    DRIFT_PROFILE_KEY,
    PAIRED_LOOKBACK_DAYS,
    PREVIOUS_SCORE,
    PREVIOUS_VERSION,
    ROWS,
    DayScores,
    persisted_days,
)
from mlops_assets.defs.training.assets import TRAINED_MODEL_KEY, weekly_partitions
from mlops_assets.defs.training.promotion import RollbackConfig, restore_previous_champion, rollback_champion
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib import rollback
from mlops_assets.lib.model_registry import CHAMPION, PREVIOUS_CHAMPION, alias_version
from mlops_assets.lib.retrain import DayMonitor, RetrainPolicy, decide
from mlops_assets.lib.windows import training_windows
from mlops_assets.settings import Settings

RETRAIN_REASON_TAG = "mlops/retrain_reason"
ROLLBACK_REASON_TAG = "mlops/rollback_reason"


def retrain_policy(settings: Settings) -> RetrainPolicy:
    return RetrainPolicy(
        drift_threshold=settings.drift_threshold,
        decay_threshold=settings.decay_threshold,
        window_days=settings.drift_window_days,
        min_days=settings.drift_min_days,
        min_rows=settings.drift_min_rows,
        cooldown_days=settings.retrain_cooldown_days,
    )


def _number(metadata: dict[str, dg.MetadataValue], key: str) -> float | None:
    value = metadata.get(key)
    return float(value.value) if value is not None and value.value is not None else None  # type: ignore[arg-type]


def rollback_policy(settings: Settings) -> rollback.RollbackPolicy:
    return rollback.RollbackPolicy(min_days=settings.rollback_min_days, tolerance=settings.rollback_tolerance)


def _text(metadata: dict[str, dg.MetadataValue], key: str) -> str | None:
    value = metadata.get(key)
    return str(value.value) if value is not None and value.value is not None else None


def _newest_day_metadata(instance: dg.DagsterInstance, window_days: int) -> dict[str, dict[str, dg.MetadataValue]]:
    """The newest metadata of each of the last ``window_days`` profiled days, by partition: a one-day run records
    it on its materialisation, a range run as one observation per day."""
    profiled = instance.get_materialized_partitions(DRIFT_PROFILE_KEY)
    if not profiled:
        return {}
    latest = date.fromisoformat(max(profiled))
    wanted = [(latest - timedelta(days=i)).isoformat() for i in range(window_days)]
    keys = [key for key in wanted if key in profiled]
    records_filter = dg.AssetRecordsFilter(asset_key=DRIFT_PROFILE_KEY, asset_partitions=keys)
    limit = len(keys) * 10
    records = [
        *instance.fetch_materializations(records_filter, limit=limit).records,
        *instance.fetch_observations(records_filter, limit=limit).records,
    ]
    newest: dict[str, dict[str, dg.MetadataValue]] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        event = record.asset_materialization or record.asset_observation
        if event is not None and event.partition is not None and ROWS in event.metadata:
            newest[event.partition] = dict(event.metadata)
    return newest


def monitored_days(instance: dg.DagsterInstance, window_days: int) -> list[DayMonitor]:
    """The newest figures of each of the last ``window_days`` profiled days."""
    return [
        DayMonitor(
            day=date.fromisoformat(key),
            rows=int(_number(metadata, ROWS) or 0),
            drift_score=_number(metadata, DRIFT_EXCESS),
            auc_decay=_number(metadata, AUC_DECAY),
            # drift_profile runs only after the day's blocking data-quality checks passed (its automation
            # condition), so a profiled day is a day whose data passed.
            quality_passed=True,
        )
        for key, metadata in _newest_day_metadata(instance, window_days).items()
    ]


def missing_training_days(instance: dg.DagsterInstance, week: date) -> list[str]:
    """The days ``week``'s model needs (what ``trained_model`` requires: its training and validation days, and for
    the feature store also the day before, which produced the first day's statistics) not built yet."""
    windows = training_windows(
        week, week + timedelta(days=7), SETTINGS.train_days, SETTINGS.valid_days, SETTINGS.holdout_days
    )
    missing: set[str] = set()
    for key, first in (
        (VALIDATED_KEY, windows.train_start),
        (FEATURE_STORE_KEY, max(windows.train_start - timedelta(days=1), SETTINGS.partitions_start)),
    ):
        built = instance.get_materialized_partitions(key)
        days = (first + timedelta(days=i) for i in range((windows.valid_end - first).days + 1))
        missing.update(day.isoformat() for day in days if day.isoformat() not in built)
    return sorted(missing)


def _last_trained_week(instance: dg.DagsterInstance, requested: str | None) -> date | None:
    weeks = set(instance.get_materialized_partitions(TRAINED_MODEL_KEY))
    if requested:
        weeks.add(requested)
    return date.fromisoformat(max(weeks)) if weeks else None


@dg.sensor(
    target=[TRAINED_MODEL_KEY],
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Requests the current week's trained_model when the importance-weighted drift or the AUC decay exceeds its "
        f"threshold ({SETTINGS.drift_threshold} / {SETTINGS.decay_threshold:.0%}) on {SETTINGS.drift_min_days} of "
        f"the last {SETTINGS.drift_window_days} profiled days and on the latest, with a "
        f"{SETTINGS.retrain_cooldown_days}-day cooldown (data time)."
    ),
)
def drift_retrain_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    policy = retrain_policy(SETTINGS)
    days = monitored_days(context.instance, policy.window_days)
    decision = decide(days, policy, _last_trained_week(context.instance, cursor.get("requested_week")))
    week = decision.week
    if week is None or week.isoformat() not in weekly_partitions.get_partition_keys():
        reason = decision.reason if week is None else f"{decision.reason}; week {week} is not a model partition"
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps(cursor))
    missing = missing_training_days(context.instance, week)
    if missing:
        # A model trained without them would fail at once (or silently learn from a gap): wait for them to be built.
        return dg.SensorResult(
            skip_reason=f"{decision.reason}; week {week} waits: {len(missing)} of its training and validation days "
            f"are not built ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})",
            cursor=json.dumps(cursor),
        )
    context.log.info(f"retrain: {decision.reason} -> trained_model {week}")
    cursor["requested_week"] = week.isoformat()
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"drift-retrain-{week.isoformat()}",
                partition_key=week.isoformat(),
                asset_selection=[TRAINED_MODEL_KEY],
                tags={RETRAIN_REASON_TAG: decision.reason[:200]},
            )
        ],
        cursor=json.dumps(cursor),
    )


def champion_days(
    instance: dg.DagsterInstance,
    lake_root: str,
    champion: str,
    previous: str,
    lookback_days: int = PAIRED_LOOKBACK_DAYS,
) -> list[DayScores]:
    """The persisted scores of the days profiled with ``champion`` serving and ``previous`` kept to roll back to,
    oldest first. The instance says which days those are (cheap, no lake read for other days); the file's own
    versions are checked again, since a day's file may have been rewritten by a run whose metadata came later."""
    wanted = [
        date.fromisoformat(key)
        for key, metadata in _newest_day_metadata(instance, lookback_days).items()
        if _text(metadata, CHAMPION_VERSION) == champion and _text(metadata, PREVIOUS_VERSION) == previous
    ]
    return [
        day
        for day in persisted_days(lake_root, wanted)
        if day.champion == champion and day.previous_champion == previous
    ]


@dg.sensor(
    # By name, not the job object: Dagster 1.13 re-binds a sensor's unresolved op job to the code location's resources
    # through SensorDefinition's Beta ``owners`` parameter (one BetaWarning at every load). test_automation checks that
    # every sensor's job name resolves in the repository.
    job_name=rollback_champion.name,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Rolls the champion back to previous_champion (a rollback_champion run, no human step) when, over at least "
        f"{SETTINGS.rollback_min_days} labelled days since its promotion, the paired bootstrap CI of AUC(champion) - "
        f"AUC(previous_champion) on the same rows lies entirely below -{SETTINGS.rollback_tolerance:g}."
    ),
)
def champion_rollback_sensor(
    context: dg.SensorEvaluationContext, mlflow_tracking: MlflowTracking, lake: LakeResource
) -> dg.RunRequest | dg.SkipReason:
    client = mlflow_tracking.client()
    name = mlflow_tracking.registered_model_name
    current = alias_version(client, name, CHAMPION)
    previous = alias_version(client, name, PREVIOUS_CHAMPION)
    if current is None:
        return dg.SkipReason("no champion yet")
    champion, before = str(current.version), str(previous.version) if previous is not None else None
    if before is None or before == champion:
        return dg.SkipReason(f"champion v{champion} has no {PREVIOUS_CHAMPION} to roll back to")
    days = champion_days(context.instance, lake.lake_root, champion, before)
    decision = rollback.decide([day.pair(PREVIOUS_SCORE) for day in days], rollback_policy(SETTINGS))
    span = f"{days[0].day}..{days[-1].day}" if days else "no day profiled yet"
    if not decision.rollback:
        return dg.SkipReason(f"champion v{champion} vs previous v{before} ({span}): {decision.reason}")
    reason = f"automated rollback of v{champion} to v{before} on {span}: {decision.reason}"
    context.log.info(reason)
    return dg.RunRequest(
        # One champion is rolled back at most once, whatever later evaluations see.
        run_key=f"rollback-{name}-v{champion}",
        run_config=dg.RunConfig(
            ops={restore_previous_champion.name: RollbackConfig(reason=reason, expected_champion=champion)}
        ),
        tags={ROLLBACK_REASON_TAG: reason[:200]},
    )
