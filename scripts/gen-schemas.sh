#!/usr/bin/env bash
# Generates steps/generated/ from the step definitions (npm run gen): for each assembled
# definition (scripts/build-addon.sh), its `parameter` block is exported with the real cue CLI
# (v0.9.2, the version KubeVela v1.10.9 embeds) through cue's OpenAPI encoder — the encoder
# KubeVela uses for its schema ConfigMaps — then scripts/gen-schemas.ts turns it into
#   steps/generated/<kind>.schema.json   draft-07 JSON Schema (ajv)
#   steps/generated/<kind>.ts            TypeScript type <Kind>Parameter + the schema as a const
#   steps/generated/index.ts             all schemas by kind
# The CUE parameter is the single source of truth; the output is committed and must not be edited.
#
#   scripts/gen-schemas.sh [OUT_DIR]     (default: steps/generated)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/steps/generated}
cue=$(bash "$root/scripts/gen-cue.sh")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/params" "$work/openapi"
bash "$root/scripts/build-addon.sh" --definitions-only "$work/definitions"

for def in "$work"/definitions/*.cue; do
  kind=$(basename "$def" .cue)
  # The `parameter` block of the (cue fmt-formatted) template: from "\tparameter: {" to the next
  # "\t}". It is plain CUE (no imports), so it compiles on its own; as the definition #parameter it
  # is what KubeVela's schema generator sees too.
  n=$(grep -c $'^\tparameter: {$' "$def" || true)
  if [ "$n" != 1 ]; then
    echo "gen-schemas: $kind: expected one top-level 'parameter: {' block in the template, found $n" >&2
    exit 1
  fi
  awk '/^\tparameter: \{$/ { p = 1; print "#parameter: {"; next }
       p && /^\t\}$/ { print "}"; exit }
       p { sub(/^\t/, ""); print }' "$def" > "$work/params/$kind.cue"
  "$cue" vet "$work/params/$kind.cue"
  "$cue" def --out openapi+json "$work/params/$kind.cue" > "$work/openapi/$kind.json"
done

cd "$root"
npx --no-install tsx scripts/gen-schemas.ts "$work/openapi" "$out"
echo "gen-schemas: wrote $out" >&2
