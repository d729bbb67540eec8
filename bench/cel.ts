// CEL bounds: what evaluating off the event loop costs and buys. In one process: a real express
// /healthz on 127.0.0.1 and the executor's CEL pool (server/cel/cel.ts, its defaults).
//  - per evaluation of an ordinary condition: in a worker (now) against in-thread (before: the
//    same plan, conversions and program, on the calling thread);
//  - /healthz latency and event-loop delay while idle, and while the review's hostile expressions
//    keep both workers busy (each stopped at the deadline or its heap limit, then resubmitted);
//  - RSS: no workers, workers idle, peak while the memory bombs run.
//
//   node --import tsx bench/cel.ts [--smoke]          (standalone; prints JSON)
//   bench/main.ts --only cel runs it compiled (bench/.build/bench/cel.js), as the image would.
import express from "express";
import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { CelInput } from "@bufbuild/cel";
import { celPool, closeCel, compileCondition } from "../server/cel/cel.js";
import { celLibrary } from "../server/cel/library.js";
import { fromCelValue, toCelInput } from "../server/cel/values.js";
import { percentile, sleep } from "./lib/common.js";

export interface LatencyWindow { pings: number; p50: number; p99: number; max: number; loopDelayP99: number; loopDelayMax: number }
export interface CelResult {
  runtime: string;
  pool: { size: number; timeoutMs: number; maxHeapMiB: number };
  evaluations: number;
  /** Mean µs per sequential evaluation of an ordinary condition. */
  inThreadUs: number;
  workerUs: number;
  /** Evaluations/s with 64 in flight. */
  workerPerS: number;
  idle: LatencyWindow;
  hostile: LatencyWindow & { stopped: number; byTime: number; byMemory: number };
  /** µs to refuse the review's expressions at compile time. */
  refuseUs: number;
  rssMiB: { noWorkers: number; workersIdle: number; hostilePeak: number };
}

const L = "[0,1,2,3,4,5,6,7,8,9]";
const NESTED_ALL = Array.from({ length: 8 }, (_, i) => i).reduceRight((inner, i) => `${L}.all(x${i}, ${inner})`, "true");
const NESTED_MAPS = [..."abcdef"].reduceRight((inner, v) => `${L}.map(${v}, ${inner})`, `'${"x".repeat(20)}' + string(a) + string(b) + string(c) + string(d) + string(e) + string(f)`);
const NESTED_LISTS = [..."abcdef"].reduceRight((inner, v) => `${L}.map(${v}, ${inner})`, "[a, b, c, d, e, f]");
const CONDITION = "object.status.conditions.exists(c, c.type == 'Available' && c.status == 'True') && object.status.readyReplicas >= object.spec.replicas";
const OBJECT = {
  apiVersion: "apps/v1", kind: "Deployment",
  metadata: { name: "web", namespace: "team-a", labels: { app: "web" }, annotations: { "deployment.kubernetes.io/revision": "3" }, resourceVersion: "12345", generation: 3 },
  spec: { replicas: 3, selector: { matchLabels: { app: "web" } }, template: { spec: { containers: [{ name: "web", image: "nginx:1.27", ports: [{ containerPort: 80 }] }] } } },
  status: { observedGeneration: 3, replicas: 3, readyReplicas: 3, updatedReplicas: 3, availableReplicas: 3, conditions: [
    { type: "Available", status: "True", reason: "MinimumReplicasAvailable", lastTransitionTime: "2026-01-01T00:00:00Z" },
    { type: "Progressing", status: "True", reason: "NewReplicaSetAvailable", lastTransitionTime: "2026-01-01T00:00:00Z" },
  ] },
};

const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) / 1024;

async function healthz(): Promise<{ url: string; server: Server }> {
  const app = express();
  app.get("/healthz", (_req, res) => { res.send("ok"); });
  const server: Server = await new Promise((r) => { const s = app.listen(0, "127.0.0.1", () => r(s)); });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`, server };
}

/** Pings /healthz every 10 ms for `ms`, measuring each answer and the event loop's delay. */
async function window(url: string, ms: number): Promise<LatencyWindow> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const lat: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    await (await fetch(url)).text();
    lat.push(performance.now() - t);
    await sleep(10);
  }
  h.disable();
  return { pings: lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99), max: Math.max(...lat), loopDelayP99: h.percentile(99) / 1e6, loopDelayMax: h.max / 1e6 };
}

export async function celBench(smoke: boolean): Promise<CelResult> {
  const n = smoke ? 100 : 5_000;
  const windowMs = smoke ? 800 : 10_000;
  const noWorkers = rssMiB();

  // Refused at compile time: the review's expressions never reach a worker.
  let t = performance.now();
  for (let i = 0; i < n; i++) for (const src of [NESTED_ALL, NESTED_MAPS]) { try { compileCondition(src, "condition", ["object"]); } catch { /* expected */ } }
  const refuseUs = ((performance.now() - t) / (2 * n)) * 1000;

  // Before: the same work on the calling thread.
  const { cel, env } = celLibrary();
  const program = cel.plan(env, cel.parse(CONDITION + "\n"));
  t = performance.now();
  for (let i = 0; i < n; i++) {
    const r = program({ object: toCelInput(OBJECT) } as Record<string, CelInput> as never);
    if (cel.isCelError(r) || fromCelValue(r) !== true) throw new Error("in-thread evaluation went wrong");
  }
  const inThreadUs = ((performance.now() - t) / n) * 1000;

  const cond = compileCondition(CONDITION, "condition", ["object"]);
  await Promise.all([cond.test({ object: OBJECT }), cond.test({ object: OBJECT })]); // workers started
  const workersIdle = rssMiB();
  t = performance.now();
  for (let i = 0; i < n; i++) if (!(await cond.test({ object: OBJECT }))) throw new Error("worker evaluation went wrong");
  const workerUs = ((performance.now() - t) / n) * 1000;
  t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => { while (next++ < n) await cond.test({ object: OBJECT }); }));
  const workerPerS = n / ((performance.now() - t) / 1000);

  const { url, server } = await healthz();
  await window(url, smoke ? 100 : 300); // warm the HTTP path
  const idle = await window(url, windowMs);

  // Hostile: keep every worker busy with the review's expressions (sent straight to the pool:
  // compileExpression refuses them) until the window ends.
  const pool = celPool();
  const before = { ...pool.stats };
  let peak = rssMiB();
  const sampler = setInterval(() => { peak = Math.max(peak, rssMiB()); }, 20);
  let running = true;
  let stopped = 0;
  const bombs = [NESTED_ALL, NESTED_MAPS, NESTED_LISTS];
  const loops = Array.from({ length: pool.options.size }, async (_, i) => {
    for (let k = i; running; k++) {
      try { await pool.evaluate(bombs[k % bombs.length]!, {}); } catch { stopped++; }
    }
  });
  const hostileWindow = await window(url, windowMs);
  running = false;
  await Promise.all(loops);
  clearInterval(sampler);
  server.close();
  if (!(await cond.test({ object: OBJECT }))) throw new Error("the pool did not recover");
  const result: CelResult = {
    runtime: import.meta.url.endsWith(".ts") ? "tsx" : "compiled",
    pool: { size: pool.options.size, timeoutMs: pool.options.timeoutMs, maxHeapMiB: pool.options.maxHeapMiB },
    evaluations: n, inThreadUs, workerUs, workerPerS, idle,
    hostile: { ...hostileWindow, stopped, byTime: pool.stats.timeouts - before.timeouts, byMemory: pool.stats.outOfMemory - before.outOfMemory },
    refuseUs,
    rssMiB: { noWorkers, workersIdle, hostilePeak: peak },
  };
  await closeCel();
  return result;
}

export function celMarkdown(r: CelResult): string {
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
  const row = (name: string, w: LatencyWindow) => `| ${name} | ${w.pings} | ${f(w.p50)} | ${f(w.p99)} | ${f(w.max)} | ${f(w.loopDelayP99)} | ${f(w.loopDelayMax)} |`;
  return [
    `Pool: ${r.pool.size} workers, deadline ${r.pool.timeoutMs} ms, heap ${r.pool.maxHeapMiB} MiB each (the executor's defaults); ${r.runtime}.`,
    "",
    "| /healthz on 127.0.0.1, every 10 ms | answers | p50 ms | p99 ms | max ms | event-loop delay p99 ms | max ms |",
    "|---|---|---|---|---|---|---|",
    row("idle", r.idle),
    row(`hostile expressions in flight on every worker (${r.hostile.stopped} stopped: ${r.hostile.byTime} at the deadline, ${r.hostile.byMemory} by the heap limit)`, r.hostile),
    "",
    `Ordinary condition (\`exists\` over a Deployment's conditions and a comparison), ${r.evaluations} evaluations: in-thread (before) ${f(r.inThreadUs)} µs each, in a worker ${f(r.workerUs)} µs each one at a time (the round trip: structured clone, conversion in the worker, reply), ${f(r.workerPerS)} evaluations/s with 64 in flight. ` +
      `The review's two expressions are refused at compile time in ${f(r.refuseUs)} µs. RSS: ${f(r.rssMiB.noWorkers)} MiB without workers, ${f(r.rssMiB.workersIdle)} MiB with them idle, ${f(r.rssMiB.hostilePeak)} MiB at most while the hostile expressions ran.`,
  ].join("\n");
}

/** Runs the bench in a child process: compiled as the image runs it, or under tsx (smoke: no time to compile). */
export async function runCelBench(smoke: boolean, compiledEntry?: string): Promise<CelResult> {
  const { execFile } = await import("node:child_process");
  const args = compiledEntry ? [compiledEntry] : ["--import", "tsx", "bench/cel.ts", ...(smoke ? ["--smoke"] : [])];
  const out: string = await new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 1 << 20, timeout: 300_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  return JSON.parse(out.trim().split("\n").at(-1)!) as CelResult;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const r = await celBench(process.argv.includes("--smoke"));
  process.stdout.write(process.argv.includes("--markdown") ? celMarkdown(r) + "\n" : JSON.stringify(r) + "\n");
}
