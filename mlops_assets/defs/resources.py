"""Resources per environment, built from the resolved settings."""

import shutil
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.defs.common import LakeResource, WarehouseConfig
from mlops_assets.defs.features.resources import FeatureStoreResource
from mlops_assets.defs.serving.resources import BentoBuilder, DockerEngine
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.defs.transform.dbt_cli import DbtCli
from mlops_assets.defs.transform.project import dbt_project
from mlops_assets.lib.warehouse import WarehouseLocation
from mlops_assets.settings import Settings


def _dbt_executable() -> str:
    # Prefer the dbt installed beside this interpreter, so an un-activated venv (`.venv/bin/dagster dev`) works.
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def build_resources(settings: Settings) -> dict[str, Any]:
    return {
        "lake": LakeResource(
            landing_root=settings.landing_root,
            lake_root=settings.lake_root,
            warehouse=WarehouseConfig.of(WarehouseLocation.from_settings(settings)),
        ),
        "dbt": DbtCli(
            project_dir=dbt_project,
            profiles_dir=str(dbt_project.project_dir),
            dbt_executable=_dbt_executable(),
            warehouse=WarehouseConfig.of(WarehouseLocation.from_settings(settings)),
            lake_root=settings.lake_root,
        ),
        "feature_store": FeatureStoreResource.from_settings(settings),
        "mlflow_tracking": MlflowTracking.from_settings(settings),
        "bento_builder": BentoBuilder.from_settings(settings),
        "docker_engine": DockerEngine.from_settings(settings),
    }


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    """In-process locally (one process, shared Ray and DuckDB handles); one Kubernetes Job per step in production,
    where each asset's ``dagster-k8s/config`` tags (the sweep's GPU request among them) size its pod; or, with
    ``MLOPS_STEP_EXECUTOR=docker``, one container per step on the Docker engine at ``DOCKER_HOST``."""
    if settings.profile != "production":
        return dg.in_process_executor
    if settings.step_executor == "docker":
        from dagster_docker import docker_executor

        # The host's network: the containers reach the servers as this process does (the engine of
        # deploy/docker-engine.sh has no bridge), and like pods they share no disk with it or with each other.
        return docker_executor.configured(
            {
                "image": settings.step_image,
                "env_vars": list(settings.step_environment),
                "container_kwargs": {"network_mode": "host"},
            },
            name="docker",
        )
    # Imported only here: dagster_k8s (the Kubernetes client) adds ~0.8 s to every local process start.
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor
