#!/usr/bin/env bash
# Build the Go tools the project uses, at the versions in versions.env, with `go install` into one cache per user
# shared by every clone (MLRT_TOOLS_DIR, else $XDG_CACHE_HOME/mlrt/tools, else ~/.cache/mlrt/tools: tooling/versions.py
# TOOLS_BIN), skipped when the right version is already there. Thin glue around the Go toolchain.
#   install-go-tools.sh                  helm, kustomize and kubeconform (make k8s-tools)
#   install-go-tools.sh rclone ...       the named tools (rclone: the objectstore image's S3 server; syft: SBOMs;
#                                        kube-network-policies: NetworkPolicy enforcement in the test cluster;
#                                        registry: the container registry `make push` is tested against)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck disable=SC1091
source <(grep -E '^((HELM|KUSTOMIZE|KUBECONFORM|RCLONE|SYFT|KUBE_NETWORK_POLICIES|REGISTRY)_VERSION|GO_TOOLCHAIN)=' "$root/versions.env")
bin="${MLRT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlrt/tools}/bin"
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
current() { [ -x "$bin/$1" ] && [ "$(stamp "$1")" = "$2" ]; }  # name stamp: built as the stamp says already
mod_field() {  # module@version field: a field of `go mod download -json` (GoMod: its go.mod file, Dir: its source)
  go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p"
}
build() {  # name version package [extra ldflags]
  # No symbol tables or build paths in the binaries (smaller, reproducible).
  local ldflags="-s -w${4:+ $4}"
  if current "$1" "$2 $ldflags"; then return; fi
  echo "install-go-tools: go install -ldflags='$ldflags' $3@$2" >&2
  go install -trimpath -ldflags="$ldflags" "$3@$2"
  # go install names the binary after the package path's last element, less a /vN suffix (kube-network-policies/cmd:
  # "cmd"; kustomize/v5: "kustomize").
  if [ "$(basename "$3")" != "$1" ] && [ -e "$bin/$(basename "$3")" ]; then mv -f "$bin/$(basename "$3")" "$bin/$1"; fi
  echo "$2 $ldflags" >"$bin/.$1.version"
}
build_patched() {  # name version module package patches-dir: the module's source with our patches applied
  # (a tool whose release lacks what the project needs: the patches' README says why and when to drop them)
  local ldflags="-s -w" sum stamp_value src dir
  sum=$(cat "$5"/*.patch | sha256sum | cut -c1-16)
  stamp_value="$2 $ldflags patches:$sum"
  if current "$1" "$stamp_value"; then return; fi
  src=$(mod_field "$3@$2" Dir)
  [ -d "$src" ] || { echo "install-go-tools: ERROR: go mod download $3@$2 gave no source" >&2; exit 1; }
  if ! command -v patch >/dev/null; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
      || { echo "install-go-tools: ERROR: building $1 needs patch(1); install it" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patch >/dev/null
  fi
  dir=$(mktemp -d)
  cp -r "$src/." "$dir/" && chmod -R u+w "$dir"
  for patch in "$5"/*.patch; do patch -d "$dir" -p1 --forward --quiet <"$patch"; done
  echo "install-go-tools: go build $3@$2 with $(cd "$5" && echo ./*.patch)" >&2
  (cd "$dir" && go build -trimpath -ldflags="$ldflags" -o "$bin/$1" "$4")
  rm -rf "$dir"
  echo "$stamp_value" >"$bin/.$1.version"
}
helm_ldflags() {  # what helm's own Makefile stamps into a release: its version, and the Kubernetes version of the
  # client-go it is built with (without them helm reports v3.19 and assumes Kubernetes v1.20 for `helm template`
  # and `helm lint`, so a chart's kubeVersion constraint fails)
  local gomod client_go minor
  gomod=$(mod_field "helm.sh/helm/v3@$1" GoMod)
  client_go=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")
  minor=$(echo "$client_go" | cut -d. -f2)
  [[ "$client_go" == v0.* && -n "$minor" ]] || { echo "install-go-tools: ERROR: no k8s.io/client-go in $gomod" >&2; exit 1; }
  local v=helm.sh/helm/v3/internal/version k8s="-X helm.sh/helm/v3/pkg/lint/rules.k8sVersion"
  echo "-X $v.version=$1 -X $v.metadata= ${k8s}Major=1 ${k8s}Minor=$minor" \
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
}
[ $# -gt 0 ] || set -- helm kustomize kubeconform
for tool in "$@"; do
  case "$tool" in
    helm) build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$(helm_ldflags "$HELM_VERSION")" ;;
    kustomize) build kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5 ;;
    kubeconform) build kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform ;;
    rclone) build rclone "$RCLONE_VERSION" github.com/rclone/rclone ;;
    registry) build registry "$REGISTRY_VERSION" github.com/distribution/distribution/v3/cmd/registry ;;
    # syft reports its own version in every SBOM (creationInfo): stamp it as its release does.
    syft) build syft "$SYFT_VERSION" github.com/anchore/syft/cmd/syft "-X main.version=${SYFT_VERSION#v}" ;;
    # the test cluster's NetworkPolicy agent, with an iptables NFQUEUE fallback for kernels whose nf_tables lacks
    # the queue expression (tests/k8s_cluster/kube-network-policies/README.md)
    kube-network-policies)
      build_patched kube-network-policies "$KUBE_NETWORK_POLICIES_VERSION" sigs.k8s.io/kube-network-policies ./cmd \
        "$root/tests/k8s_cluster/kube-network-policies" ;;
    *) echo "install-go-tools: ERROR: unknown tool $tool (known: helm kustomize kubeconform rclone syft" \
         "kube-network-policies registry)" >&2; exit 64 ;;
  esac
done
