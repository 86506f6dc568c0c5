from pathlib import Path

import pytest

from mlops_assets.settings import SettingsError, load_settings


def test_local_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"MLOPS_DATA_DIR": str(tmp_path)})
    assert settings.profile == "local"
    assert settings.lake_root == str(tmp_path / "lake")
    assert settings.warehouse_catalog == f"sqlite:{tmp_path / 'warehouse.sqlite'}"
    assert settings.warehouse_data_path == f"{tmp_path / 'warehouse'}/"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert settings.ray_address == "local"


def test_production_requires_explicit_service_urls(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MLOPS_LAKE_ROOT must be set"):
        load_settings({"MLOPS_PROFILE": "production", "MLOPS_DATA_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOPS_PROFILE": "staging"}, "is not a profile"),
        ({"MLOPS_PARTITIONS_START": "2013/01/01"}, "use YYYY-MM-DD"),
        ({"MLOPS_PARTITIONS_START": "2013-06-01", "MLOPS_PARTITIONS_END": "2013-05-01"}, "is before"),
        ({"MLOPS_PREDICTION_LEAD_MINUTES": "an hour"}, "whole number of minutes"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_only_settings_reads_the_environment() -> None:
    package = Path(__file__).resolve().parent.parent / "mlops_assets"
    readers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "settings.py" and ("os.environ.get" in path.read_text() or "os.getenv" in path.read_text())
    ]
    assert readers == []


def test_executor_is_in_process_locally_and_one_k8s_job_per_step_in_production(tmp_path: Path) -> None:
    from mlops_assets.defs.resources import build_executor

    assert build_executor(load_settings({"MLOPS_DATA_DIR": str(tmp_path)})).name == "in_process"
    production = load_settings(
        {
            "MLOPS_PROFILE": "production",
            "MLOPS_DATA_DIR": str(tmp_path),
            "MLOPS_LAKE_ROOT": "s3://lake",
            "MLOPS_MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "MLOPS_FEAST_ONLINE_STORE": "redis://redis:6379/0",
        }
    )
    assert build_executor(production).name == "k8s"


def test_the_warehouse_is_required_in_production_only_where_it_is_opened(tmp_path: Path) -> None:
    from mlops_assets.lib.warehouse import WarehouseLocation

    production = {
        "MLOPS_PROFILE": "production",
        "MLOPS_DATA_DIR": str(tmp_path),
        "MLOPS_LAKE_ROOT": "s3://lake",
        "MLOPS_MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MLOPS_FEAST_ONLINE_STORE": "redis://redis:6379/0",
    }
    serving = load_settings(production)  # the serving pods never open the warehouse
    with pytest.raises(SettingsError, match="MLOPS_WAREHOUSE_CATALOG must be set when MLOPS_PROFILE=production"):
        WarehouseLocation.from_settings(serving)
    catalog = "postgres:dbname=warehouse host=pg user=dagster"
    shared = WarehouseLocation.from_settings(load_settings({**production, "MLOPS_WAREHOUSE_CATALOG": catalog}))
    assert shared.catalog == catalog and shared.catalog_file is None
    assert shared.attach_sql(read_only=True) == f"ATTACH 'ducklake:{catalog}' AS lake (READ_ONLY)"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOPS_WAREHOUSE_CATALOG": "warehouse.duckdb"}, "must be sqlite:<file> or postgres:<connection string>"),
        ({"MLOPS_WAREHOUSE_CATALOG": "mysql:db=x"}, "must be sqlite:<file> or postgres:<connection string>"),
        ({"MLOPS_WAREHOUSE_DATA_PATH": "gs://bucket/warehouse"}, "must be a folder or an s3:// URL"),
    ],
)
def test_a_malformed_warehouse_setting_names_the_variable(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"MLOPS_DATA_DIR": str(tmp_path), **env})


def test_the_landing_zone_is_a_folder_or_a_url(tmp_path: Path) -> None:
    assert load_settings({"MLOPS_DATA_DIR": str(tmp_path)}).landing_root == str(tmp_path / "landing")
    relative = load_settings({"MLOPS_DATA_DIR": str(tmp_path), "MLOPS_LANDING_ROOT": f"file://{tmp_path}/in/../up"})
    assert relative.landing_root == str(tmp_path / "up")
    shared = load_settings({"MLOPS_DATA_DIR": str(tmp_path), "MLOPS_LANDING_ROOT": "s3://landing/zone"})
    assert shared.landing_root == "s3://landing/zone"


def _production(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "MLOPS_PROFILE": "production",
        "MLOPS_DATA_DIR": str(tmp_path),
        "MLOPS_LAKE_ROOT": "s3://lake",
        "MLOPS_MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MLOPS_FEAST_ONLINE_STORE": "redis://redis:6379/0",
        **extra,
    }


def test_the_docker_step_executor_runs_the_image_with_the_settings_but_no_host_path(tmp_path: Path) -> None:
    from mlops_assets.defs.resources import build_executor

    env = _production(
        tmp_path,
        MLOPS_STEP_EXECUTOR="docker",
        MLOPS_STEP_IMAGE="mlops-assets/code-location:abc",
        MLOPS_DUCKDB_EXTENSION_DIR=str(tmp_path / "ext"),
        AWS_REGION="us-east-1",
        RAY_AUTH_TOKEN_PATH=str(tmp_path / "token"),
        RAY_AUTH_MODE="token",
        HOME=str(tmp_path),
    )
    settings = load_settings(env)
    assert settings.step_image == "mlops-assets/code-location:abc"
    # The container has its own data dir and extensions, and the token file is not there: those stay behind.
    assert settings.step_environment == (
        "AWS_REGION",
        "MLOPS_FEAST_ONLINE_STORE",
        "MLOPS_LAKE_ROOT",
        "MLOPS_MLFLOW_TRACKING_URI",
        "MLOPS_PROFILE",
        "MLOPS_STEP_EXECUTOR",
        "MLOPS_STEP_IMAGE",
        "RAY_AUTH_MODE",
    )
    executor = build_executor(settings)
    assert executor.name == "docker"
    resolved = executor.config_schema.resolve_config({})
    assert resolved.success
    config = resolved.value["config"]  # type: ignore[index]
    assert config["image"] == settings.step_image
    assert config["env_vars"] == list(settings.step_environment)
    assert config["container_kwargs"] == {"network_mode": "host"}
    assert build_executor(load_settings(_production(tmp_path))).name == "k8s"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"MLOPS_STEP_EXECUTOR": "ecs"}, "MLOPS_STEP_EXECUTOR='ecs' is not a step executor; use one of k8s, docker"),
        ({"MLOPS_STEP_EXECUTOR": "docker"}, "MLOPS_STEP_IMAGE must name the code-location image"),
    ],
)
def test_a_bad_step_executor_setting_names_the_variable(extra: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(_production(tmp_path, **extra))
