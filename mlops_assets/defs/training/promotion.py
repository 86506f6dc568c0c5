"""champion: moves the registry alias ``champion`` to the week's candidate when its evaluation passed the gate; the
``rollback_champion`` job restores ``previous_champion``.

Guards, in order: the gate (blocking checks stop this step in the evaluation's run; the automation condition waits
for them; and the step re-reads the gate's verdict from the report logged on the candidate's run, so a manual
launch cannot promote a failed candidate); the week (a backfill of an old week never moves ``champion`` past a newer
week's model); ``dry_run`` (report what would move, move nothing). Every move is tagged with its reason and time.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mlops_assets.defs.training.assets import TRAINING_GROUP, weekly_partitions
from mlops_assets.defs.training.evaluation import EVALUATION_REPORT_KEY, read_report
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.model_registry import (
    CHAMPION,
    PARTITION_TAG,
    alias_version,
    candidate_version,
    is_newest_partition,
    promote,
    rollback,
)

CHAMPION_KEY = dg.AssetKey("champion")

CHAMPION_AUTOMATION = (
    dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
)


class PromotionConfig(dg.Config):
    dry_run: bool = False
    """Evaluate and report what would move, without moving any alias."""


@dg.asset(
    key=CHAMPION_KEY,
    group_name=TRAINING_GROUP,
    partitions_def=weekly_partitions,
    deps=[EVALUATION_REPORT_KEY],
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=9), warn_window=timedelta(days=8)),
    automation_condition=CHAMPION_AUTOMATION,
    kinds={"mlflow"},
    description="Moves MLflow alias 'champion' to the week's candidate once every gate check passed; the old one "
    "becomes 'previous_champion'.",
)
def champion(
    context: dg.AssetExecutionContext, config: PromotionConfig, mlflow_tracking: MlflowTracking
) -> dg.MaterializeResult:
    week = context.partition_key
    client = mlflow_tracking.client()
    name = mlflow_tracking.registered_model_name
    candidate = candidate_version(client, name, week)
    report = read_report(mlflow_tracking, candidate.run_id, week)
    gate = report["gate"]
    failed = [rule["rule"] for rule in gate["rules"] if not rule["passed"]]
    if failed or str(report["provenance"]["candidate"]["version"]) != str(candidate.version):
        raise dg.Failure(
            f"champion {week}: {name} v{candidate.version} did not pass the gate "
            f"({', '.join(failed) or 'the report is for another version'}); champion not moved. Re-run "
            f"evaluation_report for {week} after fixing the model."
        )
    current = alias_version(client, name, CHAMPION)
    before = str(current.version) if current is not None else None
    metadata: dict[str, object] = {
        "candidate_version": str(candidate.version),
        "champion_before": before or "none",
        "dry_run": config.dry_run,
    }
    if not is_newest_partition(client, name, CHAMPION, week):
        held = (current.tags or {}).get(PARTITION_TAG) if current is not None else None
        context.log.warning(f"not promoting week {week}: champion v{before} is of the later week {held}")
        return dg.MaterializeResult(metadata={**metadata, "promoted": False, "reason": f"champion is newer ({held})"})
    if before == str(candidate.version):
        return dg.MaterializeResult(metadata={**metadata, "promoted": False, "reason": "already champion"})
    if config.dry_run:
        context.log.info(f"dry run: would move {CHAMPION} from v{before} to v{candidate.version}")
        return dg.MaterializeResult(metadata={**metadata, "promoted": False, "reason": "dry run"})
    move = promote(
        client,
        name,
        str(candidate.version),
        reason=f"gate passed for week {week} (Dagster run {context.run.run_id})",
        now=datetime.now(UTC),
    )
    context.log.info(f"{CHAMPION}: v{move.from_version} -> v{move.to_version}")
    return dg.MaterializeResult(
        metadata={**metadata, "promoted": True, "champion_after": move.to_version, "promoted_at": move.at}
    )


class RollbackConfig(dg.Config):
    reason: str
    """Why the champion is rolled back; recorded on the registered model and the demoted version."""
    expected_champion: str | None = None
    """The champion version the rollback was decided for: if the alias has moved since (a promotion between the
    sensor's decision and this run), the run fails and changes nothing. None: roll back whatever is champion."""


@dg.op(description="Restore MLflow alias 'previous_champion' as 'champion' and record why.")
def restore_previous_champion(
    context: dg.OpExecutionContext, config: RollbackConfig, mlflow_tracking: MlflowTracking
) -> None:
    move = rollback(
        mlflow_tracking.client(),
        mlflow_tracking.registered_model_name,
        reason=config.reason,
        now=datetime.now(UTC),
        expected_champion=config.expected_champion,
    )
    context.log.info(f"rolled back {CHAMPION}: v{move.from_version} -> v{move.to_version} ({config.reason})")


@dg.job(description="Roll the champion back to the previous champion (mlops-assets rollback does the same).")
def rollback_champion() -> None:
    restore_previous_champion()
