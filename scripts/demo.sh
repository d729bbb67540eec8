#!/usr/bin/env bash
# The main job (`npm run demo`): a local KubeVela control plane, the executor on loopback, the
# addon enabled, and a demo Application whose workflow runs every step; prints `vela status`.
# `npm run demo -- down` stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${STEP_EXECUTOR_DEMO_STATE:-$HOME/.local/state/step-executor/demo}
EXECUTOR_PORT=${STEP_EXECUTOR_DEMO_PORT:-18080}
TARGET_PORT=${STEP_EXECUTOR_DEMO_TARGET_PORT:-18090}
mkdir -p "$STATE"
log() { printf '[demo] %s\n' "$*"; }

# A pid file of a process that already exited is fine: `down` goes on to stop the rest.
stop_pid() { local f="$STATE/$1.pid"; if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi; rm -f "$f"; }
if [ "${1:-}" = "down" ]; then
  stop_pid executor; stop_pid target; scripts/control-plane down; exit 0
fi

[ -d node_modules ] || { log "installing npm packages"; npm ci --no-audit --no-fund; }
scripts/control-plane up
eval "$(scripts/control-plane env)"
bash scripts/build-addon.sh >/dev/null

for p in "$EXECUTOR_PORT" "$TARGET_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "error: port $p on 127.0.0.1 is in use; run 'npm run demo -- down' or set STEP_EXECUTOR_DEMO_PORT / STEP_EXECUTOR_DEMO_TARGET_PORT" >&2; exit 1
  fi
done
TOKEN=$(openssl rand -hex 24 2>/dev/null || node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')
CDN_TOKEN=demo-cdn-$(openssl rand -hex 8 2>/dev/null || echo 0123456789abcdef)

log "starting the demo target (CDN + chat) on 127.0.0.1:$TARGET_PORT"
DEMO_CDN_TOKEN=$CDN_TOKEN nohup node --import tsx scripts/demo-target.ts "$TARGET_PORT" >"$STATE/target.log" 2>&1 &
echo $! >"$STATE/target.pid"
log "starting the step executor on 127.0.0.1:$EXECUTOR_PORT (log: $STATE/executor.log)"
# The demo target is on loopback, which the executor refuses unless it is on the allow-list.
STEP_EXECUTOR_TOKEN=$TOKEN nohup node --import tsx server/main.ts --host 127.0.0.1 --port "$EXECUTOR_PORT" \
  --outbound-allow 127.0.0.1 >"$STATE/executor.log" 2>&1 &
echo $! >"$STATE/executor.pid"
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$EXECUTOR_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$EXECUTOR_PORT/readyz" >/dev/null || { echo "error: the executor did not start; see $STATE/executor.log" >&2; exit 1; }

log "vela addon enable dist/step-executor executorURL=http://127.0.0.1:$EXECUTOR_PORT token=***"
vela addon enable dist/step-executor "executorURL=http://127.0.0.1:$EXECUTOR_PORT" "token=$TOKEN" -y >"$STATE/addon-enable.log" 2>&1 \
  || { cat "$STATE/addon-enable.log" >&2; exit 1; }

kubectl create secret generic cdn-credentials -n default --from-literal=authorization="Bearer $CDN_TOKEN" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl delete applications.core.oam.dev demo -n default --ignore-not-found --wait=true >/dev/null
sed "s#\${DEMO_TARGET}#http://127.0.0.1:$TARGET_PORT#g" examples/demo-app.yaml | kubectl apply -f - >/dev/null
log "applied the demo Application; waiting for its workflow"
for _ in $(seq 1 240); do
  phase=$(kubectl get applications.core.oam.dev demo -n default -o jsonpath='{.status.status}' 2>/dev/null || true)
  case "$phase" in running|workflowFailed|workflowTerminated|unhealthy) break ;; esac
  sleep 0.5
done
vela status demo -n default
echo
log "target saw:"; grep -h '^\[demo-target\] \(purge\|notification\)' "$STATE/target.log" || true
log "workflow phase: ${phase:-unknown}. Stop everything with: npm run demo -- down"
[ "$phase" = running ]
