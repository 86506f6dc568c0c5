"""The bento follows the champion: a sensor that watches MLflow alias ``champion`` and requests ``bento`` for each
version it has not been built for (a promotion, a rollback from the CLI or the job, a manual alias move alike)."""

import dagster as dg

from mlops_assets.defs.serving.assets import BENTO_KEY, MODEL_VERSION
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.model_registry import CHAMPION, alias_version

build_bento_job = dg.define_asset_job("build_bento", selection=[BENTO_KEY])


def _built_for(instance: dg.DagsterInstance) -> str | None:
    event = instance.get_latest_materialization_event(BENTO_KEY)
    materialization = event.asset_materialization if event is not None else None
    value = materialization.metadata.get(MODEL_VERSION) if materialization is not None else None
    return str(value.value) if value is not None else None


@dg.sensor(
    job=build_bento_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests bento whenever MLflow alias 'champion' points at a version the bento was not built for.",
)
def bento_follows_champion(context: dg.SensorEvaluationContext, mlflow_tracking: MlflowTracking) -> dg.SensorResult:
    champion = alias_version(mlflow_tracking.client(), mlflow_tracking.registered_model_name, CHAMPION)
    if champion is None:
        return dg.SensorResult(skip_reason=f"no {CHAMPION!r} alias yet")
    wanted = str(champion.version)
    built = _built_for(context.instance)
    # The cursor holds the version last requested, so a build in flight is not requested again at the next tick;
    # comparing with the bento's own metadata as well lets a move back to an older version build again.
    if wanted == built:
        return dg.SensorResult(skip_reason=f"bento is built for champion v{wanted}", cursor=wanted)
    if wanted == context.cursor:
        return dg.SensorResult(skip_reason=f"bento for champion v{wanted} already requested")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(tags={"mlops/champion_version": wanted})],
        cursor=wanted,
    )
