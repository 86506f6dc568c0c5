"""Drift/decay -> retrain: the sensor that requests a ``trained_model`` week between scheduled ones.

It reads what ``drift_profile`` recorded for the last ``MLOPS_DRIFT_WINDOW_DAYS`` days (in data time: the newest
profiled day is "today") and applies :func:`mlops_assets.lib.retrain.decide`. A request trains the week of the newest
day, whose training and validation days have all landed; the new model goes through ``evaluation_report`` and its
blocking gate like every other (automation evaluates it once its holdout week has landed), so a retrain never
bypasses promotion. The run key is the week, so a week is requested at most once whatever the sensor sees later.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg

from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.monitoring.assets import AUC_DECAY, DRIFT_EXCESS, DRIFT_PROFILE_KEY, ROWS
from mlops_assets.defs.training.assets import TRAINED_MODEL_KEY, weekly_partitions
from mlops_assets.lib.retrain import DayMonitor, RetrainPolicy, decide
from mlops_assets.settings import Settings

RETRAIN_REASON_TAG = "mlops/retrain_reason"


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


def monitored_days(instance: dg.DagsterInstance, window_days: int) -> list[DayMonitor]:
    """The newest figures of each of the last ``window_days`` profiled days: a one-day run records them on its
    materialisation, a range run as one observation per day."""
    profiled = instance.get_materialized_partitions(DRIFT_PROFILE_KEY)
    if not profiled:
        return []
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
        for key, metadata in newest.items()
    ]


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
