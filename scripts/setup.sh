#!/usr/bin/env bash
# Installs the project into .venv (idempotent) and prepares the dbt manifest. Sourced by main.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON_BIN="${PYTHON_BIN:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.5"
.venv/bin/uv pip install --quiet --python .venv/bin/python -e '.[dev]'
export PATH="$PWD/.venv/bin:$PATH"
# Telemetry of every component stays off; nothing leaves the machine.
export FEAST_USAGE=False RAY_USAGE_STATS_ENABLED=0 WHYLOGS_NO_ANALYTICS=1 BENTOML_DO_NOT_TRACK=true \
  DO_NOT_TRACK=1 DAGSTER_DISABLE_TELEMETRY=1
# The manifest is built from the current models, never committed.
dagster-dbt project prepare-and-package --file mlops_assets/defs/transform/project.py >/dev/null
