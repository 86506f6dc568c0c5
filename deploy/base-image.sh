#!/usr/bin/env bash
# The serving image's base, made from Debian packages because no image registry is reachable here:
#   DOCKER_HOST=unix://DIR/docker.sock deploy/base-image.sh [TAG]     (default TAG: mlops-assets/bookworm-python:3.11)
# debootstrap --variant=minbase bookworm with python3 (bookworm's 3.11, the pipeline's Python), libgomp1 (LightGBM's
# OpenMP runtime) and ca-certificates, plus uv (the installer BentoML's generated Dockerfile calls), imported with
# `docker import`. Skipped when TAG already exists in that engine (MLOPS_BASE_IMAGE_REBUILD=1 rebuilds it).
#
# The package index: `docker build --network host` lets the image's uv reach the same index as this machine. When the
# machine reaches it through a TLS-intercepting egress proxy, the proxy's CA must be trusted inside the build too, so
# the CAs this machine added locally (MLOPS_BASE_EXTRA_CA_DIR, default /usr/local/share/ca-certificates) are installed
# into the image's trust store. Set MLOPS_BASE_EXTRA_CA_DIR=none to build with Debian's CAs only.
# Needs root, an engine (deploy/docker-engine.sh start DIR) and: apt-get install -y --no-install-recommends debootstrap
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TAG="${1:-mlops-assets/bookworm-python:3.11}"
SUITE=bookworm
PACKAGES=python3,libgomp1,ca-certificates
MIRROR="${MLOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
EXTRA_CA_DIR="${MLOPS_BASE_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
UV_BIN="${MLOPS_UV_BIN:-$(command -v uv || echo .venv/bin/uv)}"

die() {
  echo "base-image.sh: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root; run it as root"
[ -n "${DOCKER_HOST:-}" ] || die "DOCKER_HOST is not set: start an engine with deploy/docker-engine.sh start DIR and export what it prints"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found: apt-get install -y --no-install-recommends debootstrap"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST"
[ -x "$UV_BIN" ] || die "uv not found (looked for $UV_BIN): source scripts/setup.sh, or set MLOPS_UV_BIN"

if [ "${MLOPS_BASE_IMAGE_REBUILD:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "base image $TAG exists ($(docker image inspect --format '{{.Id}}' "$TAG")): skipped"
  exit 0
fi

started=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "==> debootstrap --variant=minbase $SUITE ($PACKAGES) from $MIRROR"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  die "debootstrap failed (log above)"
}

if [ "$EXTRA_CA_DIR" != none ] && compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
  cp "$EXTRA_CA_DIR"/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
  echo "==> trusted the local CAs of $EXTRA_CA_DIR: $(cd "$EXTRA_CA_DIR" && echo *.crt)"
fi
install -m 0755 "$UV_BIN" "$rootfs/usr/local/bin/uv"
# The package caches and indexes are not part of the image (debootstrap leaves the .debs it installed).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/* "$rootfs"/var/log/*.log

echo "==> docker import $TAG"
tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV UV_NO_CACHE=1' \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase $SUITE $PACKAGES + $("$UV_BIN" --version)" \
  - "$TAG" >/dev/null
size="$(docker image inspect --format '{{.Size}}' "$TAG")"
echo "base image $TAG: $(docker image inspect --format '{{.Id}}' "$TAG"), $((size / 1000000)) MB, built in $((SECONDS - started)) s"
