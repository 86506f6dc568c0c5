"""Loading the code location and running an asset leave the process's global state alone.

Settings reach dbt, MLflow, Ray and Feast through resources and subprocess arguments, never through ``os.environ`` or
MLflow's process-wide tracking/registry URIs. The check runs in a fresh interpreter (this session has imported the
definitions long ago, and conftest sets variables at collection): it snapshots the environment and MLflow's URIs,
imports the definitions, materialises one landed raw partition in-process with the product's resources, and compares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, os, sys
from datetime import date

import dagster as dg
import mlflow

from mlops_assets.lib.landing import land_days

instance = dg.DagsterInstance.get()  # the product's dagster.yaml; instance set-up is not under test
land_days(os.environ["MLOPS_DATA_DIR"] + "/landing", date(2013, 1, 2), date(2013, 1, 2))
before = (dict(os.environ), mlflow.get_tracking_uri(), mlflow.get_registry_uri())
heavy_before = {name for name in ("lightgbm", "ray", "feast", "mlflow", "sklearn") if name in sys.modules}

from mlops_assets.definitions import defs

loaded = {name for name in ("lightgbm", "ray", "feast", "sklearn") if name in sys.modules} - heavy_before
job = defs.resolve_implicit_global_asset_job_def()
result = job.execute_in_process(
    instance=instance, asset_selection=[dg.AssetKey(["raw", "weather"])], partition_key="2013-01-02"
)
after = (dict(os.environ), mlflow.get_tracking_uri(), mlflow.get_registry_uri())
env_before, env_after = before[0], after[0]
print(json.dumps({
    "success": result.success,
    "added": sorted(set(env_after) - set(env_before)),
    "removed": sorted(set(env_before) - set(env_after)),
    "changed": sorted(k for k in env_before.keys() & env_after.keys() if env_before[k] != env_after[k]),
    "mlflow_before": before[1:],
    "mlflow_after": after[1:],
    "loaded_at_import": sorted(loaded),
}))
"""


def test_definitions_and_a_materialisation_change_no_global_state(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((Path(__file__).resolve().parent.parent / "dagster.yaml").read_text())
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLOPS_", "MLFLOW_", "RAY_"))}
    env.update(MLOPS_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["success"]
    assert (report["added"], report["removed"], report["changed"]) == ([], [], [])
    assert report["mlflow_after"] == report["mlflow_before"]
    # Heavy libraries are imported where they are used, not when the code location loads.
    assert report["loaded_at_import"] == []
