// Summarises a V8 CPU profile (node --cpu-prof): self time per function, top entries.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface ProfileSummary {
  file: string;
  totalMs: number;
  top: { fn: string; where: string; selfMs: number; pct: number }[];
  /** Self time grouped by where the code lives: server/, steps/, node_modules/<pkg>, node internals, idle/GC. */
  byArea: { area: string; selfMs: number; pct: number }[];
}

function area(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return `node_modules/${m[1]}`;
  if (url.startsWith("node:")) return "node internals";
  const r = /\/(server|steps|bench)\//.exec(url);
  return r ? `${r[1]}/` : "other";
}

export function summariseProfile(dir: string, topN = 15): ProfileSummary | undefined {
  let files: string[];
  try { files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")); } catch { return undefined; }
  if (files.length === 0) return undefined;
  const file = join(dir, files[0]!);
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  const areas = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const where = url ? `${url.replace(/^file:\/\//, "").replace(/.*node_modules\//, "node_modules/").replace(process.cwd() + "/", "")}:${lineNumber + 1}` : "";
    const key = `${functionName}@${where}`;
    const e = fns.get(key) ?? { fn: functionName || "(anonymous)", where, us: 0 };
    e.us += us;
    fns.set(key, e);
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  return {
    file: relative(process.cwd(), file),
    totalMs: totalUs / 1000,
    top: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, topN).map((e) => ({ fn: e.fn, where: e.where, selfMs: e.us / 1000, pct: (100 * e.us) / totalUs })),
    byArea: [...areas].sort((a, b) => b[1] - a[1]).map(([a, us]) => ({ area: a, selfMs: us / 1000, pct: (100 * us) / totalUs })),
  };
}
