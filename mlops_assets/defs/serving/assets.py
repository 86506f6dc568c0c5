"""bento: the BentoML bento of the serving service, rebuilt whenever the ``champion`` alias moves.

The alias lives in MLflow and moves from two places: the ``champion`` asset (a promotion) and ``mlops-assets
rollback`` / the ``rollback_champion`` job (outside any asset). So a sensor that watches the alias
(:mod:`mlops_assets.defs.serving.sensors`) requests this asset, rather than an automation condition on ``champion``'s
materialisations, which would miss a rollback. The bento does not embed the model (the service follows the alias at
run time); its labels name the champion it was built for, and its archive is exported to
``<lake>/serving/bentos/`` so any pod or image build can fetch it.

bento_image: the bento's container image, built with ``bentoml containerize`` on a Docker engine
(``deploy/docker-engine.sh``) from the Debian base image (``deploy/base-image.sh``), with its digest as metadata (and,
with a registry configured, pushed there so the serving chart pins ``repository@sha256:…``). It needs an engine, so it
fails, naming the script to run, where none is configured; it follows the bento automatically only where one is.
"""

from datetime import timedelta

import dagster as dg

from mlops_assets.defs.common import SETTINGS, LakeResource
from mlops_assets.defs.serving.resources import BentoBuilder, DockerEngine
from mlops_assets.defs.training.promotion import CHAMPION_KEY
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.bento_build import BentoBuildError
from mlops_assets.lib.model_registry import CHAMPION, PARTITION_TAG, alias_version

BENTO_KEY = dg.AssetKey("bento")
BENTO_IMAGE_KEY = dg.AssetKey("bento_image")
# The champion moves at most weekly: a bento (and its image) older than that plus slack is behind it.
WEEKLY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=9), warn_window=timedelta(days=8))
SERVING_GROUP = "serving"
MODEL_VERSION = "model_version"


def bento_archive_uri(lake_root: str, tag: str) -> str:
    return f"{lake_root.rstrip('/')}/serving/bentos/{tag.replace(':', '-')}.bento"


@dg.asset(
    key=BENTO_KEY,
    group_name=SERVING_GROUP,
    deps=[CHAMPION_KEY],
    # As champion's: a champion (and so a bento) is expected every week or so while data arrives.
    freshness_policy=WEEKLY_FRESHNESS,
    kinds={"bentoml"},
    description="The BentoML bento of the serving service (source, pinned requirements, Dockerfile, OpenAPI), "
    "labelled with the champion it was built for and exported to the lake; rebuilt when the champion alias moves.",
)
def bento(
    context: dg.AssetExecutionContext, bento_builder: BentoBuilder, mlflow_tracking: MlflowTracking, lake: LakeResource
) -> dg.MaterializeResult:
    client = mlflow_tracking.client()
    name = mlflow_tracking.registered_model_name
    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        raise dg.Failure(
            f"bento: registered model {name!r} has no {CHAMPION!r} alias, so there is nothing to serve. Materialise "
            "evaluation_report and champion for a week first (or promote a version with the registry)."
        )
    labels = {
        "model_name": name,
        MODEL_VERSION: str(champion.version),
        "model_partition": (champion.tags or {}).get(PARTITION_TAG, ""),
        "dagster_run_id": context.run.run_id,
    }
    built = bento_builder.build(labels)
    archive = bento_archive_uri(lake.lake_root, built.tag)
    archive_bytes = bento_builder.export(built, archive)
    context.log.info(f"built {built.tag} for {name} v{champion.version}; archive {archive} ({archive_bytes:,} bytes)")
    return dg.MaterializeResult(
        metadata={
            "bento_tag": built.tag,
            MODEL_VERSION: str(champion.version),
            "model_partition": labels["model_partition"],
            "size_bytes": built.size_bytes,
            "archive": dg.MetadataValue.path(archive),
            "archive_bytes": archive_bytes,
            "dockerfile": dg.MetadataValue.path(str(built.dockerfile)),
            "routes": ", ".join(built.routes),
            "openapi": dg.MetadataValue.md(f"```yaml\n{built.openapi.read_text()}\n```"),
        }
    )


def _latest_bento(instance: dg.DagsterInstance) -> dict[str, str]:
    """The latest bento's tag, archive and model version, from its materialization's metadata."""
    event = instance.get_latest_materialization_event(BENTO_KEY)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        raise dg.Failure("bento_image: no bento has been built yet; materialise bento first")
    metadata = materialization.metadata
    return {name: str(metadata[name].value) for name in ("bento_tag", "archive", MODEL_VERSION)}


def _chart_values(image_id: str, repo_digest: str | None) -> str:
    if repo_digest is None:
        return f"Not pushed (no MLOPS_IMAGE_REGISTRY): the engine pins it by its id `{image_id}`."
    repository, digest = repo_digest.split("@", 1)
    return (
        "Deploy it with the serving chart:\n\n```\n"
        f"--set-string stable.image.repository={repository} --set-string stable.image.digest={digest}\n```"
    )


@dg.asset(
    key=BENTO_IMAGE_KEY,
    group_name=SERVING_GROUP,
    deps=[BENTO_KEY],
    # Only where an engine is configured: elsewhere every new bento would start a run that cannot succeed.
    automation_condition=dg.AutomationCondition.eager() if SETTINGS.docker_host else None,
    freshness_policy=WEEKLY_FRESHNESS,
    kinds={"docker", "bentoml"},
    description="The container image of the latest bento (bentoml containerize on the Docker engine at "
    "MLOPS_DOCKER_HOST, FROM the Debian base of deploy/base-image.sh), with its digest; pushed to "
    "MLOPS_IMAGE_REGISTRY when set, so the serving chart pins repository@sha256:...",
)
def bento_image(
    context: dg.AssetExecutionContext, bento_builder: BentoBuilder, docker_engine: DockerEngine
) -> dg.MaterializeResult:
    bento = _latest_bento(context.instance)
    try:
        # The engine first: with none configured the step fails at once, naming the script that starts one.
        docker_engine.check(bento_builder.base_image)
        bento_builder.ensure(bento["bento_tag"], bento["archive"])
        image = docker_engine.containerize(bento["bento_tag"], bento_builder)
    except BentoBuildError as exc:
        raise dg.Failure(f"bento_image: {exc}") from exc
    digest = image.repo_digest or image.image_id
    context.log.info(f"built {image.reference} ({digest}) from {bento['bento_tag']}, {image.size_bytes:,} bytes")
    return dg.MaterializeResult(
        metadata={
            "image": image.reference,
            "image_id": image.image_id,
            "repo_digest": image.repo_digest or "",
            "digest": digest,
            "bento_tag": bento["bento_tag"],
            MODEL_VERSION: bento[MODEL_VERSION],
            "base_image": image.base_image,
            "base_image_id": image.base_image_id,
            "size_bytes": image.size_bytes,
            "deploy": dg.MetadataValue.md(_chart_values(image.image_id, image.repo_digest)),
        }
    )
