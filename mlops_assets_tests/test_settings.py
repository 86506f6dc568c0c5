from pathlib import Path

import pytest

from mlops_assets.settings import SettingsError, load_settings


def test_local_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"MLOPS_DATA_DIR": str(tmp_path)})
    assert settings.profile == "local"
    assert settings.lake_root == str(tmp_path / "lake")
    assert settings.duckdb_path == tmp_path / "warehouse.duckdb"
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
