#!/usr/bin/env bash
# Build the Go tools the project uses, at the versions in versions.env, with `go install` into .cache/tools/bin
# (skipped when the right version is already there). Thin glue around the Go toolchain.
#   install-go-tools.sh                  helm, kustomize and kubeconform (make k8s-tools)
#   install-go-tools.sh rclone ...       the named tools (rclone: the objectstore image's S3 server)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck disable=SC1091
source <(grep -E '^((HELM|KUSTOMIZE|KUBECONFORM|RCLONE)_VERSION|GO_TOOLCHAIN)=' "$root/versions.env")
bin="$root/.cache/tools/bin"
mkdir -p "$bin"
export GOBIN="$bin" GOFLAGS=-mod=mod CGO_ENABLED=0

if ! command -v go >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-go-tools: no Go toolchain; installing Debian's golang-go" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
  else
    echo "install-go-tools: ERROR: Go is needed to build $*; install Go >= 1.24" >&2
    exit 1
  fi
fi
# The pinned toolchain, whatever Go the host has (Go fetches it from the module proxy): reproducible binaries.
export GOTOOLCHAIN="$GO_TOOLCHAIN"

stamp() { cat "$bin/.$1.version" 2>/dev/null || true; }
build() {  # name version package
  if [ -x "$bin/$1" ] && [ "$(stamp "$1")" = "$2" ]; then return; fi
  echo "install-go-tools: go install $3@$2" >&2
  # No symbol tables or build paths in the binaries (smaller, reproducible).
  go install -trimpath -ldflags='-s -w' "$3@$2"
  echo "$2" >"$bin/.$1.version"
}
[ $# -gt 0 ] || set -- helm kustomize kubeconform
for tool in "$@"; do
  case "$tool" in
    helm) build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
    kustomize) build kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5 ;;
    kubeconform) build kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform ;;
    rclone) build rclone "$RCLONE_VERSION" github.com/rclone/rclone ;;
    *) echo "install-go-tools: ERROR: unknown tool $tool (known: helm kustomize kubeconform rclone)" >&2; exit 64 ;;
  esac
done
