#!/usr/bin/env bash
# A real Docker engine, a small base image and a local registry for the container tests.
#
#   bash tests/docker/engine.sh up ENVFILE     # engine, image, registry; writes ENVFILE
#   bash tests/docker/engine.sh down ENVFILE   # stops what `up` started, by pid
#
# ENVFILE holds KEY=VALUE lines for `set -a; . ENVFILE`: DOCKER_HOST, GPUFLOW_TEST_IMAGE
# (the image in the registry, pulled as in production), GPUFLOW_TEST_GPU_HOOK (1 when the
# engine accepts GPU requests through the stand-in hook), and the pids `down` stops.
#
# Programs the tests run beside the engine are installed too when missing (as root, from
# Debian's packages): rsync and ssh for the renter's side, systemd-analyze for the units,
# Chromium and chromedriver for the marketplace page.
#
# An engine that already answers (DOCKER_HOST or the default socket) is used as it is.
# Otherwise, as root, Debian's docker.io is installed and dockerd started with the
# stand-in nvidia-container-runtime-hook on its PATH. The image is built from the Debian
# mirror apt uses (no Docker Hub here), cached outside the clone, so a second run takes
# seconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/gpuflow/docker"
# What the base image holds: an SSH server to log in to, python3 for workloads, procps,
# rsync for `gpuflow copy`.
packages="openssh-server,python3,procps,ca-certificates,rsync"

log() { echo "docker test engine: $*" >&2; }
die() { log "$*"; exit 1; }

# Polls `check` every 0.2 s for at most `seconds`.
wait_for() {
  local seconds="$1"; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

as_root_install() {
  [[ $(id -u) == 0 ]] || die "$1 is missing and only root can install it: apt-get install $2"
  log "installing $2"
  apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "$2" >/dev/null; } \
    || die "cannot install $2 with apt-get"
}

dockerd_has_hook() {
  local pid path dir
  pid="$(pgrep -x dockerd | head -n 1)" && [[ -n $pid ]] || return 1
  path="$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^PATH=//p')"
  [[ -n $path ]] || path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  local -a dirs
  IFS=: read -ra dirs <<< "$path"
  for dir in "${dirs[@]}"; do
    [[ -x "$dir/nvidia-container-runtime-hook" ]] && return 0
  done
  return 1
}

engine_up() {
  if docker info >/dev/null 2>&1; then
    log "using the engine that answers at ${DOCKER_HOST:-the default socket}"
    dockerd_pid="" gpu_hook=0
    # GPU requests work when dockerd found an nvidia-container-runtime-hook on its PATH:
    # the NVIDIA toolkit's, or the stand-in of an engine started by this script (from
    # this checkout or another) and not stopped.
    dockerd_has_hook && gpu_hook=1
    return
  fi
  [[ $(id -u) == 0 ]] || die "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-unset}) and only root can start one; start dockerd, or run as root"
  command -v dockerd >/dev/null || as_root_install dockerd docker.io
  command -v docker >/dev/null || as_root_install docker docker.io
  unset DOCKER_HOST
  mkdir -p "$cache"
  # dockerd registers the `nvidia` device driver only when this hook is on its PATH at
  # start; the stand-in lets GPU requests through on machines without GPUs.
  PATH="$here:$PATH" setsid dockerd --pidfile "$cache/dockerd.pid" >"$cache/dockerd.log" 2>&1 </dev/null &
  dockerd_pid=$!
  gpu_hook=1
  wait_for 60 docker info || die "dockerd did not answer within 60 s; its log: $cache/dockerd.log"
  log "started dockerd (pid $dockerd_pid)"
}

image_up() {
  local hash tar
  hash="$(printf '%s\n' "$packages" bookworm minbase sshd-dir host-keys | sha256sum | cut -c1-12)"
  tar="$cache/base-$hash.tar"
  image_tag="gpuflow-test/base:$hash"
  if [[ ! -f "$tar" ]]; then
    command -v mmdebstrap >/dev/null || as_root_install mmdebstrap mmdebstrap
    log "building the base image from the Debian mirror (once; cached in $cache)"
    mkdir -p "$cache"
    local start=$SECONDS
    # Into a temporary file first: an interrupted build never leaves a bad cache.
    mmdebstrap --quiet --variant=minbase --format=tar --include="$packages" \
      --customize-hook='mkdir -p "$1/run/sshd"' \
      --customize-hook='chroot "$1" ssh-keygen -A' \
      bookworm "$tar.partial" >/dev/null 2>"$cache/mmdebstrap.log" \
      || die "mmdebstrap failed; its log: $cache/mmdebstrap.log"
    mv "$tar.partial" "$tar"
    log "built the base image in $((SECONDS - start)) s"
  fi
  if ! docker image inspect "$image_tag" >/dev/null 2>&1; then
    docker import --change 'CMD ["/bin/sh"]' "$tar" "$image_tag" >/dev/null
  fi
}

registry_up() {
  command -v docker-registry >/dev/null || as_root_install docker-registry docker-registry
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  mkdir -p "$cache/registry"
  cat >"$cache/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $cache/registry
http:
  addr: 127.0.0.1:$port
EOF
  setsid docker-registry serve "$cache/registry.yml" >"$cache/registry.log" 2>&1 </dev/null &
  registry_pid=$!
  wait_for 30 curl -fsS "http://127.0.0.1:$port/v2/" \
    || die "the registry did not answer within 30 s; its log: $cache/registry.log"
  # 127.0.0.0/8 is an insecure registry by default: no TLS needed.
  test_image="127.0.0.1:$port/gpuflow/base:${image_tag#*:}"
  docker tag "$image_tag" "$test_image"
  docker push "$test_image" >/dev/null || die "pushing $test_image failed"
  # Only the registry's copy remains, so the agent's pull really pulls.
  docker rmi "$test_image" >/dev/null
  log "image $test_image in the registry (pid $registry_pid)"
}

# A failed `up` stops what it started: nothing is left for `down` to find.
abandon() {
  stop_pid "${registry_pid:-}" registry
  stop_pid "${dockerd_pid:-}" dockerd
}

up() {
  local env_file="$1"
  dockerd_pid="" registry_pid=""
  trap abandon EXIT
  engine_up
  # The renter's side of `gpuflow copy` and `gpuflow ssh`.
  command -v rsync >/dev/null || as_root_install rsync rsync
  command -v ssh >/dev/null || as_root_install ssh openssh-client
  # What checks the systemd units of deploy/systemd (it needs no running systemd).
  command -v systemd-analyze >/dev/null || as_root_install systemd-analyze systemd
  # What the marketplace page's browser test drives (tests/it/browser.rs).
  command -v chromium >/dev/null || as_root_install chromium chromium
  command -v chromedriver >/dev/null || as_root_install chromedriver chromium-driver
  image_up
  registry_up
  cat >"$env_file" <<EOF
DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
GPUFLOW_TEST_IMAGE=$test_image
GPUFLOW_TEST_GPU_HOOK=$gpu_hook
GPUFLOW_TEST_DOCKERD_PID=$dockerd_pid
GPUFLOW_TEST_REGISTRY_PID=$registry_pid
EOF
  trap - EXIT
}

stop_pid() {
  local pid="$1" what="$2"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  wait_for 30 bash -c "! kill -0 $pid" || { log "$what (pid $pid) ignored SIGTERM; killing it"; kill -KILL "$pid" || true; }
  log "stopped $what (pid $pid)"
}

down() {
  local env_file="$1"
  [[ -f "$env_file" ]] || return 0
  local GPUFLOW_TEST_REGISTRY_PID="" GPUFLOW_TEST_DOCKERD_PID=""
  # shellcheck disable=SC1090
  . "$env_file"
  stop_pid "$GPUFLOW_TEST_REGISTRY_PID" registry
  stop_pid "$GPUFLOW_TEST_DOCKERD_PID" dockerd
  rm -f "$env_file"
}

case "${1:-}" in
  up) [[ $# == 2 ]] || die "usage: $0 up ENVFILE"; up "$2" ;;
  down) [[ $# == 2 ]] || die "usage: $0 down ENVFILE"; down "$2" ;;
  *) die "usage: $0 up|down ENVFILE" ;;
esac
