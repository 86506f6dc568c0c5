#!/usr/bin/env bash
# Builds the code-location image (deploy/Dockerfile) on a local engine with the classic builder:
#   DOCKER_HOST=unix://DIR/docker.sock deploy/build-code-image.sh [TAG]   (default TAG: mlops-assets/code-location:<sha>)
# FROM the Debian base of deploy/base-image.sh (MLOPS_BASE_IMAGE), `--network host` so uv and apt reach the package
# sources as this machine does, and the commit passed as GIT_SHA (with -dirty when the tree has uncommitted changes).
#
# The classic builder reads only a .dockerignore at the context's root, not deploy/Dockerfile.dockerignore, so the
# context is streamed as a tar of the same allow-list instead: the files git tracks or would track (ignored files such
# as .venv, data and dbt's target/ stay out) under the paths that allow-list admits.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BASE="${MLOPS_BASE_IMAGE:-mlops-assets/bookworm-python:3.11}"
CONTEXT_PATHS=(pyproject.toml uv.lock README.md mlops_assets dbt_project deploy/Dockerfile)

die() {
  echo "build-code-image.sh: $*" >&2
  exit 1
}

[ -n "${DOCKER_HOST:-}" ] || die "DOCKER_HOST is not set: start an engine with deploy/docker-engine.sh start DIR"
docker image inspect "$BASE" >/dev/null 2>&1 || die "no base image $BASE at $DOCKER_HOST: run deploy/base-image.sh"
sha="$(git rev-parse HEAD)"
git diff --quiet HEAD -- "${CONTEXT_PATHS[@]}" || sha="$sha-dirty"
TAG="${1:-mlops-assets/code-location:${sha:0:12}}"

started=$SECONDS
git ls-files -z --cached --others --exclude-standard -- "${CONTEXT_PATHS[@]}" |
  tar --null --files-from=- --ignore-failed-read --create --file=- 2>/dev/null |
  DOCKER_BUILDKIT=0 docker build --network host --file deploy/Dockerfile \
    --build-arg PYTHON_IMAGE="$BASE" --build-arg GIT_SHA="$sha" --tag "$TAG" -
size="$(docker image inspect --format '{{.Size}}' "$TAG")"
echo "code-location image $TAG: $(docker image inspect --format '{{.Id}}' "$TAG"), $((size / 1000000)) MB, GIT_SHA=$sha, built in $((SECONDS - started)) s"
