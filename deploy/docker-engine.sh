#!/usr/bin/env bash
# A private Docker engine (Debian's docker.io) for building and running the serving image on a machine without one:
#   deploy/docker-engine.sh start DIR   starts dockerd with its socket, data-root, exec-root and pidfile under DIR,
#                                       waits until it answers and prints DOCKER_HOST=unix://DIR/docker.sock
#   deploy/docker-engine.sh stop DIR    stops that dockerd by its PID (it stops its containers and containerd first)
#   deploy/docker-engine.sh status DIR  prints DOCKER_HOST and exits 0 when it runs, exits 3 when it does not
# Both start and stop are idempotent. The engine touches nothing outside DIR: no iptables rules, no bridge, no IP
# forwarding (containers use --network host), its own daemon.json, so it runs beside any other engine on the machine.
# Needs root and: apt-get install -y --no-install-recommends docker.io
set -euo pipefail

START_TIMEOUT_S="${MLOPS_DOCKER_START_TIMEOUT_S:-60}"
STOP_TIMEOUT_S=30
UNIX_SOCKET_MAX=107 # sun_path is 108 bytes with its terminating NUL

die() {
  echo "docker-engine.sh: $*" >&2
  exit 1
}

usage() {
  die "usage: deploy/docker-engine.sh start|stop|status DIR (DIR holds the socket, data-root and pidfile)"
}

[ "$#" -eq 2 ] || usage
action="$1"
dir="$(realpath -m "$2")"
socket="$dir/docker.sock"
pidfile="$dir/dockerd.pid"
log="$dir/dockerd.log"
docker_host="unix://$socket"

# The PID of our dockerd, or nothing: the pidfile must name a live process that is a dockerd (a stale file after a
# reboot may name an unrelated process, which must never be signalled).
engine_pid() {
  [ -s "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "dockerd" ]; then
    echo "$pid"
  fi
}

answers() {
  DOCKER_HOST="$docker_host" docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start() {
  [ "$(id -u)" -eq 0 ] || die "dockerd needs root; run it as root (sudo deploy/docker-engine.sh start $dir)"
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 ||
    die "dockerd not found: apt-get install -y --no-install-recommends docker.io"
  [ "${#socket}" -le "$UNIX_SOCKET_MAX" ] ||
    die "socket path $socket is longer than $UNIX_SOCKET_MAX bytes; pass a shorter DIR"
  local pid
  pid="$(engine_pid)"
  if [ -n "$pid" ]; then
    answers || die "dockerd (PID $pid) runs but does not answer on $socket; see $log"
    echo "DOCKER_HOST=$docker_host"
    return 0
  fi
  mkdir -p "$dir/data" "$dir/exec"
  # Its own (empty) daemon.json: /etc/docker/daemon.json, if any, belongs to the machine's engine.
  [ -f "$dir/daemon.json" ] || echo '{}' >"$dir/daemon.json"
  rm -f "$pidfile" "$socket"
  # Its own session and no inherited descriptors, so the caller (a test's subprocess.run) returns at once.
  setsid dockerd \
    --host "$docker_host" \
    --data-root "$dir/data" \
    --exec-root "$dir/exec" \
    --pidfile "$pidfile" \
    --config-file "$dir/daemon.json" \
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none --userland-proxy=false \
    </dev/null >>"$log" 2>&1 &
  local launched=$! deadline=$((SECONDS + START_TIMEOUT_S))
  until answers; do
    if ! kill -0 "$launched" 2>/dev/null; then
      tail -n 30 "$log" >&2
      die "dockerd exited while starting (log above, full log $log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$log" >&2
      kill -TERM "$launched" 2>/dev/null || true
      die "dockerd did not answer on $socket within ${START_TIMEOUT_S}s (log above)"
    fi
    sleep 0.2
  done
  echo "DOCKER_HOST=$docker_host"
}

stop() {
  local pid
  pid="$(engine_pid)"
  if [ -z "$pid" ]; then
    echo "no dockerd runs for $dir"
    return 0
  fi
  # Its children (the managed containerd) are listed first: dockerd stops them on a clean exit, not after a SIGKILL.
  local children
  children="$(pgrep -P "$pid" || true)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  while [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "dockerd" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "dockerd (PID $pid) still runs after ${STOP_TIMEOUT_S}s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for child in $children; do
        kill -KILL "$child" 2>/dev/null || true
      done
      break
    fi
    sleep 0.2
  done
  echo "stopped dockerd (PID $pid)"
}

status() {
  local pid
  pid="$(engine_pid)"
  if [ -n "$pid" ] && answers; then
    echo "DOCKER_HOST=$docker_host"
    return 0
  fi
  echo "no dockerd answers for $dir" >&2
  return 3
}

case "$action" in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
