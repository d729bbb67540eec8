// Shared bits of the benches: statistics, /proc readings, machine description, formatting.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Nearest-rank percentile (p in 0..100) of unsorted numbers. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}
export const median = (v: readonly number[]) => percentile(v, 50);
export const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;

export function summary(values: readonly number[]) {
  return { n: values.length, min: Math.min(...values), p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99), max: Math.max(...values) };
}

/** Rounds for tables: 3 significant digits, at most 3 decimals. */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 100) return x.toFixed(0);
  return Number(x.toPrecision(digits)).toString();
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try { clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

/** CPU seconds (user + system) and resident memory of a process, from /proc. */
export function procStat(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces) start at index 2 (state).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuSeconds: (utime + stime) / ticksPerSecond(), rssBytes: rssKb * 1024 };
}

/** CPU seconds used by the whole machine (all cores, busy time) from /proc/stat. */
export function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = line as number[];
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / ticksPerSecond();
}

export function machine() {
  const cpuModel = cpus()[0]?.model ?? "unknown";
  let nproc = String(cpus().length);
  try { nproc = execFileSync("nproc", { encoding: "utf8" }).trim(); } catch { /* keep os.cpus() */ }
  let loadavg = "";
  try { loadavg = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "); } catch { /* none */ }
  return { nproc, memGiB: (totalmem() / 2 ** 30).toFixed(1), cpuModel, loadavg, node: process.version, kernel: safe(() => execFileSync("uname", ["-r"], { encoding: "utf8" }).trim()) };
}

function safe(f: () => string): string {
  try { return f(); } catch { return "unknown"; }
}

export function versions(): Record<string, string> {
  const env = readFileSync(new URL("../../scripts/versions.env", import.meta.url), "utf8");
  const out: Record<string, string> = {};
  for (const m of env.matchAll(/^([A-Z_]+)=(\S+)/gm)) out[m[1]!] = m[2]!;
  return out;
}

export function log(...parts: unknown[]) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${parts.join(" ")}\n`);
}

/** Runs `f` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, f: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!, i);
    }
  }));
  return out;
}

export const MiB = 2 ** 20;
