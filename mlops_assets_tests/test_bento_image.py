"""The serving image for real: Debian's Docker engine started by deploy/docker-engine.sh (stopped by PID), the base
image made from Debian packages by deploy/base-image.sh, the bento and its image built through the real ``bento`` and
``bento_image`` assets and pushed to a real registry (Debian's docker-registry) on 127.0.0.1, then the container run
by that digest, as a pod would, on 127.0.0.1 against this module's MLflow registry and the session's online store.

The container (``--network host``, the service on a free port) sees the data by bind mounts at the same paths, runs
with a read-only root filesystem and tmpfs for /tmp and BENTOML_HOME as the serving chart runs it, and its answers
must equal the in-process ServingRuntime's on the same flights. It runs as this test's uid: the temp dirs it reads
are private to that user.

The engine's data-root is kept between runs (MLOPS_TEST_DOCKER_DIR, default <tmp>/mlops-assets-docker), so a warm run
reuses the base image and the engine's layer cache; a cold run debootstraps the base and installs every wheel.
Needs root and: apt-get install -y --no-install-recommends docker.io debootstrap docker-registry
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import yaml

from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.serving.assets import bento, bento_image
from mlops_assets.defs.serving.resources import BentoBuilder, DockerEngine
from mlops_assets.lib.bento_build import DEFAULT_BASE_IMAGE
from mlops_assets.lib.local_processes import free_port, pid_alive
from mlops_assets.lib.model_registry import CHAMPION
from mlops_assets.service.runtime import ServingRuntime
from mlops_assets.service.scoring import FlightRequest
from mlops_assets.settings import load_settings
from mlops_assets_tests.conftest import Warehouse
from mlops_assets_tests.servers import Engine, docker_engine
from mlops_assets_tests.test_evaluation_assets import Setup, _evaluate, _register, setup  # noqa: F401  (fixture)
from mlops_assets_tests.test_service_http import _day_flights
from mlops_assets_tests.tools import tools_bin

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = REPO_ROOT / "deploy"
SERVED_DAY = date(2013, 2, 14)  # the last day whose features the session's online store holds
READY_TIMEOUT_S = 180


@dataclass(frozen=True)
class Built:
    metadata: dict[str, Any]
    champion_version: str
    build_seconds: float


@dataclass(frozen=True)
class Container:
    container_id: str
    pid: int
    url: str
    env: dict[str, str]  # the service's MLOPS_* settings, for the in-process runtime to compare with


def _docker(engine: Engine, *args: str, timeout_s: float = 120) -> str:
    done = subprocess.run(
        ["docker", *args],
        env={**os.environ, "DOCKER_HOST": engine.docker_host},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, f"docker {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def _inspect(engine: Engine, reference: str) -> dict[str, Any]:
    return json.loads(_docker(engine, "image", "inspect", reference))[0]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with docker_engine() as started:
        yield started


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry (the CNCF distribution registry) on a free 127.0.0.1 port, stopped by PID."""
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is missing: apt-get install -y --no-install-recommends docker-registry"
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": address},
    }
    (root / "config.yml").write_text(yaml.safe_dump(config))
    with (root / "registry.log").open("w") as log:
        process = subprocess.Popen(
            [binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (root / "registry.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://{address}/v2/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (root / "registry.log").read_text()[-2000:]
            time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def built(setup: Setup, engine: Engine, registry: str, dagster_instance: dg.DagsterInstance) -> Built:  # noqa: F811
    version = _register(setup, setup.train, rounds=60)
    assert _evaluate(setup, dagster_instance).success
    assert setup.tracking.alias_version(CHAMPION) == version
    resources = {
        **setup.resources,
        "bento_builder": BentoBuilder(store_dir=str(setup.tmp / "bentoml"), build_ctx=str(REPO_ROOT)),
        "docker_engine": DockerEngine(docker_host=engine.docker_host, registry=registry),
    }
    started = time.monotonic()
    result = dg.materialize([bento, bento_image], instance=dagster_instance, resources=resources)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("bento_image")
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    return Built(metadata, version, time.monotonic() - started)


@pytest.fixture(scope="module")
def container(setup: Setup, engine: Engine, built: Built) -> Iterator[Container]:  # noqa: F811
    port = free_port()
    env = {
        "MLOPS_DATA_DIR": str(SETTINGS.data_dir),
        "MLOPS_MLFLOW_TRACKING_URI": setup.tracking.tracking_uri,
        "MLOPS_MLFLOW_REGISTRY_URI": setup.tracking.registry_uri,
        "MLOPS_REGISTERED_MODEL": setup.tracking.registered_model_name,
    }
    # The data at the same paths inside, so every URI in the settings and the registry resolves unchanged.
    mounts = [f"--volume={path}:{path}" for path in sorted({str(SETTINGS.data_dir), str(setup.tmp)})]
    container_id = _docker(
        engine,
        "run",
        "--detach",
        "--network=host",
        f"--user={os.getuid()}:{os.getgid()}",
        "--read-only",
        "--tmpfs=/tmp",
        "--tmpfs=/var/lib/bentoml",
        "--env=BENTOML_HOME=/var/lib/bentoml",
        "--env=HOME=/tmp",
        "--env=BENTOML_DO_NOT_TRACK=true",
        *[f"--env={name}={value}" for name, value in env.items()],
        *mounts,
        # By the digest the registry assigned, exactly as the chart's Deployment names it.
        str(built.metadata["repo_digest"]),
        "serve",
        "--host=127.0.0.1",
        f"--port={port}",
    ).strip()
    pid = int(_docker(engine, "inspect", "--format={{.State.Pid}}", container_id))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            state = json.loads(_docker(engine, "inspect", "--format={{json .State}}", container_id))
            assert state["Running"], _docker(engine, "logs", "--tail=60", container_id)
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, _docker(engine, "logs", "--tail=60", container_id)
            time.sleep(0.5)
        yield Container(container_id, pid, url, env)
    finally:
        subprocess.run(["docker", "rm", "--force", container_id], env={**os.environ, "DOCKER_HOST": engine.docker_host})


def test_the_image_is_built_on_the_debian_base_and_pushed_by_digest(
    engine: Engine, registry: str, built: Built
) -> None:
    metadata = built.metadata
    print(f"base image {engine.base_seconds:.1f}s; bento + image {built.build_seconds:.1f}s")
    assert metadata["model_version"] == built.champion_version
    image = _inspect(engine, str(metadata["image"]))
    assert image["Id"] == metadata["image_id"] and str(metadata["image_id"]).startswith("sha256:")
    # Pushed: the registry's manifest digest, which the engine records once it pushed (or pulled) the image.
    repository = f"{registry}/{str(metadata['image']).rsplit(':', 1)[0]}"
    assert str(metadata["repo_digest"]).startswith(f"{repository}@sha256:")
    assert metadata["digest"] == metadata["repo_digest"] in image["RepoDigests"]
    manifest = httpx.get(
        f"http://{registry}/v2/{repository.split('/', 1)[1]}/manifests/{str(metadata['repo_digest']).split('@')[1]}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    assert manifest.status_code == 200, manifest.text
    # FROM the Debian base: the base's layers are the first layers of the image.
    base = _inspect(engine, DEFAULT_BASE_IMAGE)
    assert base["Id"] == metadata["base_image_id"]
    assert image["RootFS"]["Layers"][: len(base["RootFS"]["Layers"])] == base["RootFS"]["Layers"]
    # The pinned closure and the service, and no compilers (BentoML's v2 spec would add build-essential).
    versions = _docker(
        engine,
        "run",
        "--rm",
        "--entrypoint=/app/.venv/bin/python",
        str(metadata["image"]),
        "-c",
        "import importlib.metadata as m, shutil; print(m.version('lightgbm'), m.version('bentoml'), "
        "shutil.which('gcc'))",
    )
    assert versions.split() == [version("lightgbm"), version("bentoml"), "None"]


def test_the_container_answers_like_the_in_process_runtime(
    container: Container, built: Built, feature_lake: Warehouse
) -> None:
    flights = _day_flights(feature_lake.lake_root, SERVED_DAY, 8)
    single = httpx.post(f"{container.url}/predict", json={"flight": flights[0]}, timeout=30)
    assert single.status_code == 200, single.text
    batch = httpx.post(f"{container.url}/predict_batch", json={"flights": flights}, timeout=30)
    assert batch.status_code == 200, batch.text
    served = batch.json()["predictions"]

    runtime = ServingRuntime(settings=load_settings({**os.environ, **container.env}))
    runtime.load()
    try:
        expected = runtime.predict([FlightRequest.model_validate(flight) for flight in flights])
    finally:
        runtime.stop()
    assert single.json()["probability"] == pytest.approx(expected[0].probability, abs=1e-9)
    assert len(served) == len(expected) == len(flights)
    for answer, local in zip(served, expected, strict=True):
        assert answer["model_version"] == local.model_version == built.champion_version
        assert answer["flight_id"] == local.flight_id
        assert answer["probability"] == pytest.approx(local.probability, abs=1e-9)
        assert answer["delayed"] == local.delayed


def test_the_serving_chart_deploys_the_pushed_digest(tmp_path: Path, built: Built) -> None:
    repository, digest = str(built.metadata["repo_digest"]).split("@", 1)
    values = {"stable": {"image": {"repository": repository, "digest": digest}}}
    done = subprocess.run(
        [
            str(tools_bin("python")),
            str(DEPLOY / "tools" / "render_chart.py"),
            str(DEPLOY / "charts" / "flight-delay-serving"),
            str(tmp_path),
            json.dumps({"built": values}),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    docs = [doc for doc in yaml.safe_load_all((tmp_path / "built.yaml").read_text()) if doc]
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == built.metadata["repo_digest"]


def test_the_container_and_the_engine_stop_by_pid(engine: Engine, container: Container) -> None:
    assert pid_alive(container.pid)
    _docker(engine, "stop", "--time=20", container.container_id, timeout_s=60)
    assert not pid_alive(container.pid), f"the container's process (PID {container.pid}) survived docker stop"
