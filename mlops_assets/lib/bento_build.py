"""Build the serving bento with BentoML's own CLI, offline, into a given bento store; export it as one archive.

The bento holds the package's source, the pinned Python requirements and BentoML's generated Dockerfile and OpenAPI
schema. It does not embed the model: the service loads the model behind the ``champion`` alias and follows the
alias (hot swap, rollback), so one image serves every champion. The labels record which champion the bento was
built for, so the registry move that triggered a build can be traced to it.

``bentoml build`` runs as a subprocess with its own ``BENTOML_HOME``: BentoML's store and configuration are
process-wide singletons, and calling the build API inside an orchestrator step is a known source of failures
(BentoML issue 4632). Nothing here writes to this process's environment.

The bento's Dockerfile starts ``FROM`` a base image given at build time (``deploy/base-image.sh`` makes one from
Debian packages), and :func:`containerize_bento` builds it with ``bentoml containerize`` on the Docker engine at a
given ``DOCKER_HOST`` (``deploy/docker-engine.sh``) with the classic builder and ``--network host``, so the image's
``uv`` reaches the package index the way this machine does; the image's digest is read back from the engine.
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

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlops_assets.lib.io import write_bytes_atomic

SERVICE_IMPORT = "mlops_assets.service.service:FlightDelayService"
BENTO_NAME = "flight_delay"
PACKAGE = "mlops_assets"
# The package's Python sources and the dbt-free parts the service imports; data, venvs and tests stay out.
INCLUDE = [f"{PACKAGE}/**/*.py"]
EXCLUDE = ["**/__pycache__", f"{PACKAGE}_tests/**"]
# Relative to the build context (the directory above the package), so it is found in a checkout and in the image.
DOCKERFILE_TEMPLATE = f"{PACKAGE}/lib/bento_dockerfile.j2"
BUILD_TIMEOUT_S = 300
# Installing the pinned closure (about 250 wheels) and compiling it is most of an image build.
CONTAINERIZE_TIMEOUT_S = 1800
DEFAULT_BASE_IMAGE = "mlops-assets/bookworm-python:3.11"
DEFAULT_IMAGE_REPOSITORY = "mlops-assets/flight-delay-bento"


class BentoBuildError(RuntimeError):
    """``bentoml build``, ``export`` or ``containerize`` failed; the message carries the tool's own output."""


@dataclass(frozen=True)
class BuiltBento:
    tag: str
    path: Path
    dockerfile: Path
    openapi: Path
    routes: list[str]
    size_bytes: int
    labels: dict[str, str]


def _requirement(raw: str, owner: str) -> Requirement:
    try:
        return Requirement(raw)
    except ValueError as exc:
        raise BentoBuildError(f"cannot read requirement {raw!r} of {owner}") from exc


def _wanted(requirement: Requirement, extras: set[str]) -> bool:
    """Whether ``requirement`` applies here: its marker holds for this interpreter and one of the extras asked for
    (or none, for the distribution's own requirements)."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def _installed_version(name: str, owner: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError as exc:
        raise BentoBuildError(f"{owner} requires {name}, which is not installed here") from exc


def pinned_requirements(package: str = PACKAGE) -> list[str]:
    """The package's runtime requirements and their whole dependency closure, each pinned to the version installed
    here: the image installs exactly what the pipeline was tested with, with nothing left to the index's latest
    release (the package's own extras, e.g. ``dev``, are left out; the extras it asks of a dependency are followed)."""
    direct = [_requirement(raw, package) for raw in requires(package) or []]
    extras: dict[str, set[str]] = {}
    owners: dict[str, str] = {}
    pending = [(canonicalize_name(r.name), set(r.extras), package) for r in direct if _wanted(r, set())]
    while pending:
        name, asked, owner = pending.pop()
        known = extras.get(name)
        if known is not None and asked <= known:
            continue
        extras[name] = (known or set()) | asked
        owners.setdefault(name, owner)
        _installed_version(name, owner)
        for raw in requires(name) or []:
            dependency = _requirement(raw, name)
            if _wanted(dependency, extras[name]):
                pending.append((canonicalize_name(dependency.name), set(dependency.extras), name))
    return [f"{name}{_extras(extras[name])}=={_installed_version(name, owners[name])}" for name in sorted(extras)]


def _extras(extras: set[str]) -> str:
    return f"[{','.join(sorted(extras))}]" if extras else ""


def bentofile(labels: dict[str, str], packages: list[str], base_image: str = DEFAULT_BASE_IMAGE) -> dict[str, Any]:
    """The bentofile as a mapping; ``lock_packages: false`` because locking resolves against the index (offline),
    and the packages are pinned already. With ``docker.base_image`` BentoML ignores ``distro`` and ``python_version``
    (the base brings bookworm's Python 3.11, the pipeline's); the template keeps compilers out (see its comment)."""
    return {
        "service": SERVICE_IMPORT,
        "name": BENTO_NAME,
        "labels": labels,
        "include": INCLUDE,
        "exclude": EXCLUDE,
        "python": {"packages": packages, "lock_packages": False},
        "docker": {"base_image": base_image, "dockerfile_template": DOCKERFILE_TEMPLATE},
    }


def _run(command: list[str], env: dict[str, str], timeout_s: float, cwd: Path | None = None) -> str:
    what = " ".join(command[2:] if command[0] == sys.executable else command)
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BentoBuildError(f"{what} did not finish in {timeout_s:.0f}s") from exc
    except FileNotFoundError as exc:
        raise BentoBuildError(
            f"{command[0]} is not installed (apt-get install -y --no-install-recommends docker.io)"
        ) from exc
    if done.returncode != 0:
        output = done.stdout[-2000:] + done.stderr[-4000:]
        raise BentoBuildError(f"{what} exited {done.returncode}:\n{output}")
    return done.stdout


def _bentoml(
    args: list[str],
    store_dir: Path,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = BUILD_TIMEOUT_S,
) -> str:
    env = {**os.environ, "BENTOML_HOME": str(store_dir), "BENTOML_DO_NOT_TRACK": "true", **(extra_env or {})}
    return _run([sys.executable, "-m", "bentoml", *args], env, timeout_s, cwd)


def _size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def build_bento(
    build_ctx: Path, store_dir: Path, labels: dict[str, str], base_image: str = DEFAULT_BASE_IMAGE
) -> BuiltBento:
    """Build the bento from ``build_ctx`` (the directory that holds the ``mlops_assets`` package) into
    ``store_dir``, and check what BentoML generated: the Dockerfile, and an OpenAPI schema with both predict routes."""
    if not (build_ctx / PACKAGE / "__init__.py").is_file():
        raise BentoBuildError(f"{build_ctx} does not hold the {PACKAGE} package; pass the directory above it")
    store_dir.mkdir(parents=True, exist_ok=True)
    spec = store_dir / "bentofile.json"
    # YAML is a superset of JSON: BentoML reads this file as its bentofile.yaml.
    write_bytes_atomic(spec, json.dumps(bentofile(labels, pinned_requirements(), base_image), indent=2).encode())
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


@dataclass(frozen=True)
class BuiltImage:
    reference: str  # repository:tag, as built in the engine
    image_id: str  # sha256:… of the image's configuration: the content digest the engine pins it by
    repo_digest: str | None  # registry/repository@sha256:… of the pushed manifest (what a pod pins), if pushed
    size_bytes: int
    base_image: str
    base_image_id: str


def _docker(args: list[str], docker_host: str, timeout_s: float = 120) -> str:
    return _run(["docker", *args], {**os.environ, "DOCKER_HOST": docker_host}, timeout_s)


def _inspect_image(reference: str, docker_host: str) -> dict[str, Any] | None:
    try:
        return json.loads(_docker(["image", "inspect", reference], docker_host))[0]
    except BentoBuildError:
        return None


def check_engine(docker_host: str, base_image: str) -> dict[str, Any]:
    """The engine answers at ``docker_host`` and holds ``base_image``; returns the base image's inspection. Each
    failure says which script fixes it."""
    if not docker_host:
        raise BentoBuildError(
            "no Docker engine is configured: start one with `deploy/docker-engine.sh start DIR` and set "
            "MLOPS_DOCKER_HOST to the DOCKER_HOST it prints"
        )
    try:
        _docker(["version", "--format", "{{.Server.Version}}"], docker_host, timeout_s=30)
    except BentoBuildError as exc:
        raise BentoBuildError(
            f"no Docker engine answers at {docker_host}: start it with `deploy/docker-engine.sh start DIR`\n{exc}"
        ) from exc
    base = _inspect_image(base_image, docker_host)
    if base is None:
        raise BentoBuildError(
            f"the engine at {docker_host} has no base image {base_image!r}: build it with "
            f"`DOCKER_HOST={docker_host} deploy/base-image.sh {base_image}`"
        )
    return base


def image_reference(repository: str, bento_tag: str) -> str:
    """The image's name: the repository, tagged with the bento's version (unique per build)."""
    return f"{repository}:{bento_tag.split(':', 1)[1]}"


def ensure_bento(tag: str, store_dir: Path, archive: str) -> None:
    """Import the bento from its exported ``archive`` when this store lacks it (another pod or machine built it)."""
    try:
        _bentoml(["get", tag, "--output", "json"], store_dir)
    except BentoBuildError:
        _bentoml(["import", archive], store_dir)


def containerize_bento(
    tag: str, store_dir: Path, docker_host: str, repository: str, base_image: str, registry: str = ""
) -> BuiltImage:
    """Build the bento's image with ``bentoml containerize`` (classic builder, ``--network host``) on the engine at
    ``docker_host``, and read its digest back; with ``registry`` (``host:port``), push it there and return the
    manifest digest the registry assigned, so a Deployment can pin ``registry/repository@sha256:…``."""
    base = check_engine(docker_host, base_image)
    reference = image_reference(repository, tag)
    iidfile = store_dir / "images" / f"{tag.replace(':', '-')}.iid"
    iidfile.parent.mkdir(parents=True, exist_ok=True)
    iidfile.unlink(missing_ok=True)
    # BentoML renders a dockerfile_template only from inside its working directory, and it copies the bento into a
    # fresh temp dir first: so that temp dir is made under the working directory (TMPDIR).
    scratch = store_dir / "containerize"
    scratch.mkdir(parents=True, exist_ok=True)
    # --network host: the build's uv reaches the package index as this machine does (there is no bridge).
    build = ["containerize", tag, "--backend", "docker", "--image-tag", reference, "--opt", "network=host"]
    _bentoml(
        [*build, "--opt", f"iidfile={iidfile}"],
        store_dir,
        cwd=scratch,
        extra_env={"DOCKER_HOST": docker_host, "DOCKER_BUILDKIT": "0", "TMPDIR": str(scratch)},
        timeout_s=CONTAINERIZE_TIMEOUT_S,
    )
    built = _inspect_image(reference, docker_host)
    if built is None or not iidfile.is_file() or built["Id"] != iidfile.read_text().strip():
        raise BentoBuildError(f"bentoml containerize {tag} finished but {reference} is not the image it built")
    repo_digest = push_image(reference, registry, docker_host) if registry else None
    return BuiltImage(reference, built["Id"], repo_digest, int(built["Size"]), base_image, base["Id"])


def push_image(reference: str, registry: str, docker_host: str) -> str:
    """Push ``reference`` to ``registry`` and return ``registry/repository@sha256:…`` as the engine recorded it."""
    remote = f"{registry.rstrip('/')}/{reference}"
    _docker(["tag", reference, remote], docker_host)
    _docker(["push", remote], docker_host, timeout_s=CONTAINERIZE_TIMEOUT_S)
    repository = remote.rsplit(":", 1)[0]
    pushed = _inspect_image(remote, docker_host) or {}
    digests = [d for d in pushed.get("RepoDigests") or [] if d.startswith(f"{repository}@sha256:")]
    if not digests:
        raise BentoBuildError(f"pushed {remote} but the engine recorded no digest for {repository}")
    return digests[0]
