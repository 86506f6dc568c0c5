"""Build the serving bento with BentoML's own CLI, offline, into a given bento store; export it as one archive.

The bento holds the package's source, the pinned Python requirements and BentoML's generated Dockerfile and OpenAPI
schema. It does not embed the model: the service loads the model behind the ``champion`` alias and follows the
alias (hot swap, rollback), so one image serves every champion. The labels record which champion the bento was
built for, so the registry move that triggered a build can be traced to it.

``bentoml build`` runs as a subprocess with its own ``BENTOML_HOME``: BentoML's store and configuration are
process-wide singletons, and calling the build API inside an orchestrator step is a known source of failures
(BentoML issue 4632). Nothing here writes to this process's environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path
from typing import Any

from mlops_assets.lib.io import write_bytes_atomic

SERVICE_IMPORT = "mlops_assets.service.service:FlightDelayService"
BENTO_NAME = "flight_delay"
PACKAGE = "mlops_assets"
# The package's Python sources and the dbt-free parts the service imports; data, venvs and tests stay out.
INCLUDE = [f"{PACKAGE}/**/*.py"]
EXCLUDE = ["**/__pycache__", f"{PACKAGE}_tests/**"]
BUILD_TIMEOUT_S = 300


class BentoBuildError(RuntimeError):
    """``bentoml build`` or ``bentoml export`` failed; the message carries BentoML's own output."""


@dataclass(frozen=True)
class BuiltBento:
    tag: str
    path: Path
    dockerfile: Path
    openapi: Path
    routes: list[str]
    size_bytes: int
    labels: dict[str, str]


def pinned_requirements(package: str = PACKAGE) -> list[str]:
    """The package's runtime requirements pinned to the versions installed here: the bento's image installs exactly
    what the pipeline was tested with (extras, e.g. ``dev``, are left out)."""
    pinned: list[str] = []
    for requirement in requires(package) or []:
        if "extra ==" in requirement:
            continue
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?", requirement)
        if match is None:
            raise BentoBuildError(f"cannot read requirement {requirement!r} of {package}")
        name, extras = match.group(1), match.group(2) or ""
        try:
            pinned.append(f"{name}{extras}=={version(name)}")
        except PackageNotFoundError as exc:
            raise BentoBuildError(f"{package} requires {name}, which is not installed here") from exc
    return pinned


def bentofile(labels: dict[str, str], packages: list[str]) -> dict[str, Any]:
    """The bentofile as a mapping; ``lock_packages: false`` because locking resolves against the index (offline)."""
    return {
        "service": SERVICE_IMPORT,
        "name": BENTO_NAME,
        "labels": labels,
        "include": INCLUDE,
        "exclude": EXCLUDE,
        "python": {"packages": packages, "lock_packages": False},
        "docker": {"distro": "debian", "python_version": f"{sys.version_info.major}.{sys.version_info.minor}"},
    }


def _bentoml(args: list[str], store_dir: Path, cwd: Path | None = None) -> str:
    env = {**os.environ, "BENTOML_HOME": str(store_dir), "BENTOML_DO_NOT_TRACK": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        output = done.stdout[-2000:] + done.stderr[-4000:]
        raise BentoBuildError(f"bentoml {' '.join(args)} exited {done.returncode}:\n{output}")
    return done.stdout


def _size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def build_bento(build_ctx: Path, store_dir: Path, labels: dict[str, str]) -> BuiltBento:
    """Build the bento from ``build_ctx`` (the directory that holds the ``mlops_assets`` package) into
    ``store_dir``, and check what BentoML generated: the Dockerfile, and an OpenAPI schema with both predict routes."""
    if not (build_ctx / PACKAGE / "__init__.py").is_file():
        raise BentoBuildError(f"{build_ctx} does not hold the {PACKAGE} package; pass the directory above it")
    store_dir.mkdir(parents=True, exist_ok=True)
    spec = store_dir / "bentofile.json"
    # YAML is a superset of JSON: BentoML reads this file as its bentofile.yaml.
    write_bytes_atomic(spec, json.dumps(bentofile(labels, pinned_requirements()), indent=2).encode())
    output = _bentoml(["build", "-f", str(spec), "--output", "tag", str(build_ctx)], store_dir, cwd=build_ctx)
    found = re.search(r"__tag__:(\S+)", output)
    if found is None:
        raise BentoBuildError(f"bentoml build printed no tag:\n{output[-2000:]}")
    tag = found.group(1)
    name, bento_version = tag.split(":", 1)
    path = store_dir / "bentos" / name / bento_version
    dockerfile = path / "env" / "docker" / "Dockerfile"
    openapi = path / "apis" / "openapi.yaml"
    info = json.loads(_bentoml(["get", tag, "--output", "json"], store_dir))
    routes = sorted(route["route"] for route in info["schema"]["routes"])
    missing = [f for f in (dockerfile, openapi) if not f.is_file()]
    if missing or not {"/predict", "/predict_batch"} <= set(routes):
        raise BentoBuildError(f"bento {tag} is incomplete: missing {missing}, routes {routes}")
    return BuiltBento(tag, path, dockerfile, openapi, routes, _size(path), dict(info.get("labels") or {}))


def export_bento(bento: BuiltBento, store_dir: Path, destination: str) -> int:
    """Export the bento as one archive to ``destination`` (a path or an ``s3://`` URL), written atomically;
    returns its size in bytes."""
    local = store_dir / "exports" / f"{bento.tag.replace(':', '-')}.bento"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.unlink(missing_ok=True)
    _bentoml(["export", bento.tag, str(local)], store_dir)
    payload = local.read_bytes()
    write_bytes_atomic(destination, payload)
    local.unlink()
    return len(payload)
