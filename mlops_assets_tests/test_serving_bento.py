"""The bento: built in-asset, offline, with BentoML's CLI into a temp store, labelled with the champion and exported
to the lake; the sensor that rebuilds it follows the MLflow ``champion`` alias through promotions and rollbacks.

Real MLflow (a SQLite registry in tmp_path), real BentoML, a real Dagster instance; the registered versions point at
a small real LightGBM model because the bento asset only reads the alias (the service loads the model at run time).
"""

from __future__ import annotations

import tarfile
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from mlops_assets.defs.common import LakeResource
from mlops_assets.defs.serving.assets import BENTO_KEY, bento, bento_image
from mlops_assets.defs.serving.resources import BentoBuilder, DockerEngine
from mlops_assets.defs.serving.sensors import bento_follows_champion
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.bento_build import pinned_requirements
from mlops_assets.lib.model_registry import CHALLENGER, CHAMPION, PARTITION_TAG, promote, rollback
from mlops_assets.settings import SettingsError, load_settings
from mlops_assets_tests.helpers import warehouse_config

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tracking(tmp_path: Path) -> MlflowTracking:
    return MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        registry_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=str(tmp_path / "artifacts"),
        registered_model_name="bento_test",
    )


def _register(tracking: MlflowTracking, week: str) -> str:
    rng = np.random.default_rng(len(week))
    x = rng.normal(size=(200, 3))
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, (x[:, 0] > 0).astype(int)), 5)
    tags = {PARTITION_TAG: week, "training_data_hash": "t", "git_sha": "t", "config_hash": "t"}
    with tracking.parent_run(f"bento-test-{week}", tags) as run:
        example = pd.DataFrame(x[:2], columns=["a", "b", "c"])
        return tracking.register_lightgbm(run, booster, example, tags, alias=CHALLENGER)


def _resources(tmp_path: Path, tracking: MlflowTracking) -> dict[str, object]:
    return {
        "bento_builder": BentoBuilder(store_dir=str(tmp_path / "bentoml"), build_ctx=str(REPO_ROOT)),
        "mlflow_tracking": tracking,
        "lake": LakeResource(
            landing_root=str(tmp_path / "landing"),
            lake_root=str(tmp_path / "lake"),
            warehouse=warehouse_config(tmp_path / "warehouse"),
        ),
    }


def test_without_a_champion_the_bento_fails_and_says_what_to_run(tmp_path: Path, tracking: MlflowTracking) -> None:
    tracking.client().create_registered_model(tracking.registered_model_name)
    with pytest.raises(dg.Failure, match=r"no 'champion' alias.*champion for a week first"):
        dg.materialize([bento], resources=_resources(tmp_path, tracking))


def test_the_bento_is_built_offline_for_the_champion_and_exported(tmp_path: Path, tracking: MlflowTracking) -> None:
    first = _register(tracking, "2013-04-15")
    promote(tracking.client(), tracking.registered_model_name, first, reason="test")
    result = dg.materialize([bento], resources=_resources(tmp_path, tracking))
    assert result.success
    metadata = result.asset_materializations_for_node("bento")[0].metadata
    assert metadata["model_version"].value == first
    assert metadata["model_partition"].value == "2013-04-15"
    tag = metadata["bento_tag"].value
    assert str(tag).startswith("flight_delay:")
    assert {"/predict", "/predict_batch"} <= set(str(metadata["routes"].value).split(", "))
    dockerfile = Path(str(metadata["dockerfile"].value))
    assert dockerfile.is_file() and "FROM " in dockerfile.read_text()
    assert "/predict_batch" in str(metadata["openapi"].value)
    # The image installs exactly the versions tested here.
    requirements = (dockerfile.parent.parent / "python" / "requirements.txt").read_text()
    assert f"lightgbm=={version('lightgbm')}" in requirements and f"bentoml=={version('bentoml')}" in requirements
    # The archive in the lake is a complete bento: its manifest names the champion it was built for.
    archive = Path(str(metadata["archive"].value))
    assert archive.stat().st_size == metadata["archive_bytes"].value > 0
    with tarfile.open(archive) as bundle:
        names = bundle.getnames()
        manifest = bundle.extractfile("./bento.yaml").read().decode()  # type: ignore[union-attr]
    assert "./src/mlops_assets/service/service.py" in names and not any("mlops_assets_tests" in n for n in names)
    assert f"model_version: '{first}'" in manifest or f"model_version: {first!r}" in manifest, manifest
    assert not list(archive.parent.glob("*.tmp*"))


def test_the_sensor_follows_the_champion_alias_through_promotion_and_rollback(
    tmp_path: Path, tracking: MlflowTracking
) -> None:
    client = tracking.client()
    name = tracking.registered_model_name
    client.create_registered_model(name)
    instance = dg.DagsterInstance.ephemeral()
    cursor: list[str | None] = [None]

    def tick() -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, cursor=cursor[0], resources={"mlflow_tracking": tracking})
        result = bento_follows_champion(context)
        assert isinstance(result, dg.SensorResult)
        cursor[0] = result.cursor or cursor[0]
        return result

    def built_for(model_version: str) -> None:
        event = dg.AssetMaterialization(BENTO_KEY, metadata={"model_version": model_version})
        instance.report_runless_asset_event(event)

    assert not tick().run_requests and "no 'champion'" in str(tick().skip_reason)
    first = _register(tracking, "2013-04-15")
    promote(client, name, first, reason="test")
    (request,) = tick().run_requests or []
    assert request.tags["mlops/champion_version"] == first
    assert not tick().run_requests, "a build in flight is not requested again"
    built_for(first)
    assert not tick().run_requests

    second = _register(tracking, "2013-04-22")
    promote(client, name, second, reason="test")
    (request,) = tick().run_requests or []
    assert request.tags["mlops/champion_version"] == second
    built_for(second)
    assert not tick().run_requests

    rollback(client, name, reason="test: the new champion is worse")
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == first
    (request,) = tick().run_requests or []
    assert request.tags["mlops/champion_version"] == first, "a rollback to an older version rebuilds the bento"


def test_the_requirements_pin_the_whole_installed_closure() -> None:
    pinned = pinned_requirements()
    assert all("==" in requirement for requirement in pinned)
    # Direct requirements keep the extras the package asks for; transitive ones are pinned too (starlette comes
    # with bentoml, not from pyproject.toml), so the image never takes the index's latest release of anything.
    assert f"ray[tune]=={version('ray')}" in pinned and f"lightgbm=={version('lightgbm')}" in pinned
    assert f"starlette=={version('starlette')}" in pinned
    # The package's own extras (dev: pytest, ruff) stay out.
    assert not any(requirement.startswith(("pytest==", "ruff==")) for requirement in pinned)


@pytest.mark.parametrize(
    ("docker_host", "message"),
    [
        ("", r"no Docker engine is configured: start one with `deploy/docker-engine.sh start DIR`"),
        ("unix:///nonexistent/docker.sock", r"no Docker engine answers at unix:///nonexistent/docker.sock"),
    ],
)
def test_bento_image_without_an_engine_fails_naming_the_script(tmp_path: Path, docker_host: str, message: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {
        "bento_builder": BentoBuilder(store_dir=str(tmp_path / "bentoml"), build_ctx=str(REPO_ROOT)),
        "docker_engine": DockerEngine(docker_host=docker_host),
    }
    with pytest.raises(dg.Failure, match="materialise bento first"):
        dg.materialize([bento_image], instance=instance, resources=resources)
    metadata = {"bento_tag": "flight_delay:abc", "archive": str(tmp_path / "a.bento"), "model_version": "1"}
    instance.report_runless_asset_event(dg.AssetMaterialization(BENTO_KEY, metadata=metadata))
    with pytest.raises(dg.Failure, match=message):
        dg.materialize([bento_image], instance=instance, resources=resources)


def test_the_engine_and_registry_settings_are_validated_and_reach_the_resource() -> None:
    settings = load_settings(
        {"MLOPS_DOCKER_HOST": "unix:///tmp/e/docker.sock", "MLOPS_IMAGE_REGISTRY": "127.0.0.1:5000/"}
    )
    engine = DockerEngine.from_settings(settings)
    assert (engine.docker_host, engine.registry) == ("unix:///tmp/e/docker.sock", "127.0.0.1:5000")
    assert DockerEngine.from_settings(load_settings({})).docker_host == ""
    with pytest.raises(SettingsError, match=r"MLOPS_DOCKER_HOST='/tmp/e/docker.sock' must be a DOCKER_HOST URL"):
        load_settings({"MLOPS_DOCKER_HOST": "/tmp/e/docker.sock"})
    with pytest.raises(SettingsError, match=r"MLOPS_IMAGE_REGISTRY='http://r:5000' must be host\[:port\]"):
        load_settings({"MLOPS_IMAGE_REGISTRY": "http://r:5000"})
