#!/usr/bin/env bash
# Installs everything the tests need (project from uv.lock; Redis, PostgreSQL, Ceph and Chromium from apt when missing; deploy
# validation tools) and runs the whole suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
# Real servers for the integration tests (each started on 127.0.0.1 by the tests and stopped by PID).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# Debian's Chromium for the UI test (Playwright drives /usr/bin/chromium; no browser download).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Debian's Docker engine, debootstrap and registry for the serving-image test (deploy/docker-engine.sh, base-image.sh).
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
# Ceph (one monitor, one memstore OSD, RGW): the real S3 server of the production test (mlops_assets_tests/servers.py).
command -v radosgw >/dev/null 2>&1 || missing+=(ceph-mon ceph-osd radosgw ceph-common)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]} (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -x deploy/install-validation-tools.sh ] || [ -f deploy/install-validation-tools.sh ]; then
  bash deploy/install-validation-tools.sh
fi
ruff check mlops_assets mlops_assets_tests benchmarks
ruff format --check mlops_assets mlops_assets_tests benchmarks
set +e
python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
