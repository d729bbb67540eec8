// What a V8 heap snapshot holds, by kind of object (constructor names for objects), and what
// grew between two snapshots per waiting step: "where a waiting step's memory goes" (§3).
import { readFileSync } from "node:fs";

export interface HeapGrowth {
  /** An object's constructor, or a kind of V8 internal ("closure", "closure context", "array backing store", "string", …). */
  what: string;
  bytesPerStep: number;
  countPerStep: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

const KINDS: Record<string, string> = {
  closure: "closure", array: "array backing store", string: "string", "concatenated string": "string",
  "sliced string": "string", number: "heap number", code: "code", hidden: "V8 internal", native: "native (V8 side)",
};

/** Self sizes summed by kind. */
export function summarizeSnapshot(path: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(readFileSync(path, "utf8")) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [nf, ti, ni, si] = [fields.length, fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += nf) {
    const type = types[s.nodes[i + ti]!]!;
    const name = s.strings[s.nodes[i + ni]!]!;
    const what = type === "object" ? (name === "system / Context" ? "closure context" : name) : KINDS[type] ?? type;
    const e = out.get(what) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + si]!;
    out.set(what, e);
  }
  return out;
}

/** The kinds that grew most from `before` to `after` (compiled code left out), per step (`steps` = the steps added between them). */
export function growthPerStep(before: Map<string, { count: number; bytes: number }>, after: Map<string, { count: number; bytes: number }>, steps: number, top = 12): { total: number; rows: HeapGrowth[] } {
  // Compiled code grows as V8 optimises the hot paths while the runs are created: a fixed cost, not the steps'.
  const rows = [...after].filter(([what]) => what !== "code").map(([what, a]) => {
    const b = before.get(what) ?? { count: 0, bytes: 0 };
    return { what, bytesPerStep: (a.bytes - b.bytes) / steps, countPerStep: (a.count - b.count) / steps };
  }).sort((x, y) => y.bytesPerStep - x.bytesPerStep);
  return { total: rows.reduce((a, r) => a + r.bytesPerStep, 0), rows: rows.slice(0, top) };
}
