"""Loading the code location and running an asset leave the process's global state alone.

Settings reach dbt, MLflow, Ray and Feast through resources and subprocess arguments, never through ``os.environ`` or
MLflow's process-wide tracking/registry URIs. The check runs in a fresh interpreter (this session has imported the
definitions long ago, and conftest sets variables at collection): it snapshots the environment and MLflow's URIs,
imports the definitions, materialises one landed raw partition in-process with the product's resources, and compares.

Some libraries write variables when they are imported (polars ``_RJEM_MALLOC_CONF``; pandera ``SPARK_LOCAL_IP`` and
``PYARROW_IGNORE_TIMEZONE``; LightGBM and scikit-learn ``KMP_*``; Ray ``RAY_CLIENT_MODE``). That is theirs, not ours:
the environment check imports them before its snapshot, and a second interpreter checks that loading the definitions
imports none of the heavy ones.
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
from pathlib import Path

import dagster as dg

if sys.argv[1] == "imports":
    import mlops_assets.definitions  # noqa: F401

    heavy = ("lightgbm", "ray", "feast", "sklearn", "pandera", "mlflow", "bentoml", "whylogs", "matplotlib")
    print(json.dumps({"loaded_at_import": sorted(name for name in heavy if name in sys.modules)}))
    raise SystemExit(0)

import lightgbm, mlflow, pandera.polars, polars, ray, sklearn  # they write os.environ when imported (docstring)

from mlops_assets.lib.landing import land_days

instance = dg.DagsterInstance.get()  # the product's dagster.yaml; instance set-up is not under test
land_days(Path(os.environ["MLOPS_DATA_DIR"]) / "landing", date(2013, 1, 2), date(2013, 1, 2))
before = (dict(os.environ), mlflow.get_tracking_uri(), mlflow.get_registry_uri())

from mlops_assets.definitions import defs

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
}))
"""


def _run(mode: str, tmp_path: Path) -> dict:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((Path(__file__).resolve().parent.parent / "dagster.yaml").read_text())
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLOPS_", "MLFLOW_", "RAY_"))}
    env.update(MLOPS_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_definitions_and_a_materialisation_change_no_global_state(tmp_path: Path) -> None:
    report = _run("state", tmp_path)
    assert report["success"]
    assert (report["added"], report["removed"], report["changed"]) == ([], [], [])
    assert report["mlflow_after"] == report["mlflow_before"]


def test_loading_the_definitions_imports_no_heavy_library(tmp_path: Path) -> None:
    """Heavy libraries are imported where they are used (asset bodies, resource methods), not at load.

    dagster_dbt is the one that loads: ``@dbt_assets`` builds the dbt models' asset specs from the manifest when the
    code location loads, which is what a dbt code location is for. ``benchmarks/startup.py`` prints its cost.
    """
    assert _run("imports", tmp_path)["loaded_at_import"] == []
