// Merges the results files of several `npm run bench` runs (bench/.results/*.json) into one, a
// section from a later file replacing the same section of an earlier one, for `--render`: a report
// whose sections were measured in different runs says which run each came from.
//   node --import tsx bench/merge-results.ts OUT.json IN1.json IN2.json ...
import { readFileSync, writeFileSync } from "node:fs";

interface Saved { header: { started: string; git: string; sources?: { started: string; git: string; sections: string[] }[] } & Record<string, unknown>; results: Record<string, unknown> & { errors: Record<string, string> }; durationS: number }

const [out, ...inputs] = process.argv.slice(2);
if (!out || inputs.length === 0) {
  process.stderr.write("usage: bench/merge-results.ts OUT.json IN.json...\n");
  process.exit(2);
}
const merged: Saved = { header: { started: "", git: "" }, results: { errors: {} }, durationS: 0 };
const from = new Map<string, { started: string; git: string }>();
for (const file of inputs) {
  const saved = JSON.parse(readFileSync(file, "utf8")) as Saved;
  // A merged file contributes its own sources.
  for (const src of saved.header.sources ?? [{ started: saved.header.started, git: saved.header.git, sections: Object.keys(saved.results).filter((k) => k !== "errors") }]) {
    for (const section of src.sections) from.set(section, { started: src.started, git: src.git });
  }
  for (const [k, v] of Object.entries(saved.results)) if (k !== "errors") merged.results[k] = v;
  merged.header = { ...merged.header, ...saved.header };
  merged.durationS += saved.durationS;
}
const bySource = new Map<string, { started: string; git: string; sections: string[] }>();
for (const [section, src] of from) {
  const key = `${src.started} ${src.git}`;
  bySource.set(key, { ...src, sections: [...(bySource.get(key)?.sections ?? []), section] });
}
merged.header.sources = [...bySource.values()].sort((a, b) => a.started.localeCompare(b.started));
merged.header.started = merged.header.sources.at(-1)!.started;
writeFileSync(out, JSON.stringify(merged, null, 1));
process.stdout.write(`merged ${inputs.length} files: ${merged.header.sources.map((s) => `${s.sections.join(",")} @ ${s.started}`).join("; ")}\n`);
