"""The production profile on real servers, every step in its own container as pods would run it.

The servers: PostgreSQL (Dagster instance, MLflow backend, the warehouse's DuckLake catalog), S3 (Ceph RGW: the
landing zone, the Parquet lake, the warehouse's data, the Feast registry and MLflow's artefacts), an MLflow tracking
server, Redis (Feast online store) and a Ray head, each started here on 127.0.0.1 and stopped by PID. The steps:
Debian's Docker engine (deploy/docker-engine.sh) runs the code-location image that deploy/build-code-image.sh builds
from this checkout, one container per step (MLOPS_STEP_EXECUTOR=docker, dagster-docker's docker_executor). The
containers use the host's network and share no disk with this process or with each other: whatever one step hands
the next goes through the servers, exactly as between pods; the sweep reaches Ray as a Ray Client, as a pod does.

The orchestration runs in a subprocess (settings are resolved when the package is imported) with
``dagster asset materialize``, as CI would: it lands 20 days, materialises the daily chain through feature_store as
one run and trains the first weekly model (7 training days so the slice stays small).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import redis
from mlflow.tracking import MlflowClient

from mlops_assets.lib.local_processes import pid_alive
from mlops_assets.settings import REPO_ROOT
from mlops_assets_tests.servers import (
    PostgresServer,
    ceph_s3_server,
    deploy_script,
    docker_engine,
    mlflow_server,
    postgres_server,
    ray_head,
    redis_server,
)

FIRST_DAY, LAST_DAY, WEEK = "2013-01-01", "2013-01-20", "2013-01-21"
STEP_IMAGE = "mlops-assets/code-location:production-test"


def _git_sha() -> str:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return sha.stdout.strip()


def test_production_profile_runs_each_step_in_its_own_container(tmp_path: Path) -> None:
    phases: dict[str, float] = {}
    started = time.perf_counter()
    with docker_engine() as engine:
        phases["engine_and_base_image_s"] = time.perf_counter() - started
        started = time.perf_counter()
        print(deploy_script("build-code-image.sh", STEP_IMAGE, env={"DOCKER_HOST": engine.docker_host}).strip())
        phases["code_image_s"] = time.perf_counter() - started
        _run_the_slice(tmp_path, engine.docker_host, phases)
    print(f"production phases: { {name: round(seconds, 1) for name, seconds in phases.items()} }")


def _run_the_slice(tmp_path: Path, docker_host: str, phases: dict[str, float]) -> None:
    started = time.perf_counter()
    with (
        postgres_server(tmp_path / "pg") as postgres,
        redis_server(tmp_path / "redis") as online_store,
        ray_head(tmp_path / "ray") as ray,
        ceph_s3_server(tmp_path / "s3") as s3,
    ):
        phases["servers_s"] = time.perf_counter() - started
        s3.create_bucket("lake")
        dagster_url = postgres.create_database("dagster")
        mlflow_url = postgres.create_database("mlflow")
        postgres.create_database("warehouse")
        with mlflow_server(tmp_path / "mlflow", mlflow_url, "s3://lake/mlflow", extra_env=s3.client_env) as tracking:
            home = tmp_path / "dagster_home"
            home.mkdir()
            (home / "dagster.yaml").write_text(
                f"storage:\n  postgres:\n    postgres_url: {dagster_url}\ntelemetry:\n  enabled: false\n"
            )
            # Nothing of this test process's own settings may leak in (settings are resolved from the environment
            # when the package is imported): the subprocess's state lives only under tmp_path and on the servers.
            inherited = {
                name: value
                for name, value in os.environ.items()
                if not name.startswith(("MLOPS_", "RAY_ADDRESS", "RAY_AUTH", "AWS_"))
            }
            env = {
                **inherited,
                "DAGSTER_HOME": str(home),
                "MLOPS_PROFILE": "production",
                "MLOPS_DATA_DIR": str(tmp_path / "data"),
                # Each step in its own container from the image built above, on the engine at DOCKER_HOST.
                "MLOPS_STEP_EXECUTOR": "docker",
                "MLOPS_STEP_IMAGE": STEP_IMAGE,
                "DOCKER_HOST": docker_host,
                # Everything the steps exchange is on the servers: the landing zone and the registry too.
                "MLOPS_LANDING_ROOT": "s3://lake/landing",
                "MLOPS_FEAST_REGISTRY": "s3://lake/feast/registry.db",
                "MLOPS_LAKE_ROOT": "s3://lake/lake",
                # The DuckLake every step shares: its catalog on the PostgreSQL server, its data on S3.
                "MLOPS_WAREHOUSE_CATALOG": (
                    f"postgres:dbname=warehouse host={postgres.host} port={postgres.port} user={postgres.user}"
                ),
                "MLOPS_WAREHOUSE_DATA_PATH": "s3://lake/warehouse/",
                **s3.client_env,
                "MLOPS_MLFLOW_TRACKING_URI": tracking.tracking_uri,
                "MLOPS_FEAST_ONLINE_STORE": f"{online_store.url}/0",
                # A container reaches Ray as a pod does, as a Ray Client, authenticated by the token's value.
                "MLOPS_RAY_ADDRESS": ray.client_address,
                "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN": ray.token,
                "MLOPS_TRAIN_DAYS": "7",
            }
            done = subprocess.run(
                [sys.executable, "-m", "mlops_assets_tests.production_run", FIRST_DAY, LAST_DAY, WEEK],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
            line = next(line for line in done.stdout.splitlines() if line.startswith("SUMMARY "))
            summary = json.loads(line.removeprefix("SUMMARY "))
            print(f"production slice: {summary}")
            phases.update({name: summary[name] for name in ("dimensions_s", "daily_chain_s", "training_s", "bento_s")})
            assert summary["profile"] == "production"
            assert summary["executor"] == "docker"
            # The landing sensor lists the landing zone on S3: the dimensions, then the 20 days as one range.
            assert summary["landing_requests"] == [
                ["raw_dimensions_job"],
                ["raw_daily_job", FIRST_DAY, LAST_DAY],
            ], summary["landing_requests"]
            assert summary["storage"] == "PostgresRunStorage"
            assert summary["warehouse"].startswith("postgres:dbname=warehouse ")
            # The warehouse's tables are in the PostgreSQL catalog, their data on S3; MLflow's artefacts too.
            tables = {row[0] for row in postgres.query("warehouse", "select table_name from ducklake_table")}
            assert {"flights_enriched", "delay_history"} <= tables
            warehouse_files = s3.keys("lake", "warehouse/")
            assert any(key.startswith("warehouse/main/flights_enriched/") for key in warehouse_files), warehouse_files
            assert any(key.endswith(".parquet") for key in warehouse_files)
            assert s3.keys("lake", "mlflow/"), "no MLflow artefact reached S3"
            # The lake is on S3 as well: the raw partitions (which dbt read from there) and the validated features.
            raw_days = {key.split("/")[3] for key in s3.keys("lake", "lake/raw/flights/")}
            assert len(raw_days) == 20, sorted(raw_days)
            assert s3.keys("lake", "lake/features/"), "no feature partition reached S3"

            # Dagster's runs and events are in PostgreSQL.
            runs = dict(postgres.query("dagster", "select run_id, status from runs"))
            assert runs[summary["daily_run_id"]] == "SUCCESS"
            assert runs[summary["training_run_id"]] == "SUCCESS"
            materialised = postgres.query(
                "dagster",
                "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
                "and asset_key like '%trained_model%'",
            )
            assert materialised[0][0] == 1

            # The model version is in the MLflow server, whose backend is PostgreSQL.
            client = MlflowClient(tracking_uri=tracking.tracking_uri)
            version = client.get_model_version_by_alias("flight_delay", "challenger")
            assert str(version.version) == summary["model_version"]
            assert version.tags["dagster.run_id"] == summary["training_run_id"]
            stored = postgres.query("mlflow", "select name, version from model_versions")
            assert stored == [("flight_delay", int(summary["model_version"]))]
            trials = postgres.query("mlflow", "select count(*) from tags where key = 'mlflow.parentRunId'")
            assert trials[0][0] == 2

            # Every step ran in a container of the image built from this checkout, which stamped the model.
            _assert_one_container_per_step(postgres, docker_host, summary["run_ids"])
            image_env = dict(
                item.split("=", 1) for item in docker.DockerClient(base_url=docker_host).images.get(STEP_IMAGE).attrs[
                    "Config"]["Env"]
            )  # fmt: skip
            assert image_env["MLOPS_GIT_SHA"].removesuffix("-dirty") == _git_sha()
            assert version.tags["git_sha"] == image_env["MLOPS_GIT_SHA"]
            assert s3.keys("lake", "landing/flights/"), "the landing zone is not on S3"
            assert s3.keys("lake", "feast/"), "the Feast registry is not on S3"
            # The bento, built in its own container for the champion, is exported to the lake on S3.
            assert summary["bento_model_version"] == summary["model_version"]
            archive = summary["bento_archive"].removeprefix("s3://lake/")
            assert archive.startswith("lake/serving/bentos/") and archive in s3.keys("lake", "lake/serving/"), archive

            # The Feast online store is Redis, filled by feature_store.
            assert redis.Redis(host="127.0.0.1", port=online_store.port).dbsize() > 0
            # The sweep attached to the running Ray head (as a Ray Client) instead of starting its own Ray.
            assert summary["ray_start_s"] < 10
            assert "ray://" in summary["ray_address"]
        mlflow_pid = tracking.pid
    # Every server was stopped by PID.
    assert not any(pid_alive(pid) for pid in (postgres.pid, online_store.pid, ray.pid, mlflow_pid, *s3.pids))


def _assert_one_container_per_step(postgres: PostgresServer, docker_host: str, run_ids: list[str]) -> None:
    """Each step of the runs started a container (Dagster logged its id); each ran the image, exited 0, with the
    host's network and no mount: no disk shared with this process or another step. They are removed afterwards."""
    rows = postgres.query(
        "dagster",
        "select run_id, step_key from event_logs where dagster_event_type = 'STEP_WORKER_STARTING'",
    )
    started = {row[0]: [] for row in rows}
    for run_id, step_key in rows:
        started[run_id].append(step_key)
    assert set(run_ids) <= set(started), f"a run started no step container: {run_ids} vs {sorted(started)}"
    assert "bento" in started[run_ids[0]]
    client = docker.DockerClient(base_url=docker_host)
    containers = [
        c for c in client.containers.list(all=True, filters={"name": "dagster-step-"})
        if c.attrs["Config"]["Env"] and any("DAGSTER_RUN_STEP_KEY=" in e for e in c.attrs["Config"]["Env"])
    ]  # fmt: skip
    ours = [c for c in containers if c.attrs["Config"]["Image"] == STEP_IMAGE]
    try:
        steps = sum(len(keys) for run_id, keys in started.items() if run_id in run_ids)
        assert len(ours) == steps > 3, (len(ours), steps)
        print(f"{steps} step containers: {sorted(key for keys in started.values() for key in keys)}")
        for container in ours:
            assert container.attrs["State"]["ExitCode"] == 0, container.logs(tail=40).decode()
            assert container.attrs["HostConfig"]["NetworkMode"] == "host"
            assert container.attrs["Mounts"] == []
    finally:
        for container in containers:
            container.remove(force=True)
