#!/usr/bin/env bash
# Make sure a working Docker engine with the buildx and compose CLI plugins is present.
# Where `docker info` already works (Docker Desktop, docker-ce, a running engine) nothing is changed
# except adding a missing plugin. Otherwise, on a Debian-like host as root, Debian's docker.io engine
# is installed and started in the background. Thin glue around apt-get and dockerd.
set -euo pipefail

log() { printf 'bootstrap-docker: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Debian suite that carries CLI plugins recent enough for the 28.x docker client (buildx >= 0.13).
PLUGIN_SUITE="${MLRT_PLUGIN_SUITE:-trixie}"
DEBIAN_MIRROR="${MLRT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_LOG="${MLRT_DOCKERD_LOG:-/var/log/mlrt-dockerd.log}"

need_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root. Re-run as root (sudo make ...) or install Docker yourself: https://docs.docker.com/engine/install/"
  command -v apt-get >/dev/null || die "$1 needs a Debian-like host (apt-get). Install Docker with buildx and compose yourself, then re-run."
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_ok() { timeout 20 docker info >/dev/null 2>&1; }

start_dockerd() {
  log "starting dockerd in the background (log: $DOCKERD_LOG)"
  # Let containers reach the outside world and each other even when another tool set FORWARD to DROP.
  sysctl -qw net.ipv4.ip_forward=1 || true
  setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    engine_ok && return 0
    sleep 1
  done
  tail -n 30 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not come up within 60 s; see $DOCKERD_LOG"
}

# Install one CLI plugin from the Debian suite $PLUGIN_SUITE without adding that suite to the host's apt
# sources: download the .deb with a private package list and unpack only the plugin binary.
install_plugin() {
  local pkg="$1" plugin="$2"
  need_root "installing the docker $plugin plugin"
  command -v dpkg-deb >/dev/null || die "dpkg-deb missing"
  local tmp; tmp="$(mktemp -d)"
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
  printf 'deb %s %s main\n' "$DEBIAN_MIRROR" "$PLUGIN_SUITE" >"$tmp/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives" -o APT::Sandbox::User=root -qq)
  apt-get "${opts[@]}" update
  (cd "$tmp" && chmod 0755 "$tmp" && apt-get "${opts[@]}" download "$pkg")
  dpkg-deb -x "$tmp"/"${pkg}"_*.deb "$tmp/root"
  local bin; bin="$(find "$tmp/root" -type f -path "*/cli-plugins/docker-$plugin" | head -n1)"
  [ -n "$bin" ] || die "package $pkg ($PLUGIN_SUITE) has no docker-$plugin binary"
  install -D -m 0755 "$bin" "/usr/local/lib/docker/cli-plugins/docker-$plugin"
  rm -rf "$tmp"
  log "installed docker $plugin plugin from $pkg ($PLUGIN_SUITE): $(docker "$plugin" version 2>/dev/null | head -n1)"
}

if ! command -v docker >/dev/null; then
  need_root "installing Docker"
  log "no docker client; installing Debian's docker.io"
  apt_install docker.io iptables ca-certificates
fi

if ! engine_ok; then
  if ! command -v dockerd >/dev/null; then
    need_root "installing the Docker engine"
    log "no Docker engine; installing Debian's docker.io"
    apt_install docker.io iptables ca-certificates
  fi
  need_root "starting dockerd"
  pgrep -x dockerd >/dev/null && die "dockerd is running but not answering; see $DOCKERD_LOG or stop it"
  start_dockerd
fi

docker buildx version >/dev/null 2>&1 || install_plugin docker-buildx buildx
docker compose version >/dev/null 2>&1 || install_plugin docker-compose compose

log "engine $(docker version -f '{{.Server.Version}}'), $(docker buildx version | head -n1), $(docker compose version | head -n1)"
