"""The production profile on real servers: PostgreSQL (Dagster instance, MLflow backend, the warehouse's DuckLake
catalog), S3 (Ceph RGW: the Parquet lake, the warehouse's data and MLflow's artefacts), an MLflow tracking server,
Redis (Feast online store) and a Ray head, each started here on 127.0.0.1 and stopped by PID.

The pipeline runs in a subprocess because settings are resolved when the package is imported: it lands 20 days,
materialises the daily chain through feature_store in one run and trains the first weekly model (7 training days so
the slice stays small), exactly as the local profile would, but every piece of state lands on the servers.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import redis
from mlflow.tracking import MlflowClient

from mlops_assets.lib.local_processes import pid_alive
from mlops_assets.settings import REPO_ROOT
from mlops_assets_tests.servers import ceph_s3_server, mlflow_server, postgres_server, ray_head, redis_server

FIRST_DAY, LAST_DAY, WEEK = "2013-01-01", "2013-01-20", "2013-01-21"


def test_production_profile_materialises_through_the_trained_model(tmp_path: Path) -> None:
    with (
        postgres_server(tmp_path / "pg") as postgres,
        redis_server(tmp_path / "redis") as online_store,
        ray_head(tmp_path / "ray") as ray,
        ceph_s3_server(tmp_path / "s3") as s3,
    ):
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
                "MLOPS_LAKE_ROOT": "s3://lake/lake",
                # The DuckLake every step shares: its catalog on the PostgreSQL server, its data on S3.
                "MLOPS_WAREHOUSE_CATALOG": (
                    f"postgres:dbname=warehouse host={postgres.host} port={postgres.port} user={postgres.user}"
                ),
                "MLOPS_WAREHOUSE_DATA_PATH": "s3://lake/warehouse/",
                **s3.client_env,
                "MLOPS_MLFLOW_TRACKING_URI": tracking.tracking_uri,
                "MLOPS_FEAST_ONLINE_STORE": f"{online_store.url}/0",
                "MLOPS_RAY_ADDRESS": ray.address,
                "MLOPS_TRAIN_DAYS": "7",
                **ray.client_env,
            }
            done = subprocess.run(
                [sys.executable, "-m", "mlops_assets_tests.production_run", FIRST_DAY, LAST_DAY, WEEK],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
            line = next(line for line in done.stdout.splitlines() if line.startswith("SUMMARY "))
            summary = json.loads(line.removeprefix("SUMMARY "))
            print(f"production slice: {summary}")
            assert summary["profile"] == "production"
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

            # The Feast online store is Redis, filled by feature_store.
            assert redis.Redis(host="127.0.0.1", port=online_store.port).dbsize() > 0
            # The sweep attached to the running Ray head instead of starting its own Ray.
            assert summary["ray_start_s"] < 10
        mlflow_pid = tracking.pid
    # Every server was stopped by PID.
    assert not any(pid_alive(pid) for pid in (postgres.pid, online_store.pid, ray.pid, mlflow_pid, *s3.pids))
