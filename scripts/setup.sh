#!/usr/bin/env bash
# Installs the project into .venv (idempotent) and prepares the dbt manifest. Sourced by main.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON_BIN="${PYTHON_BIN:-python3}"
UV_VERSION=0.13.9  # the same pin as the dev extra in pyproject.toml (so `uv sync` keeps it) and deploy/Dockerfile
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
if [ "$(.venv/bin/uv --version 2>/dev/null)" != "uv $UV_VERSION" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
# Exactly the versions in uv.lock (the project editable, with the dev extra); --locked fails when pyproject.toml changed
# without `uv lock`. Bytecode is compiled once at install: every dbt step is a fresh Python process, and importing
# dagster and dbt from source (no .pyc, e.g. with PYTHONDONTWRITEBYTECODE set) costs seconds each time.
UV_PROJECT_ENVIRONMENT="$PWD/.venv" .venv/bin/uv sync --quiet --locked --extra dev --compile-bytecode \
  --python .venv/bin/python
# As `source .venv/bin/activate` would: `dg` checks that the active environment is the project's .venv.
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
# Telemetry of every component stays off; nothing leaves the machine.
export FEAST_USAGE=False RAY_USAGE_STATS_ENABLED=0 WHYLOGS_NO_ANALYTICS=1 BENTOML_DO_NOT_TRACK=true \
  DO_NOT_TRACK=1 DAGSTER_DISABLE_TELEMETRY=1
# The warehouse's DuckDB extensions, from their wheels into the environment (once; lib/warehouse.py).
python -c "from mlops_assets.lib.warehouse import ensure_extensions; \
from mlops_assets.settings import DEFAULT_DUCKDB_EXTENSION_DIR; ensure_extensions(DEFAULT_DUCKDB_EXTENSION_DIR)"
# The manifest is built from the current models, never committed.
dagster-dbt project prepare-and-package --file mlops_assets/defs/transform/project.py >/dev/null
