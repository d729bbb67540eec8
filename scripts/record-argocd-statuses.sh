#!/usr/bin/env bash
# Records real KubeVela Application objects (`kubectl get applications.core.oam.dev -o yaml`, managedFields
# stripped) in the states the ArgoCD health check argocd/health.lua must map, into
# argocd/testdata/. test/argocd/ runs the script on them against argocd/health_test.yaml.
#
#   scripts/record-argocd-statuses.sh                 record every case
#   scripts/record-argocd-statuses.sh running failed-action   record some cases
#   scripts/record-argocd-statuses.sh --list          list the cases
#
# Needs a cluster running KubeVela's controller: KUBECONFIG (and kubectl, vela on PATH) from the
# environment, or else from `scripts/control-plane env` (start it first: scripts/control-plane up).
# Environment: RECORD_OUT output dir [argocd/testdata], RECORD_NAMESPACE namespace for the
# Applications [argocd-rec, deleted and recreated at start], RECORD_KEEP=1 keeps it afterwards,
# RECORD_FAIL_PORT port of the local failing server [18399], RECORD_EXECUTOR_PORT port of the
# step executor the addon-* cases start [18398].
# Takes about 2 minutes (the failed-after-retries case waits for KubeVela's 10 retries, ~1 min).
#
# The addon-* cases record the addon's own steps: they start the executor (server/main.ts) on
# 127.0.0.1:$RECORD_EXECUTOR_PORT, build the addon and `vela addon enable` it with that
# executorURL and a fresh token. The executor stops when the script ends; the addon stays enabled,
# pointing at it, until the next `vela addon enable` (the e2e suites enable it again).
#
# Adding a case:
#   1. write `case_<name>() { ... }` that applies an Application with `apply_app NAME <<EOF`,
#      waits with `wait_app NAME 'jq predicate on the object' [timeout]`, drives it if needed
#      (vela workflow suspend/terminate/resume) and calls `record NAME FILE 'what it shows'`
#      once or more;
#   2. add <name> to CASES;
#   3. add the expected health of each new file to argocd/health_test.yaml.
# Steps that must fail use FAIL_URL (a local server answering HTTP 500 with a JSON body;
# $FAIL_URL/status/NNN answers NNN instead, e.g. 503, 401 or 200) or REFUSED_URL (a closed port
# on 127.0.0.1). Cases with the addon's steps call `ensure_executor` first. Nothing leaves
# 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
OUT=${RECORD_OUT:-$root/argocd/testdata}
NS=${RECORD_NAMESPACE:-argocd-rec}

CASES=(
  running running-default-workflow waiting-health request-refused failed-action failed-substep
  suspended-step suspended-approval suspended-manual terminated not-reconciled unhealthy
  parse-error deleting
  addon-retrying addon-waiting addon-timed-out addon-failed addon-succeeded addon-executor-down
)

log() { printf '[record] %s\n' "$*" >&2; }
die() { printf '[record] error: %s\n' "$*" >&2; exit 1; }

# ---- helpers ------------------------------------------------------------------------------------
# apply_app NAME: applies the Application manifest on stdin (metadata.name must be NAME) in $NS.
apply_app() {
  kubectl -n "$NS" apply -f - > /dev/null
}

# wait_app NAME 'JQ' [TIMEOUT]: waits until the jq predicate holds for the Application's JSON.
wait_app() {
  local name=$1 pred=$2 timeout=${3:-60} start=$SECONDS
  until kubectl -n "$NS" get applications.core.oam.dev "$name" -o json 2> /dev/null | jq -e "$pred" > /dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      log "timeout after ${timeout}s waiting for $name: $pred; its status:"
      kubectl -n "$NS" get applications.core.oam.dev "$name" -o json | jq '.status | del(.conditions)' >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

# record NAME FILE 'DESCRIPTION': writes the live object to $OUT/FILE with a header comment.
record() {
  local name=$1 file=$2 desc=$3 yaml
  # (kubectl leaves out metadata.managedFields unless --show-managed-fields)
  yaml=$(kubectl -n "$NS" get applications.core.oam.dev "$name" -o yaml --show-managed-fields=false)
  {
    printf '# %s\n' "$desc"
    printf '# Recorded by scripts/record-argocd-statuses.sh (case %s) from KubeVela %s.\n' "$CURRENT_CASE" "$VELA_VERSION"
    printf '%s\n' "$yaml"
  } > "$OUT/$file"
  log "  $file: $(kubectl -n "$NS" get applications.core.oam.dev "$name" -o jsonpath='{.status.status} / {.status.workflow.status}')"
}

# A ConfigMap component (k8s-objects): healthy as soon as it is applied.
configmap_component() {
  cat <<EOF
  - name: config
    type: k8s-objects
    properties:
      objects:
      - apiVersion: v1
        kind: ConfigMap
        metadata: {name: $1-config}
        data: {greeting: hello}
EOF
}

# release: hands the Applications of $NS back to the controller (drops the annotation that makes
# it skip them, and our own finalizer), so that they and their namespace can be deleted.
release() {
  local app rest
  for app in $(kubectl -n "$NS" get applications.core.oam.dev -o name 2> /dev/null); do
    kubectl -n "$NS" annotate "$app" app.oam.dev/controller-version-require- > /dev/null 2>&1 || true
    rest=$(kubectl -n "$NS" get "$app" -o json 2> /dev/null | jq -c --arg hold "$HOLD" \
      'if (.metadata.finalizers // []) | index($hold) then .metadata.finalizers - [$hold] else empty end') || continue
    [ -z "$rest" ] || kubectl -n "$NS" patch "$app" --type=merge -p "{\"metadata\":{\"finalizers\":$rest}}" > /dev/null 2>&1 || true
  done
}
HOLD=record.step-executor.dev/hold

# ---- cases --------------------------------------------------------------------------------------
case_running() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: running}
spec:
  components:
$(configmap_component running)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: note
      type: print-message-in-status
      properties: {message: "deployed"}
EOF
  wait_app running '.status.status == "running" and .status.workflow.finished == true'
  record running running.yaml 'Workflow succeeded, components healthy: phase running.'
}

case_running-default-workflow() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: running-default-workflow}
spec:
  components:
$(configmap_component running-default-workflow)
EOF
  wait_app running-default-workflow '.status.status == "running"'
  record running-default-workflow running-default-workflow.yaml \
    'No spec.workflow: KubeVela generates one deploy step per component; phase running.'
}

# webservice_component NAME: a Deployment; it never becomes ready on the local control plane
# (no scheduler or kubelet), so a deploy step waits for it forever.
webservice_component() {
  cat <<EOF
  - name: $1-web
    type: webservice
    properties: {image: nginx:1.27}
EOF
}

# A webservice never becomes ready here (no scheduler or kubelet), so `deploy` keeps waiting.
case_waiting-health() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: waiting-health}
spec:
  components:
$(webservice_component waiting-health)
  workflow:
    steps:
    - {name: deploy-web, type: deploy}
EOF
  wait_app waiting-health '.status.status == "runningWorkflow" and any(.status.workflow.steps[]?; .phase == "running" and (.message // "") != "")'
  record waiting-health waiting-health.yaml 'The deploy step waits for the webservice to become healthy: phase runningWorkflow.'
}

# A provider error (connection refused) is retried: first runningWorkflow with a failed step
# (reason Execute), then workflowFailed with reason FailedAfterRetries.
case_request-refused() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: request-refused}
spec:
  components:
$(configmap_component request-refused)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: smoke-test
      type: request
      properties: {url: "$REFUSED_URL"}
EOF
  wait_app request-refused '.status.status == "runningWorkflow" and any(.status.workflow.steps[]?; .phase == "failed" and .reason == "Execute")'
  record request-refused retrying.yaml 'The request step failed with a provider error and is being retried: phase runningWorkflow.'
  wait_app request-refused '.status.status == "workflowFailed"' 180
  record request-refused failed-after-retries.yaml 'The request step kept failing; KubeVela gave up after 10 retries: phase workflowFailed.'
}

# An HTTP 500 makes the request step's op.#Fail fail the workflow at once.
case_failed-action() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: failed-action}
spec:
  components:
$(configmap_component failed-action)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: smoke-test
      type: request
      properties: {url: "$FAIL_URL/smoke"}
EOF
  wait_app failed-action '.status.status == "workflowFailed"'
  record failed-action failed-action.yaml 'The request step got HTTP 500 and failed the workflow (op.#Fail): phase workflowFailed.'
}

case_failed-substep() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: failed-substep}
spec:
  components:
$(configmap_component failed-substep)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: post-deploy
      type: step-group
      subSteps:
      - name: note
        type: print-message-in-status
        properties: {message: "checking"}
      - name: purge-cache
        type: request
        properties: {url: "$FAIL_URL/purge", method: POST}
EOF
  wait_app failed-substep '.status.status == "workflowFailed"'
  record failed-substep failed-substep.yaml 'A sub-step of a step-group failed (HTTP 500): phase workflowFailed.'
}

case_suspended-step() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: suspended-step}
spec:
  components:
$(configmap_component suspended-step)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: approve
      type: suspend
      properties: {message: "Approve the release with: vela workflow resume suspended-step"}
    - {name: after, type: print-message-in-status, properties: {message: "approved"}}
EOF
  wait_app suspended-step '.status.status == "workflowSuspending"'
  record suspended-step suspended-step.yaml 'A suspend step waits for `vela workflow resume`: phase workflowSuspending.'
}

case_suspended-approval() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: suspended-approval}
spec:
  components:
$(configmap_component suspended-approval)
  workflow:
    steps:
    - {name: deploy-prod, type: deploy, properties: {auto: false}}
EOF
  wait_app suspended-approval '.status.status == "workflowSuspending"'
  record suspended-approval suspended-approval.yaml 'A deploy step with auto: false waits for approval: phase workflowSuspending.'
}

# `vela workflow suspend` while a step is waiting.
case_suspended-manual() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: suspended-manual}
spec:
  components:
$(webservice_component suspended-manual)
  workflow:
    steps:
    - {name: deploy-web, type: deploy}
EOF
  wait_app suspended-manual '.status.status == "runningWorkflow" and any(.status.workflow.steps[]?; .phase == "running")'
  vela workflow suspend suspended-manual -n "$NS" > /dev/null
  wait_app suspended-manual '.status.status == "workflowSuspending"'
  record suspended-manual suspended-manual.yaml '`vela workflow suspend` while the deploy step waited: phase workflowSuspending.'
}

# `vela workflow terminate`, once on a suspended workflow and once on a waiting one.
case_terminated() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: terminated}
spec:
  components:
$(configmap_component terminated)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - {name: approve, type: suspend, properties: {message: "waiting for approval"}}
EOF
  wait_app terminated '.status.status == "workflowSuspending"'
  vela workflow terminate terminated -n "$NS" > /dev/null
  wait_app terminated '.status.status == "workflowTerminated"'
  record terminated terminated.yaml '`vela workflow terminate` on a suspended workflow: phase workflowTerminated.'

  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: terminated-waiting}
spec:
  components:
$(webservice_component terminated-waiting)
  workflow:
    steps:
    - {name: deploy-web, type: deploy}
EOF
  wait_app terminated-waiting '.status.status == "runningWorkflow" and any(.status.workflow.steps[]?; .phase == "running")'
  vela workflow terminate terminated-waiting -n "$NS" > /dev/null
  wait_app terminated-waiting '.status.status == "workflowTerminated"'
  record terminated-waiting terminated-waiting.yaml '`vela workflow terminate` while the deploy step waited: phase workflowTerminated.'
}

# What ArgoCD sees right after it applies: an Application the controller has not reconciled yet.
# The annotation app.oam.dev/controller-version-require (here naming no real version) makes the
# real controller skip the object, which holds that moment still:
#   not-reconciled.yaml       created, never reconciled: no status at all;
#   generation-not-observed.yaml  a running Application whose spec then changed: metadata.generation
#                                 2, status.observedGeneration 1, status still from generation 1.
case_not-reconciled() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: not-reconciled
  annotations: {app.oam.dev/controller-version-require: not-this-controller}
spec:
  components:
$(configmap_component not-reconciled)
  workflow:
    steps:
    - {name: deploy, type: deploy}
EOF
  sleep 3 # give the controller time to (not) act
  wait_app not-reconciled '.status == null or .status == {}' 1
  record not-reconciled not-reconciled.yaml 'Created but not yet reconciled by the controller: no status.'

  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: generation-not-observed}
spec:
  components:
$(configmap_component generation-not-observed)
  workflow:
    steps:
    - {name: deploy, type: deploy}
EOF
  wait_app generation-not-observed '.status.status == "running" and .status.workflow.finished == true'
  kubectl -n "$NS" annotate applications.core.oam.dev generation-not-observed app.oam.dev/controller-version-require=not-this-controller > /dev/null
  sleep 1
  kubectl -n "$NS" patch applications.core.oam.dev generation-not-observed --type=json \
    -p '[{"op": "replace", "path": "/spec/components/0/properties/objects/0/data/greeting", "value": "bonjour"}]' > /dev/null
  sleep 3
  wait_app generation-not-observed '.metadata.generation == 2 and .status.observedGeneration == 1' 1
  record generation-not-observed generation-not-observed.yaml \
    'A running Application whose spec changed (generation 2) before the controller saw it (observedGeneration 1).'
  release
}

# Phase unhealthy: the workflow succeeded, then a component became unhealthy. The Deployment
# starts with 0 replicas (ready), is scaled to 1 out of band (never ready here; the apply-once
# policy keeps KubeVela from reverting it) and an annotation triggers a reconcile, which re-checks
# health (KubeVela >= v1.10.4).
case_unhealthy() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: unhealthy}
spec:
  components:
$(webservice_component unhealthy)
    traits:
    - type: scaler
      properties: {replicas: 0}
  policies:
  - name: keep-manual-changes
    type: apply-once
    properties: {enable: true}
  workflow:
    steps:
    - {name: deploy, type: deploy}
EOF
  wait_app unhealthy '.status.status == "running" and .status.workflow.finished == true'
  kubectl -n "$NS" scale deployment unhealthy-web --replicas=1 > /dev/null
  kubectl -n "$NS" annotate applications.core.oam.dev unhealthy --overwrite record.step-executor.dev/poke="$(date +%s)" > /dev/null
  wait_app unhealthy '.status.status == "unhealthy"'
  record unhealthy unhealthy.yaml 'The workflow succeeded, then the webservice became unhealthy (scaled to 1, never ready): phase unhealthy.'
}

# A component type that does not exist: the controller cannot parse the Application (phase
# rendering, condition Parsed False). (This control plane runs vela-core without its webhook,
# which would reject the Application at apply.)
case_parse-error() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: parse-error}
spec:
  components:
  - {name: backend, type: no-such-component-type, properties: {}}
EOF
  wait_app parse-error 'any(.status.conditions[]?; .type == "Parsed" and .status == "False")'
  record parse-error parse-error.yaml 'A component type that does not exist: phase rendering, condition Parsed False.'
}

# Deleted while another finalizer holds it: metadata.deletionTimestamp is set (Argo CD reports
# "Pending deletion" before it runs any health script).
case_deleting() {
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: deleting
  finalizers: [$HOLD]
spec:
  components:
$(configmap_component deleting)
EOF
  wait_app deleting '.status.status == "running"'
  kubectl -n "$NS" delete applications.core.oam.dev deleting --wait=false > /dev/null
  wait_app deleting '.metadata.deletionTimestamp != null and (.metadata.finalizers | length) == 1'
  sleep 2
  record deleting deleting.yaml 'Deleted while a foreign finalizer holds it: metadata.deletionTimestamp set.'
  release
}

# ---- the addon's own steps ----------------------------------------------------------------------
# ensure_executor: starts the step executor on 127.0.0.1:$EXECUTOR_PORT and enables the addon
# with it (once per script run).
ensure_executor() {
  [ -z "$executor_pid" ] || return 0
  if (exec 3<> "/dev/tcp/127.0.0.1/$EXECUTOR_PORT") 2> /dev/null; then
    die "port $EXECUTOR_PORT on 127.0.0.1 is in use; set RECORD_EXECUTOR_PORT to a free port"
  fi
  local token
  token=$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')
  log "starting the step executor on 127.0.0.1:$EXECUTOR_PORT"
  STEP_EXECUTOR_TOKEN=$token node --import tsx server/main.ts --host 127.0.0.1 --port "$EXECUTOR_PORT" \
    --poll-interval 250ms --shutdown-grace 1s --outbound-allow 127.0.0.1 > "$tmp/executor.log" 2>&1 &
  executor_pid=$!
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$EXECUTOR_PORT/readyz" > /dev/null 2>&1 && break
    kill -0 "$executor_pid" 2> /dev/null || break
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$EXECUTOR_PORT/readyz" > /dev/null 2>&1 || { cat "$tmp/executor.log" >&2; die "the executor did not start"; }
  bash scripts/build-addon.sh > "$tmp/build-addon.log" 2>&1 || { cat "$tmp/build-addon.log" >&2; die "building the addon failed"; }
  log "vela addon enable dist/step-executor executorURL=http://127.0.0.1:$EXECUTOR_PORT token=***"
  vela addon enable dist/step-executor "executorURL=http://127.0.0.1:$EXECUTOR_PORT" "token=$token" -y > "$tmp/addon.log" 2>&1 \
    || { cat "$tmp/addon.log" >&2; die "vela addon enable failed"; }
}

# An http-request step retrying HTTP 503 (backoff 1m, so that the moment holds): the step waits
# with the executor's progress message; phase runningWorkflow.
case_addon-retrying() {
  ensure_executor
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: addon-retrying}
spec:
  components:
$(configmap_component addon-retrying)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: smoke-test
      type: http-request
      properties: {url: "$FAIL_URL/status/503", retries: 10, backoff: 1m, maxBackoff: 1m}
EOF
  wait_app addon-retrying 'any(.status.workflow.steps[]?; .name == "smoke-test" and .phase == "running" and ((.message // "") | startswith("attempt 1/")))'
  record addon-retrying addon-retrying.yaml "An http-request step retrying HTTP 503, with the executor's progress message: phase runningWorkflow."
}

# A read-object-and-wait step waiting for an object that does not exist yet: phase runningWorkflow.
case_addon-waiting() {
  ensure_executor
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: addon-waiting}
spec:
  components:
$(configmap_component addon-waiting)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: wait-for-flags
      type: read-object-and-wait
      properties: {apiVersion: v1, kind: ConfigMap, name: release-flags, condition: "object.data.enabled == 'true'", timeout: 10m}
EOF
  wait_app addon-waiting 'any(.status.workflow.steps[]?; .name == "wait-for-flags" and .phase == "running" and ((.message // "") | startswith("waiting for")))'
  record addon-waiting addon-waiting.yaml 'A read-object-and-wait step waiting for a ConfigMap to exist: phase runningWorkflow.'
}

# A read-object-and-wait step whose timeout passed: the executor fails it (#Fail): workflowFailed.
case_addon-timed-out() {
  ensure_executor
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: addon-timed-out}
spec:
  components:
$(configmap_component addon-timed-out)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: wait-for-flags
      type: read-object-and-wait
      properties: {apiVersion: v1, kind: ConfigMap, name: release-flags, timeout: 3s}
EOF
  wait_app addon-timed-out '.status.status == "workflowFailed"'
  record addon-timed-out addon-timed-out.yaml 'A read-object-and-wait step timed out; the executor failed it: phase workflowFailed.'
}

# An http-request step answered 401 (not retried): the executor fails it with its message (#Fail).
case_addon-failed() {
  ensure_executor
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: addon-failed}
spec:
  components:
$(configmap_component addon-failed)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: purge-cdn
      type: http-request
      properties: {url: "$FAIL_URL/status/401", method: POST, body: {paths: ["/*"]}}
EOF
  wait_app addon-failed '.status.status == "workflowFailed"'
  record addon-failed addon-failed.yaml 'An http-request step got HTTP 401; the executor failed it with its message: phase workflowFailed.'
}

# Every step kind of the addon but github-actions succeeding, an output passed on: phase running.
case_addon-succeeded() {
  ensure_executor
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: addon-succeeded}
spec:
  components:
$(configmap_component addon-succeeded)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: read-config
      type: read-object-and-wait
      properties:
        apiVersion: v1
        kind: ConfigMap
        name: addon-succeeded-config
        condition: "object.data.greeting == 'hello'"
        outputs: {greeting: object.data.greeting}
      outputs: [{name: greeting, valueFrom: outputs.greeting}]
    - name: create-marker
      type: apply-and-wait
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: addon-succeeded-marker}, data: {result: passed}}
        condition: "object.data.result == 'passed'"
    - name: notify
      type: http-request
      inputs: [{from: greeting, parameterKey: body.greeting}]
      properties: {url: "$FAIL_URL/status/200", method: POST, body: {text: deployed}}
EOF
  wait_app addon-succeeded '.status.status == "running" and .status.workflow.finished == true'
  record addon-succeeded addon-succeeded.yaml 'read-object-and-wait, apply-and-wait and http-request succeeded, an output passed on: phase running.'
}

# The executor is down (stopped here; the addon still points at it): KubeVela's http provider
# fails with "connection refused" followed by a CUE dump of the call, and retries the step
# (reason Execute): phase runningWorkflow.
case_addon-executor-down() {
  ensure_executor
  kill "$executor_pid" && wait "$executor_pid" 2> /dev/null || true
  executor_pid=
  apply_app <<EOF
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: addon-executor-down}
spec:
  components:
$(configmap_component addon-executor-down)
  workflow:
    steps:
    - {name: deploy, type: deploy}
    - name: smoke-test
      type: http-request
      properties: {url: "$FAIL_URL/status/200"}
EOF
  wait_app addon-executor-down 'any(.status.workflow.steps[]?; .name == "smoke-test" and .phase == "failed" and .reason == "Execute")'
  record addon-executor-down addon-executor-down.yaml 'The executor is unreachable; KubeVela retries the http-request step: phase runningWorkflow.'
}

# ---- main ---------------------------------------------------------------------------------------
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${CASES[@]}"; exit 0; fi
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${CASES[@]}")
for c in "${selected[@]}"; do
  declare -F "case_$c" > /dev/null || die "unknown case '$c' (known: ${CASES[*]})"
done

if [ -z "${KUBECONFIG:-}" ]; then eval "$(scripts/control-plane env)"; fi
for tool in kubectl vela jq node curl; do command -v "$tool" > /dev/null || die "$tool is not on PATH"; done
kubectl get crd applications.core.oam.dev > /dev/null 2>&1 || die "no KubeVela in the cluster of $KUBECONFIG (run scripts/control-plane up)"
VELA_VERSION=$(vela version 2> /dev/null | sed -n 's/^CLI Version: *//p')
VELA_VERSION=${VELA_VERSION:-(version unknown)}
mkdir -p "$OUT"

# A server on 127.0.0.1:$FAIL_PORT that answers 500 with a JSON body to everything (for steps
# that must fail). The port is fixed because it shows in the recorded messages.
FAIL_PORT=${RECORD_FAIL_PORT:-18399}
if (exec 3<> "/dev/tcp/127.0.0.1/$FAIL_PORT") 2> /dev/null; then
  die "port $FAIL_PORT on 127.0.0.1 is in use; set RECORD_FAIL_PORT to a free port"
fi
EXECUTOR_PORT=${RECORD_EXECUTOR_PORT:-18398}
tmp=$(mktemp -d)
server_pid=
executor_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2> /dev/null || true
  if [ -n "$executor_pid" ]; then kill "$executor_pid" 2> /dev/null && wait "$executor_pid" 2> /dev/null || true; fi
  rm -rf "$tmp"
  if [ "${RECORD_KEEP:-0}" != 1 ]; then release; kubectl delete namespace "$NS" --wait=false > /dev/null 2>&1 || true; fi
}
trap cleanup EXIT
node -e '
  const s = require("http").createServer((req, res) => {
    const m = /^\/status\/([1-5][0-9][0-9])$/.exec(req.url);
    res.statusCode = m ? Number(m[1]) : 500;
    res.setHeader("content-type", "application/json");
    const body = !m ? { error: "simulated failure" } : res.statusCode < 300 ? { ok: true } : { error: `simulated ${res.statusCode}` };
    res.end(JSON.stringify(body));
  });
  s.listen(Number(process.argv[2]), "127.0.0.1", () => require("fs").writeFileSync(process.argv[1], "up"));
' "$tmp/up" "$FAIL_PORT" &
server_pid=$!
for _ in $(seq 1 50); do [ -s "$tmp/up" ] && break; sleep 0.1; done
[ -s "$tmp/up" ] || die "the local failing server did not start on 127.0.0.1:$FAIL_PORT"
FAIL_URL=http://127.0.0.1:$FAIL_PORT
REFUSED_URL=http://127.0.0.1:1/smoke # nothing listens on port 1

if kubectl get namespace "$NS" > /dev/null 2>&1; then
  log "deleting the namespace $NS left from an earlier run"
  release
  kubectl delete namespace "$NS" --timeout=120s > /dev/null
fi
kubectl create namespace "$NS" > /dev/null

for c in "${selected[@]}"; do
  CURRENT_CASE=$c
  log "case $c"
  "case_$c"
done
log "done: ${#selected[@]} case(s) recorded into $OUT"
