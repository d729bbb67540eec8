#!/usr/bin/env bash
# Prints the path of the cue CLI at the version KubeVela v1.10.9 embeds (cuelang.org/go v0.9.2),
# building it once into ~/.cache/step-executor/cue-<version>/ when it is missing.
#   cue=$(bash scripts/gen-cue.sh)
# `go install cuelang.org/go/cmd/cue@v0.9.2` fails with Go >= 1.24: its go.mod pins
# golang.org/x/tools v0.21.0, which no longer compiles. So it is built from a throwaway module that
# requires cue v0.9.2 and a newer x/tools; cue itself is unchanged.
set -euo pipefail

CUE_VERSION=v0.9.2
XTOOLS_VERSION=v0.31.0
CACHE=${STEP_EXECUTOR_CACHE:-$HOME/.cache/step-executor}
bin_dir=$CACHE/cue-$CUE_VERSION
cue=$bin_dir/cue

if [ -x "$cue" ] && [[ "$("$cue" version 2>/dev/null || true)" == "cue version $CUE_VERSION"* ]]; then
  echo "$cue"
  exit 0
fi

command -v go >/dev/null || { echo "gen-cue: the go toolchain is needed to build the cue CLI $CUE_VERSION" >&2; exit 1; }
echo "gen-cue: building the cue CLI $CUE_VERSION into $bin_dir (once)" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$bin_dir"
(
  cd "$work"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  printf 'module local/cue-bin\n\ngo 1.22\n' > go.mod
  go get "cuelang.org/go/cmd/cue@$CUE_VERSION" "golang.org/x/tools@$XTOOLS_VERSION" >&2
  go build -trimpath -o "$cue.tmp" cuelang.org/go/cmd/cue >&2
)
mv "$cue.tmp" "$cue"
echo "$cue"
