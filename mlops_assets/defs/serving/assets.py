"""bento: the BentoML bento of the serving service, rebuilt whenever the ``champion`` alias moves.

The alias lives in MLflow and moves from two places: the ``champion`` asset (a promotion) and ``mlops-assets
rollback`` / the ``rollback_champion`` job (outside any asset). So a sensor that watches the alias
(:mod:`mlops_assets.defs.serving.sensors`) requests this asset, rather than an automation condition on ``champion``'s
materialisations, which would miss a rollback. The bento does not embed the model (the service follows the alias at
run time); its labels name the champion it was built for, and its archive is exported to
``<lake>/serving/bentos/`` so any pod or image build can fetch it.
"""

from datetime import timedelta

import dagster as dg

from mlops_assets.defs.common import LakeResource
from mlops_assets.defs.serving.resources import BentoBuilder
from mlops_assets.defs.training.promotion import CHAMPION_KEY
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.model_registry import CHAMPION, PARTITION_TAG, alias_version

BENTO_KEY = dg.AssetKey("bento")
SERVING_GROUP = "serving"
MODEL_VERSION = "model_version"


def bento_archive_uri(lake_root: str, tag: str) -> str:
    return f"{lake_root.rstrip('/')}/serving/bentos/{tag.replace(':', '-')}.bento"


@dg.asset(
    key=BENTO_KEY,
    group_name=SERVING_GROUP,
    deps=[CHAMPION_KEY],
    # As champion's: a champion (and so a bento) is expected every week or so while data arrives.
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=9), warn_window=timedelta(days=8)),
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
