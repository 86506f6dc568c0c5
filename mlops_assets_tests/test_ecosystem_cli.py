"""The ecosystem's own tools on the project, as a newcomer runs them: `dg` (check, list, launch), the lock, Feast's CLI.

Each command is the real console script of this environment, run as a subprocess with its own temporary
DAGSTER_HOME / MLOPS_DATA_DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from mlops_assets.settings import STATE_LOCATION_VARIABLES

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(home),
        MLOPS_DATA_DIR=str(tmp_path / "data"),
        VIRTUAL_ENV=str(BIN.parent),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        NO_COLOR="1",
    )
    for name in (*STATE_LOCATION_VARIABLES, "MLOPS_FEAST_REGISTRY"):
        env.pop(name, None)
    env.pop("MLOPS_FEAST_ONLINE_STORE", None)
    return env


def _run(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_uv_lock_is_consistent_with_pyproject() -> None:
    """uv.lock is committed and matches pyproject.toml (setup.sh, CI and the image install with --locked); offline."""
    proc = subprocess.run(
        [str(BIN / "uv"), "lock", "--check", "--offline"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dg_loads_our_definitions_and_launches_a_partition(tmp_path: Path) -> None:
    """`dg check defs` and `dg list defs` load mlops_assets.definitions (every asset, check and sensor of the code
    location), and `dg launch --assets … --partition …` materialises a landed day."""
    from mlops_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    env = _env(tmp_path)

    check = _run([str(BIN / "dg"), "check", "defs"], env)
    assert "All definitions loaded successfully" in check.stdout + check.stderr

    listed = json.loads(_run([str(BIN / "dg"), "list", "defs", "--json"], env).stdout)
    assert {a["asset_key"] for a in listed["assets"]} == {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {a["asset_key"]: a["group_name"] for a in listed["assets"]}["raw/flights"] == "raw"
    assert len(listed["asset_checks"]) == len(list(graph.asset_check_keys))
    assert {s["name"] for s in listed["sensors"]} == {s.name for s in defs.sensors or []}

    day = date(2013, 1, 2)
    _run([str(BIN / "mlops-assets"), "land", day.isoformat()], env)
    launch = _run(
        [str(BIN / "dg"), "launch", "--assets", "raw/flights,raw/weather", "--partition", day.isoformat()], env
    )
    assert "RUN_SUCCESS" in launch.stdout + launch.stderr
    for table in ("flights", "weather"):
        assert (tmp_path / "data" / "lake" / "raw" / table / f"date={day}").is_dir()


def test_feast_cli_reads_the_products_store() -> None:
    """`mlops-assets feast-config` writes a repo dir under the data dir whose feature_store.yaml is the RepoConfig the
    pipeline builds in-process, so Feast's own CLI (`feast -c DIR feature-views list`, `feast ui`) sees our views."""
    from feast.repo_config import load_repo_config

    from mlops_assets.cli import main
    from mlops_assets.defs.features.resources import FeatureStoreResource
    from mlops_assets.lib.feature_views import FEATURE_VIEWS_BY_NAME
    from mlops_assets.settings import load_settings

    settings = load_settings()
    resource = FeatureStoreResource.from_settings(settings)
    resource.ensure_applied()
    assert main(["feast-config"]) == 0
    repo = settings.data_dir / "feast" / "repo"
    yaml_path = repo / "feature_store.yaml"
    assert yaml_path.is_file() and not (REPO_ROOT / "mlops_assets" / "feature_repo" / "feature_store.yaml").exists()

    ours = resource.get_store().config
    theirs = load_repo_config(repo, yaml_path)
    for field in ("project", "provider", "entity_key_serialization_version"):
        assert getattr(theirs, field) == getattr(ours, field), field
    assert theirs.registry.path == ours.registry.path and theirs.registry.registry_type == "file"
    assert theirs.online_store.type == ours.online_store.type and theirs.online_store.path == ours.online_store.path
    assert theirs.offline_store.type == ours.offline_store.type

    env = {**os.environ, "FEAST_USAGE": "False", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    listed = ""
    for command in ("feature-views", "stream-feature-views"):
        listed += _run([str(BIN / "feast"), "-c", str(repo), command, "list"], env).stdout
    names = {line.split()[0] for line in listed.splitlines()[1:] if line.strip() and not line.startswith("NAME")}
    assert set(FEATURE_VIEWS_BY_NAME) <= names, (sorted(FEATURE_VIEWS_BY_NAME), listed)
    assert {"route_delay_stats", "origin_weather", "plane_attributes", "origin_today"} <= names
