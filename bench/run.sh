#!/usr/bin/env bash
# `npm run bench` / `npm run bench:smoke`: starts the local control plane (scripts/control-plane,
# default state and ports, or the STEP_EXECUTOR_* variables), assembles the addon, runs
# bench/main.ts, and stops the control plane again if this script started it.
#   npm run bench                 every bench, writes BENCHMARKS.md (~25 min)
#   npm run bench:smoke           tiny sizes, same code paths, writes nothing (< 60 s; CI)
#   bash bench/run.sh --only scale   extra arguments go to bench/main.ts
set -uo pipefail
cd "$(dirname "$0")/.."
# Node 24 from the npm package `node` (what `npm run` puts first on PATH), also when run directly.
export PATH="$PWD/node_modules/.bin:$PATH"
started=0
work=$(mktemp -d "${TMPDIR:-/tmp}/step-executor-bench.XXXXXX")
cleanup() {
  [ "$started" = 1 ] && scripts/control-plane down > /dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

if scripts/control-plane status > /dev/null 2>&1; then
  echo "[bench] using the control plane that is already up (it stays up)"
else
  scripts/control-plane up || { echo "error: the local control plane did not start (see messages above)" >&2; exit 1; }
  started=1
fi
eval "$(scripts/control-plane env)"

bash scripts/build-addon.sh "$work/step-executor" > /dev/null || exit 1
node --import tsx bench/main.ts --addon "$work/step-executor" --work "$work" "$@"
