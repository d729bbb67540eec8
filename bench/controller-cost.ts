// 4. Controller cost: requests to the kube-apiserver per waiting step per minute, ours versus the
// built-in way of waiting, from the apiserver's own counter (apiserver_request_total, /metrics):
// deltas over consecutive one-minute windows after M Applications start waiting on a condition
// that never holds, minus the idle rate of the control plane measured first. Phases run one after
// the other (the counter has no label telling clients apart); the executor counts its own reads.
// Also the CPU seconds of vela-core, kube-apiserver, etcd and the executor in each window.
import type { BenchContext } from "./lib/context.js";
import { apiserverRequests, application, componentCpu, createObject, deltaRequests, tempNamespace, total, watchApplications, stepOf } from "./lib/cluster.js";
import { fmt, log, pool, sleep } from "./lib/common.js";
import { installWaitDefinition } from "./lib/variants.js";

export type CostVariant = "read-object-and-wait" | "bench-wait-object" | "suspend";

export interface CostWindow {
  fromS: number;
  toS: number;
  requests: Record<string, number>;
  totalPerStepPerMin: number;
  executorReadsPerStepPerMin: number;
  cpuSecondsPerStepPerMin: Record<string, number>;
}
export interface CostPhase { variant: CostVariant; steps: number; windows: CostWindow[] }
export interface CostResult { steps: number; windowS: number; executorFlags: string[]; baselinePerMin: number; baselineRequests: Record<string, number>; phases: CostPhase[] }

function stepFor(variant: CostVariant, flag: string) {
  if (variant === "read-object-and-wait") return { name: "wait", type: variant, properties: { apiVersion: "v1", kind: "ConfigMap", name: flag, condition: "object.data.enabled == 'true'", timeout: "1h" } };
  if (variant === "bench-wait-object") return { name: "wait", type: variant, properties: { name: flag } };
  return { name: "wait", type: "suspend", properties: {} };
}

async function snapshot(ctx: BenchContext) {
  const [req, stats] = await Promise.all([apiserverRequests(), ctx.executor.stats()]);
  const cpu: Record<string, number> = { ...componentCpu(), executor: ctx.executor.proc().cpuSeconds };
  return { req, reads: stats.kubeRequestsTotal, cpu, at: performance.now() };
}

export async function controllerCost(ctx: BenchContext): Promise<CostResult> {
  const steps = ctx.smoke ? 2 : 20;
  const windowS = ctx.smoke ? 2 : 60;
  const windows = ctx.smoke ? 1 : 3;
  await installWaitDefinition(ctx.workDir);

  // The idle control plane (leases, controllers' resyncs), to subtract.
  log(`controller cost: idle baseline for ${windowS} s`);
  const b0 = await snapshot(ctx);
  await sleep(windowS * 1000);
  const b1 = await snapshot(ctx);
  const baseline = deltaRequests(b0.req, b1.req);
  const baselinePerMin = (total(baseline) * 60_000) / (b1.at - b0.at);

  const phases: CostPhase[] = [];
  for (const variant of ["read-object-and-wait", "bench-wait-object", "suspend"] as CostVariant[]) {
    const ns = await tempNamespace("bench-cost");
    const watch = await watchApplications(ns.name);
    try {
      const names = Array.from({ length: steps }, (_, i) => `w${i}`);
      for (const n of names) await createObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `flag-${n}`, namespace: ns.name }, data: { enabled: "false" } } as never);
      log(`controller cost: ${steps} × ${variant}, window(s) of ${windowS} s`);
      let prev = await snapshot(ctx);
      const t0 = prev.at;
      await pool(names, 4, (n) => createObject(application(ns.name, n, [stepFor(variant, `flag-${n}`)])));
      const phase: CostPhase = { variant, steps, windows: [] };
      // The suspended workflow does nothing while it waits: one window shows it.
      const phaseWindows = variant === "suspend" ? 1 : windows;
      for (let w = 0; w < phaseWindows; w++) {
        await sleep(Math.max(0, t0 + (w + 1) * windowS * 1000 - performance.now()));
        const cur = await snapshot(ctx);
        const minutes = (cur.at - prev.at) / 60_000;
        const d = deltaRequests(prev.req, cur.req);
        // Subtract the idle rate, per key.
        const net: Record<string, number> = {};
        for (const [k, v] of d) {
          const idle = ((baseline.get(k) ?? 0) * (cur.at - prev.at)) / (b1.at - b0.at);
          const perStepPerMin = (v - idle) / steps / minutes;
          if (Math.abs(perStepPerMin) >= 0.05) net[k] = perStepPerMin;
        }
        const cpu: Record<string, number> = {};
        for (const [k, v] of Object.entries(cur.cpu)) {
          const idleCpu = ((b1.cpu[k] ?? 0) - (b0.cpu[k] ?? 0)) * (cur.at - prev.at) / (b1.at - b0.at);
          cpu[k] = ((v - (prev.cpu[k] ?? 0)) - idleCpu) / steps / minutes;
        }
        phase.windows.push({
          fromS: (prev.at - t0) / 1000,
          toS: (cur.at - t0) / 1000,
          requests: net,
          totalPerStepPerMin: Object.values(net).reduce((a, b) => a + b, 0),
          executorReadsPerStepPerMin: ((cur.reads - prev.reads) - ((b1.reads - b0.reads) * (cur.at - prev.at)) / (b1.at - b0.at)) / steps / minutes,
          cpuSecondsPerStepPerMin: cpu,
        });
        log(`controller cost ${variant} window ${w + 1}: ${fmt(phase.windows.at(-1)!.totalPerStepPerMin)} requests per step per minute`);
        prev = cur;
      }
      // Sanity: every step was still waiting at the end.
      const notWaiting = names.filter((n) => !["running", "suspending"].includes(stepOf(watch.latest(n) ?? {}, "wait")?.phase ?? ""));
      if (notWaiting.length) log(`controller cost ${variant}: ${notWaiting.length} steps were not waiting at the end (${notWaiting.slice(0, 3).join(", ")})`);
      phases.push(phase);
    } finally {
      watch.close();
      await ns.delete();
      await sleep(ctx.smoke ? 0 : 10_000);
    }
  }
  return { steps, windowS, executorFlags: ctx.executor.flags, baselinePerMin, baselineRequests: Object.fromEntries(baseline), phases };
}

const LABEL: Record<CostVariant, string> = {
  "read-object-and-wait": "`read-object-and-wait` (ours)",
  "bench-wait-object": "built-in poll (`kube.#Read` + `#ConditionalWait`)",
  suspend: "built-in `suspend` (woken by a watcher)",
};

export function controllerCostMarkdown(r: CostResult): string {
  const keys = new Set<string>();
  for (const p of r.phases) for (const w of p.windows) for (const k of Object.keys(w.requests)) keys.add(k);
  const lines = [
    `${r.steps} Applications per phase, each with one step waiting on its own ConfigMap whose condition never holds; phases one after another. ` +
      `Windows of ${r.windowS} s from the moment the Applications are created. Figures are per waiting step per minute, after subtracting the idle control plane ` +
      `(${fmt(r.baselinePerMin)} requests/min in total while idle). Executor flags: ${r.executorFlags.join(" ") || "defaults"}.`,
    "",
    "| way of waiting | window | requests / step / min | of which the executor's | vela-core CPU ms / step / min | kube-apiserver CPU ms | etcd CPU ms | executor CPU ms |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const p of r.phases) {
    for (const w of p.windows) {
      const c = w.cpuSecondsPerStepPerMin;
      const ms = (x?: number) => (x === undefined ? "–" : fmt(Math.max(0, x * 1000)));
      lines.push(`| ${LABEL[p.variant]} | ${w.fromS.toFixed(0)}–${w.toS.toFixed(0)} s | ${fmt(w.totalPerStepPerMin)} | ${p.variant === "read-object-and-wait" ? fmt(w.executorReadsPerStepPerMin) : "–"} | ${ms(c["vela-core"])} | ${ms(c["kube-apiserver"])} | ${ms(c.etcd)} | ${p.variant === "read-object-and-wait" ? ms(c.executor) : "–"} |`);
    }
  }
  lines.push("", "Requests per step per minute by verb and resource (last window of each phase):", "",
    `| request | ${r.phases.map((p) => LABEL[p.variant]).join(" | ")} |`,
    `|---|${r.phases.map(() => "---").join("|")}|`);
  for (const k of [...keys].sort()) {
    lines.push(`| \`${k}\` | ${r.phases.map((p) => { const v = p.windows.at(-1)!.requests[k]; return v === undefined ? "–" : fmt(v); }).join(" | ")} |`);
  }
  return lines.join("\n");
}
