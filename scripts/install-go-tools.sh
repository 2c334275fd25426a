#!/usr/bin/env bash
# Build helm, kustomize and kubeconform at the versions in versions.env with `go install` into .cache/tools/bin
# (skipped when the right version is already there). Thin glue around the Go toolchain.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck disable=SC1091
source <(grep -E '^(HELM|KUSTOMIZE|KUBECONFORM)_VERSION=' "$root/versions.env")
bin="$root/.cache/tools/bin"
mkdir -p "$bin"
export GOBIN="$bin" GOFLAGS=-mod=mod CGO_ENABLED=0

if ! command -v go >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-k8s-tools: no Go toolchain; installing Debian's golang-go" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
  else
    echo "install-k8s-tools: ERROR: Go is needed to build helm/kustomize/kubeconform; install Go >= 1.24" >&2
    exit 1
  fi
fi
# Debian's older Go fetches a newer toolchain from the module proxy when a module asks for one.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

stamp() { cat "$bin/.$1.version" 2>/dev/null || true; }
build() {  # name version package
  if [ -x "$bin/$1" ] && [ "$(stamp "$1")" = "$2" ]; then return; fi
  echo "install-k8s-tools: go install $3@$2" >&2
  go install "$3@$2"
  echo "$2" >"$bin/.$1.version"
}
build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
build kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5
build kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform
