#!/usr/bin/env bash
# Builds the real servers the tests run against (kube-apiserver, etcd, Vault) from the Go module
# proxy, using the wrapper modules beside this script (their go.mod/go.sum are committed, so the
# versions are pinned). Binaries are cached outside the checkout and rebuilt only when missing.
#
#   hack/tools/build.sh envtest   -> $WARDEN_CACHE/k8s-v1.37.2/{kube-apiserver,etcd}
#   hack/tools/build.sh vault     -> $WARDEN_CACHE/vault-v1.14.1/vault
#   hack/tools/build.sh kubelet   -> $WARDEN_CACHE/k8s-v1.37.2/kubelet   (the real-node suite)
#   hack/tools/build.sh staticcheck -> $WARDEN_CACHE/staticcheck-v0.8.2/staticcheck   (make lint)
#
# Cold builds take 10-20 minutes each on 2 cores; warm runs return at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${WARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/warden}
export GOFLAGS=-buildvcs=false

K8S_VERSION=v1.37.2
VAULT_VERSION=v1.14.1

# build MODULE_DIR OUT PKG [LDFLAGS]: atomically produce OUT (a crashed build never leaves a
# half-written binary that the next run would trust). A lock per output makes a second caller
# (parallel make targets, a second checkout sharing the cache) wait for the first build instead
# of writing the same temporary file.
build() {
  local dir=$1 out=$2 pkg=$3 ldflags=${4:-"-s -w"}
  if [ -x "$out" ]; then echo "cached: $out"; return; fi
  mkdir -p "$(dirname "$out")"
  local lock
  exec {lock}>"$out.lock"
  flock "$lock"
  if [ -x "$out" ]; then echo "cached: $out (built by another caller)"; exec {lock}>&-; return; fi
  echo "building $pkg -> $out (first time only; this takes a while)"
  (cd "$dir" && go mod download && CGO_ENABLED=${CGO:-0} go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  exec {lock}>&-
}

K8S_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"

envtest() {
  local dst=$cache/k8s-$K8S_VERSION
  build "$here/kube-apiserver" "$dst/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$K8S_LDFLAGS"
  build "$here/etcd" "$dst/etcd" go.etcd.io/etcd/server/v3
  echo "$dst"
}

vault() {
  # Built exactly as the verified recipe does (cgo as the machine has it); go.mod pins the sdk
  # to the v1.14.1 tag commit, which the published sdk tags do not match.
  CGO=1 build "$here/vault" "$cache/vault-$VAULT_VERSION/vault" github.com/hashicorp/vault
  echo "$cache/vault-$VAULT_VERSION"
}

kubelet() {
  # Same wrapper-module trick as the apiserver (replace k8s.io/X => k8s.io/X v0.37.2); the
  # real-node suite runs it next to the envtest apiserver with Debian's containerd and runc.
  build "$here/kubelet" "$cache/k8s-$K8S_VERSION/kubelet" k8s.io/kubernetes/cmd/kubelet "$K8S_LDFLAGS"
  echo "$cache/k8s-$K8S_VERSION/kubelet"
}

staticcheck() {
  build "$here/staticcheck" "$cache/staticcheck-v0.8.2/staticcheck" honnef.co/go/tools/cmd/staticcheck
  echo "$cache/staticcheck-v0.8.2/staticcheck"
}

controller_gen() {
  build "$here/controller-gen" "$cache/controller-gen-v0.23.0/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen
}

case "${1:-}" in
  envtest) envtest ;;
  vault) vault ;;
  kubelet) kubelet ;;
  controller-gen) controller_gen ;;
  staticcheck) staticcheck ;;
  path-controller-gen) echo "$cache/controller-gen-v0.23.0/controller-gen" ;;
  path-kubelet) echo "$cache/k8s-$K8S_VERSION/kubelet" ;;
  path-staticcheck) echo "$cache/staticcheck-v0.8.2/staticcheck" ;;
  path-envtest) echo "$cache/k8s-$K8S_VERSION" ;;
  path-vault) echo "$cache/vault-$VAULT_VERSION/vault" ;;
  *) echo "usage: $0 envtest|vault|kubelet|controller-gen|staticcheck|path-envtest|path-staticcheck|path-vault|path-kubelet" >&2; exit 2 ;;
esac
