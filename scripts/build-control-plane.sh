#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, KubeVela's controller (vela-core) and
# the vela CLI from their Go modules (no container runtime, no binary downloads here) — and, for
# the in-cluster mode's fake nodes (`fake-nodes`), kube-scheduler and kwok; on request
# (`argocd`), Argo CD; for a managed cluster (`cluster-gateway`), KubeVela's cluster-gateway — and caches them under ~/.cache/step-executor/<component>-<version>/.
# A cache directory is published by an atomic rename only after every binary in it built, so a
# half-built cache is never mistaken for a good one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
CACHE=${STEP_EXECUTOR_CACHE:-$HOME/.cache/step-executor}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
need_go() {
  command -v go >/dev/null || { echo "error: the Go toolchain is required (go 1.24+ on PATH) to build the control plane" >&2; exit 2; }
}

# build_component NAME VERSION FUNCTION: runs FUNCTION with $work (a scratch wrapper module)
# and $out (the staging bin dir), then publishes $out as $CACHE/NAME-VERSION.
build_component() {
  local name=$1 version=$2 fn=$3 dest="$CACHE/$1-$2"
  if [ -f "$dest/.complete" ]; then log "$name $version: cached in $dest"; return 0; fi
  need_go
  log "$name $version: building (cold builds take minutes; progress below)"
  local start=$SECONDS
  work=$(mktemp -d "${TMPDIR:-/tmp}/step-executor-build-$name.XXXXXX")
  out="$work/bin"; mkdir -p "$out" "$CACHE"
  ( cd "$work" && "$fn" )
  touch "$out/.complete"
  rm -rf "$dest" && mv "$out" "$dest"
  rm -rf "$work"
  log "$name $version: built in $((SECONDS - start)) s -> $dest"
}

build_etcd() {
  cat > go.mod <<GOMOD
module local/etcd-bin
go 1.25.0
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
tool go.etcd.io/etcd/server/v3
GOMOD
  log "etcd: resolving modules"; go mod tidy
  log "etcd: compiling"
  go build -trimpath -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

# kubernetes_build CMD...: a wrapper module requiring k8s.io/kubernetes with these commands as
# tools, its staging modules pinned; then `go build` of them.
kubernetes_build() {
  local minor staging cmd tools=""
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  staging="v0.${KUBERNETES_VERSION#v1.}"
  for cmd in "$@"; do tools="$tools	k8s.io/kubernetes/cmd/$cmd
"; done
  cat > go.mod <<GOMOD
module local/k8s-bins
go 1.24.0
godebug default=go1.24
require k8s.io/kubernetes $KUBERNETES_VERSION
tool (
$tools)
GOMOD
  # k8s.io/kubernetes requires its 31 staging modules at v0.0.0 and replaces them with local
  # paths; only the main module's replaces apply, so pin each to the matching release here.
  local m
  for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
    cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client \
    csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator \
    kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils \
    pod-security-admission sample-apiserver sample-cli-plugin sample-controller; do
    go mod edit -replace="k8s.io/$m=k8s.io/$m@$staging"
  done
  log "kubernetes: resolving modules"; go mod tidy
  local ldf="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  log "kubernetes: compiling $*"
  # The same flags for every component: packages they share come from Go's build cache.
  go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$ldf" -o "$out/" "${@/#/k8s.io/kubernetes/cmd/}"
}

build_kubernetes() { kubernetes_build kube-apiserver kube-controller-manager kubectl; }

# Fake nodes (scripts/control-plane fake-nodes): the scheduler places pods on kwok's nodes, and
# kwok plays their kubelets (pods become Running and Ready; nothing runs).
build_kube_scheduler() { kubernetes_build kube-scheduler; }

build_kwok() {
  cat > go.mod <<GOMOD
module local/kwok-bin
go 1.26.0
require sigs.k8s.io/kwok $KWOK_VERSION
tool sigs.k8s.io/kwok/cmd/kwok
GOMOD
  log "kwok: resolving modules"; go mod tidy
  log "kwok: compiling"
  go build -trimpath -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
  # kwokctl's default behaviour: nodes become Ready and keep their leases; pods become Ready,
  # complete, and go away when deleted. The stages ship in the module.
  local dir f
  dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    printf -- '---\n' >> "$out/stages.yaml"
    cat "$dir/kustomize/stage/$f.yaml" >> "$out/stages.yaml"
  done
  chmod -R u+w "$out"
}

build_kubevela() {
  cat > go.mod <<GOMOD
module local/kubevela-bins
go 1.23.8
require github.com/oam-dev/kubevela $KUBEVELA_VERSION
tool (
	github.com/oam-dev/kubevela/cmd/core
	github.com/oam-dev/kubevela/references/cmd/cli
)
replace (
	cloud.google.com/go => cloud.google.com/go v0.100.2
	github.com/docker/cli => github.com/docker/cli v24.0.9+incompatible
	github.com/docker/docker => github.com/docker/docker v28.3.3+incompatible
	github.com/docker/docker-credential-helpers => github.com/docker/docker-credential-helpers v0.7.0
	github.com/wercker/stern => github.com/oam-dev/stern v1.13.3-0.20250828063553-e1dd6271d131
	sigs.k8s.io/apiserver-network-proxy/konnectivity-client => sigs.k8s.io/apiserver-network-proxy/konnectivity-client v0.0.36
	sigs.k8s.io/apiserver-runtime => github.com/kmodules/apiserver-runtime v1.1.2-0.20250422194347-c5ac4abaf2ae
)
GOMOD
  # Seed go.sum from KubeVela's own: some of its replaced modules (kmodules/apiserver-runtime)
  # are not in the public checksum database, and its go.sum holds their verified hashes.
  local dir
  dir=$(go mod download -json "github.com/oam-dev/kubevela@$KUBEVELA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  cp "$dir/go.sum" go.sum && chmod u+w go.sum
  log "kubevela: resolving modules"; go mod tidy
  local ver="-X github.com/oam-dev/kubevela/version.VelaVersion=$KUBEVELA_VERSION"
  log "kubevela: compiling vela-core"
  go build -trimpath -ldflags="-s -w $ver" -o "$out/vela-core" github.com/oam-dev/kubevela/cmd/core
  log "kubevela: compiling the vela CLI"
  go build -trimpath -ldflags="-s -w $ver" -o "$out/vela" github.com/oam-dev/kubevela/references/cmd/cli
  # The CRDs and built-in definitions ship in the module; keep the ones we install beside the binaries.
  mkdir -p "$out/crds" "$out/definitions" "$out/velaql"
  cp "$dir"/charts/vela-core/crds/*.yaml "$out/crds/"
  # Query views behind `vela status --endpoint/--tree` and the endpoint list after `vela addon enable`.
  cp "$dir"/charts/vela-core/templates/velaql/*.yaml "$out/velaql/"
  cp "$dir"/charts/vela-core/templates/defwithtemplate/*.yaml "$out/definitions/"
  chmod -R u+w "$out"
}

# Argo CD (`argocd`, not part of `all`): one multi-call binary that dispatches on its name
# (argv[0]), so the application controller, repo server and CLI are symlinks to it.
build_argocd() {
  # Argo CD's go.mod requires a newer Go than the local one; the proxy serves that toolchain.
  export GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN
  local dir
  dir=$(go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "argocd: could not download github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION"; return 1; }
  cat > go.mod <<GOMOD
module local/argocd-bin
go 1.27.0
require (
	github.com/argoproj/argo-cd/v3 $ARGOCD_VERSION
	github.com/argoproj/argo-cd/gitops-engine/v3 $ARGOCD_VERSION
)
tool github.com/argoproj/argo-cd/v3/cmd
GOMOD
  # Only the main module's replaces apply: copy Argo CD's, except its local ./gitops-engine
  # (the released gitops-engine module at the same version, required above, stands in for it).
  local line old new oldv newv reps=()
  while read -r line; do
    old=${line%%=>*} new=${line#*=>}
    read -r old oldv <<<"$old"; read -r new newv <<<"$new"
    [ -n "$newv" ] || continue # a local path
    reps+=("-replace=$old${oldv:+@$oldv}=$new@$newv")
  done < <(awk '/^replace \($/ {b=1; next} b && /^\)/ {b=0; next} b {print; next} /^replace / {sub(/^replace /, ""); print}' "$dir/go.mod" | sed 's|//.*||' | grep '=>')
  [ ${#reps[@]} -eq 0 ] || go mod edit "${reps[@]}"
  # Seed go.sum from Argo CD's own (its verified hashes for the same modules).
  cp "$dir/go.sum" go.sum && chmod u+w go.sum
  log "argocd: resolving modules"; go mod tidy
  local p=github.com/argoproj/argo-cd/v3/common kubectl
  kubectl=$(go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' k8s.io/client-go)
  log "argocd: compiling (one binary, several minutes)"
  # Stamped as Argo CD's Makefile stamps a release, but without the git commit, which the module
  # proxy does not give (so `argocd version` says v3.6.2+unknown).
  go build -trimpath -ldflags="-s -w -X $p.version=${ARGOCD_VERSION#v} -X $p.gitTag=$ARGOCD_VERSION -X $p.gitTreeState=clean -X $p.kubectlVersion=$kubectl" \
    -o "$out/argocd-multicall" github.com/argoproj/argo-cd/v3/cmd
  local name
  for name in argocd argocd-application-controller argocd-repo-server; do ln -s argocd-multicall "$out/$name"; done
  # The repo server runs these from PATH (GPG verification); the CRDs ship in the module (its
  # crds/kustomization.yaml is left out: `kubectl apply -f crds/` would choke on it).
  cp "$dir/hack/git-verify-wrapper.sh" "$dir/hack/gpg-wrapper.sh" "$out/"
  mkdir -p "$out/crds"
  cp "$dir"/manifests/crds/*-crd.yaml "$out/crds/"
  chmod -R u+w "$out"
  chmod +x "$out/git-verify-wrapper.sh" "$out/gpg-wrapper.sh" # the module cache drops the x bit
}

# miniredis (`argocd`): the Redis Argo CD caches in, an in-memory Go implementation (an Argo CD
# dependency itself), so the tests need no Redis package. Built with the local Go.
build_miniredis() {
  export GOTOOLCHAIN=local
  cat > go.mod <<GOMOD
module local/miniredis-bin
go 1.22
require github.com/alicebob/miniredis/v2 $MINIREDIS_VERSION
GOMOD
  cat > main.go <<'GO'
// miniredis on a fixed address until SIGTERM/SIGINT.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/alicebob/miniredis/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "listen address")
	flag.Parse()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(*addr); err != nil {
		log.Fatal(err)
	}
	log.Printf("miniredis listening on %s", m.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	m.Close()
}
GO
  go mod tidy
  go build -trimpath -ldflags="-s -w" -o "$out/miniredis" .
}

# cluster-gateway (`cluster-gateway`, not part of `all`): KubeVela's aggregated API server that
# proxies the hub's requests to managed clusters. Its go.mod replaces three modules (copied here)
# and needs its own go.sum: kmodules/apiserver-runtime is not in the public checksum database.
build_cluster_gateway() {
  cat > go.mod <<GOMOD
module local/cluster-gateway-bin
go 1.23.8
require github.com/oam-dev/cluster-gateway $CLUSTER_GATEWAY_VERSION
tool github.com/oam-dev/cluster-gateway/cmd/apiserver
replace (
	cloud.google.com/go => cloud.google.com/go v0.100.2
	sigs.k8s.io/apiserver-network-proxy/konnectivity-client => sigs.k8s.io/apiserver-network-proxy/konnectivity-client v0.0.36
	sigs.k8s.io/apiserver-runtime => github.com/kmodules/apiserver-runtime v1.1.2-0.20250422194347-c5ac4abaf2ae
)
GOMOD
  local dir
  dir=$(go mod download -json "github.com/oam-dev/cluster-gateway@$CLUSTER_GATEWAY_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "cluster-gateway: could not download github.com/oam-dev/cluster-gateway@$CLUSTER_GATEWAY_VERSION"; return 1; }
  cp "$dir/go.sum" go.sum && chmod u+w go.sum
  log "cluster-gateway: resolving modules"; go mod tidy
  log "cluster-gateway: compiling"
  go build -trimpath -ldflags="-s -w" -o "$out/cluster-gateway" github.com/oam-dev/cluster-gateway/cmd/apiserver
}

case "${1:-all}" in
  etcd) build_component etcd "$ETCD_VERSION" build_etcd ;;
  kubernetes) build_component kubernetes "$KUBERNETES_VERSION" build_kubernetes ;;
  kubevela) build_component kubevela "$KUBEVELA_VERSION" build_kubevela ;;
  fake-nodes)
    build_component kube-scheduler "$KUBERNETES_VERSION" build_kube_scheduler
    build_component kwok "$KWOK_VERSION" build_kwok ;;
  argocd)
    build_component argocd "$ARGOCD_VERSION" build_argocd
    build_component miniredis "$MINIREDIS_VERSION" build_miniredis ;;
  cluster-gateway) build_component cluster-gateway "$CLUSTER_GATEWAY_VERSION" build_cluster_gateway ;;
  all)
    build_component etcd "$ETCD_VERSION" build_etcd
    build_component kubernetes "$KUBERNETES_VERSION" build_kubernetes
    build_component kubevela "$KUBEVELA_VERSION" build_kubevela ;;
  *) echo "usage: $0 [all|etcd|kubernetes|kubevela|fake-nodes|argocd|cluster-gateway]" >&2; exit 2 ;;
esac
