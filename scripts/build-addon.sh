#!/usr/bin/env bash
# Assembles the enable-able addon directory dist/<name>/ (npm run addon:build):
#   metadata.yaml, addon/{template.cue,parameter.cue,NOTES.cue,README.md}, addon/resources/,
#   addon/schemas/ (if any) and definitions/<kind>.cue, where each definition is
#   addon/definitions/<kind>.cue with the shared blocks of addon/definitions/_shared/*.cue appended
#   and all imports merged into one import block: complete single-file `vela def` CUE.
# Then: vela addon enable dist/step-executor token=<key> [executorURL=http://127.0.0.1:18080]
#
#   scripts/build-addon.sh [OUT_DIR]     (default: dist/<name from metadata.yaml>)
#   scripts/build-addon.sh --definitions-only DIR   (only the assembled definitions, into DIR)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The addon's name: metadata.yaml `name:`. `vela addon enable <dir>` names the addon after the
# directory, so the directory must carry this name.
name=$(sed -n 's/^name:[[:space:]]*"\{0,1\}\([^"#[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' metadata.yaml | head -n1)
[ -n "$name" ] || { echo "build-addon: no name in metadata.yaml" >&2; exit 1; }

# assemble_definition DEF.cue SHARED.cue... > OUT.cue
# Imports are `import "path"` lines or `import ( ... )` blocks at the top level; everything else is
# copied in order. The definition comes first, so its own blocks keep their place.
assemble_definition() {
  local def=$1
  shift
  awk -v def="$(basename "$def")" '
    FNR == 1 { nfile++ }
    /^import[[:space:]]*\(/ { inblock = 1; next }
    inblock && /^\)/ { inblock = 0; next }
    inblock { spec = $0; gsub(/^[[:space:]]+|[[:space:]]+$/, "", spec); if (spec != "" && spec !~ /^\/\//) imports[spec] = 1; next }
    /^import[[:space:]]+/ { spec = $0; sub(/^import[[:space:]]+/, "", spec); gsub(/[[:space:]]+$/, "", spec); imports[spec] = 1; next }
    # Comment lines stay in the sources: KubeVela parses the stored template on every evaluation of
    # a step, and they were a fifth of its CPU (BENCHMARKS.md). Markers such as // +usage= stay.
    /^[[:space:]]*\/\// && !/^[[:space:]]*\/\/[[:space:]]*\+/ { next }
    { body[nfile] = body[nfile] $0 "\n" }
    END {
      n = 0
      for (s in imports) list[++n] = s
      # sort the import specs (insertion sort: portable awk)
      for (i = 2; i <= n; i++) { v = list[i]; j = i - 1; while (j > 0 && list[j] > v) { list[j + 1] = list[j]; j-- } list[j + 1] = v }
      printf "// Assembled by scripts/build-addon.sh from addon/definitions/%s and addon/definitions/_shared/ (their comments explain it): edit those.\n", def
      if (n > 0) { print "import ("; for (i = 1; i <= n; i++) print "\t" list[i]; print ")" }
      for (f = 1; f <= nfile; f++) {
        text = body[f]
        sub(/^\n+/, "", text)
        printf "\n%s", text
      }
    }
  ' "$def" "$@"
}

# build_definitions OUT_DIR: one assembled, formatted file per addon/definitions/*.cue
build_definitions() {
  local out=$1 cue f kind
  cue=$(bash "$root/scripts/gen-cue.sh")
  mkdir -p "$out"
  shopt -s nullglob
  local shared=("$root"/addon/definitions/_shared/*.cue)
  for f in "$root"/addon/definitions/*.cue; do
    kind=$(basename "$f" .cue)
    assemble_definition "$f" "${shared[@]}" > "$out/$kind.cue"
    "$cue" fmt "$out/$kind.cue"
  done
}

if [ "${1:-}" = "--definitions-only" ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --definitions-only DIR" >&2; exit 2; }
  build_definitions "$2"
  exit 0
fi

out=${1:-$root/dist/$name}
if [ "$(basename "$out")" != "$name" ]; then
  echo "build-addon: the output directory must be named $name (metadata.yaml name), not $(basename "$out")" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"
cp metadata.yaml "$out/"
for f in template.cue parameter.cue NOTES.cue README.md; do
  if [ -f "addon/$f" ]; then cp "addon/$f" "$out/"; fi
done
for d in resources schemas; do
  if [ -d "addon/$d" ]; then cp -R "addon/$d" "$out/"; fi
done
build_definitions "$out/definitions"
echo "build-addon: $out ($(ls "$out/definitions" | wc -l | tr -d ' ') definitions)" >&2
echo "  vela addon enable $out token=<key> [executorURL=http://127.0.0.1:18080]" >&2
