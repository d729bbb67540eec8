#!/usr/bin/env bash
# `npm test`: builds (or reuses) the local control plane, starts it, runs every test suite
# against it (unit, integration on the real kube-apiserver, end-to-end on the real KubeVela
# controller and vela CLI), stops it, and prints one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
# A control plane of the tests' own (state dir and ports), not the one `npm run demo` starts and
# leaves running: the suites must not depend on what another job put in a cluster (the demo's
# Application keeps the addon in use, and `vela addon disable` in the e2e suites was refused).
export STEP_EXECUTOR_STATE=${STEP_EXECUTOR_STATE:-$HOME/.local/state/step-executor/test-control-plane}
export STEP_EXECUTOR_ETCD_PORT=${STEP_EXECUTOR_ETCD_PORT:-24790} STEP_EXECUTOR_ETCD_PEER_PORT=${STEP_EXECUTOR_ETCD_PEER_PORT:-24800}
export STEP_EXECUTOR_APISERVER_PORT=${STEP_EXECUTOR_APISERVER_PORT:-17443} STEP_EXECUTOR_KCM_PORT=${STEP_EXECUTOR_KCM_PORT:-17257}
export STEP_EXECUTOR_VELA_METRICS_PORT=${STEP_EXECUTOR_VELA_METRICS_PORT:-17080} STEP_EXECUTOR_VELA_HEALTH_PORT=${STEP_EXECUTOR_VELA_HEALTH_PORT:-17440}
export STEP_EXECUTOR_SCHEDULER_PORT=${STEP_EXECUTOR_SCHEDULER_PORT:-17259} STEP_EXECUTOR_KWOK_PORT=${STEP_EXECUTOR_KWOK_PORT:-17270}
export STEP_EXECUTOR_MANAGED_ETCD_PORT=${STEP_EXECUTOR_MANAGED_ETCD_PORT:-24791} STEP_EXECUTOR_MANAGED_ETCD_PEER_PORT=${STEP_EXECUTOR_MANAGED_ETCD_PEER_PORT:-24801}
export STEP_EXECUTOR_MANAGED_APISERVER_PORT=${STEP_EXECUTOR_MANAGED_APISERVER_PORT:-17444} STEP_EXECUTOR_CLUSTER_GATEWAY_PORT=${STEP_EXECUTOR_CLUSTER_GATEWAY_PORT:-17445}
export STEP_EXECUTOR_ARGOCD_REDIS_PORT=${STEP_EXECUTOR_ARGOCD_REDIS_PORT:-17379} STEP_EXECUTOR_ARGOCD_REPO_PORT=${STEP_EXECUTOR_ARGOCD_REPO_PORT:-17081}
export STEP_EXECUTOR_ARGOCD_REPO_METRICS_PORT=${STEP_EXECUTOR_ARGOCD_REPO_METRICS_PORT:-17084} STEP_EXECUTOR_ARGOCD_CONTROLLER_METRICS_PORT=${STEP_EXECUTOR_ARGOCD_CONTROLLER_METRICS_PORT:-17082}
started=0
cleanup() { [ "$started" = 1 ] && scripts/control-plane down >/dev/null 2>&1; }
trap cleanup EXIT

scripts/control-plane up || { echo "error: the local control plane did not start (see messages above)" >&2; exit 1; }
started=1
eval "$(scripts/control-plane env)"
# The in-cluster e2e test starts fake nodes (kube-scheduler + kwok) itself; build them here, so a
# cold build shows its progress instead of running inside a test's timeout.
bash scripts/build-control-plane.sh fake-nodes || { echo "error: could not build kube-scheduler and kwok (see messages above)" >&2; exit 1; }
# The same for Argo CD (test/e2e/argocd.e2e.test.ts starts it with `scripts/control-plane argocd up`)
# and cluster-gateway (test/ops/multicluster.test.ts: `scripts/control-plane multicluster up`).
bash scripts/build-control-plane.sh argocd || { echo "error: could not build Argo CD and miniredis (see messages above)" >&2; exit 1; }
bash scripts/build-control-plane.sh cluster-gateway || { echo "error: could not build cluster-gateway (see messages above)" >&2; exit 1; }

echo "[test] type-checking"
npx tsc -p tsconfig.json --noEmit || exit 1
echo "[test] building the addon"
bash scripts/build-addon.sh >/dev/null || exit 1

specs=('test/server/**/*.test.ts' 'test/steps/**/*.test.ts' 'test/addon/**/*.test.ts' 'test/argocd/**/*.test.ts' 'test/ops/**/*.test.ts' 'test/e2e/**/*.test.ts')
# mocha only warns about a pattern that matches nothing: a moved suite would silently not run.
shopt -s globstar nullglob
for spec in "${specs[@]}"; do
  # shellcheck disable=SC2206 # the pattern is meant to expand here
  matched=($spec)
  [ ${#matched[@]} -gt 0 ] || { echo "error: the test pattern $spec matches no file" >&2; exit 1; }
done
shopt -u globstar nullglob

out=$(mktemp)
# c8 measures coverage of the executor while the suites run.
npx c8 --reporter=text-summary --include 'server/**' --include 'steps/**' --exclude 'steps/generated/**' \
  mocha "${specs[@]}" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '^ *[0-9]+ passing' "$out" | grep -Eo '[0-9]+' | tail -1)
failed=$(grep -Eo '^ *[0-9]+ failing' "$out" | grep -Eo '[0-9]+' | tail -1)
pending=$(grep -Eo '^ *[0-9]+ pending' "$out" | grep -Eo '[0-9]+' | tail -1)
rm -f "$out"
echo "${passed:-0} passed, ${failed:-0} failed${pending:+, $pending skipped}"
[ "$status" = 0 ] && [ "${passed:-0}" -gt 0 ]
