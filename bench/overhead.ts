// 1. Overhead: an Application whose workflow makes one call to a target on 127.0.0.1, with our
// `http-request` versus KubeVela's built-in `request`, on the real controller with default flags.
// Runs are interleaved (the order of the variants rotates every round), one Application at a
// time; the wall time runs from the create call to the first watch event showing the Application
// `running` with its workflow finished.
//
// Two more passes explain the result: the same pair after an `apply-component` step (a realistic
// workflow), and a breakdown with two bench-only definitions (bench/lib/variants.ts): the built-in
// `request` plus the read our definitions make, and our `http-request` without that read.
import type { BenchContext } from "./lib/context.js";
import { application, createObject, deleteObject, stepOf, tempNamespace, waitGone, watchApplications, workflowDone } from "./lib/cluster.js";
import { fmt, log, mean, median, percentile, sleep } from "./lib/common.js";
import { hasFlag } from "./lib/executor.js";
import { installVariants, VARIANT_NOTES } from "./lib/variants.js";

export interface OverheadRun { variant: string; i: number; wallMs: number; executorPolls?: number; executorMs?: number; confirmMs?: number; targetCalls: number }
export interface VariantStats { n: number; median: number; p95: number; mean: number; min: number; max: number }
export interface OverheadPass { title: string; shape: "call-only" | "after-apply-component"; executorFlags: string[]; n: number; warmup: number; variants: string[]; runs: OverheadRun[]; stats: Record<string, VariantStats> }

export interface OverheadResult {
  main: OverheadPass;
  realistic?: OverheadPass;
  /** The same as `main` with the executor's session confirmation off (when the executor has that flag). */
  unconfirmed?: OverheadPass;
  breakdown?: OverheadPass;
  ratioMedian: number;
  ratioP95: number;
}

const OURS = new Set(["http-request", "bench-http-request-noreads"]);

function stepFor(variant: string, url: string) {
  return { name: "call", type: variant, properties: { url: `${url}/fast`, method: "POST", body: { paths: ["/index.html"] } } };
}

const CONFIG_COMPONENT = (name: string) => ({
  name: `${name}-config`,
  type: "k8s-objects",
  properties: { objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `${name}-config` }, data: { deployedBy: "kubevela" } }] },
});

async function runPass(ctx: BenchContext, title: string, shape: OverheadPass["shape"], variants: string[], n: number, warmup: number): Promise<OverheadPass> {
  const ns = await tempNamespace("bench-overhead");
  const watch = await watchApplications(ns.name);
  const runs: OverheadRun[] = [];
  try {
    for (let i = -warmup; i < n; i++) {
      const round = i + warmup;
      // Rotate the order each round so no variant always runs first or after the same one.
      const order = variants.map((_, k) => variants[(k + round) % variants.length]!);
      if (round % 2 === 1) order.reverse();
      for (const variant of order) {
        const name = `${variant}-${i < 0 ? `w${-i}` : i}`;
        const call = stepFor(variant, ctx.target.url);
        const app = shape === "call-only"
          ? application(ns.name, name, [call])
          : application(ns.name, name, [{ name: "deploy", type: "apply-component", properties: { component: `${name}-config` } }, call], [CONFIG_COMPONENT(name)]);
        const callsBefore = ctx.target.count("/fast");
        const t0 = performance.now();
        await createObject(app);
        const { at, app: done } = await watch.until(name, workflowDone, 120_000);
        const wallMs = at - t0;
        if (stepOf(done, "call")?.phase !== "succeeded" || done.status?.status !== "running") {
          throw new Error(`overhead run ${name} did not succeed: ${JSON.stringify(done.status?.workflow)}`);
        }
        const run: OverheadRun = { variant, i, wallMs, targetCalls: ctx.target.count("/fast") - callsBefore };
        if (OURS.has(variant)) {
          const stats = await ctx.executor.stats(true);
          run.executorPolls = stats.pollsByApp?.[`${ns.name}/${name}`] ?? 0;
          run.executorMs = stats.engineMsByApp?.[`${ns.name}/${name}`] ?? 0;
          const confirmMs = stats.confirmMsByApp?.[`${ns.name}/${name}`];
          if (confirmMs !== undefined) run.confirmMs = confirmMs;
        }
        if (i >= 0) runs.push(run);
        log(`overhead ${shape} ${name}: ${wallMs.toFixed(0)} ms${run.executorPolls !== undefined ? ` (${run.executorPolls} executor poll(s), ${run.executorMs!.toFixed(1)} ms in the engine)` : ""}`);
        await deleteObject(app);
        await waitGone(app);
        watch.forget(name);
        await sleep(150);
      }
    }
  } finally {
    watch.close();
    await ns.delete();
  }
  const stats: Record<string, VariantStats> = {};
  for (const v of variants) {
    const w = runs.filter((r) => r.variant === v).map((r) => r.wallMs);
    stats[v] = { n: w.length, median: median(w), p95: percentile(w, 95), mean: mean(w), min: Math.min(...w), max: Math.max(...w) };
  }
  return { title, shape, executorFlags: ctx.executor.flags, n, warmup, variants, runs, stats };
}

export async function overhead(ctx: BenchContext): Promise<OverheadResult> {
  const n = ctx.smoke ? 2 : ctx.overheadN;
  const main = await runPass(ctx, "Workflow = the call only", "call-only", ["http-request", "request"], n, ctx.smoke ? 1 : 2);
  const result: OverheadResult = {
    main,
    ratioMedian: main.stats["http-request"]!.median / main.stats.request!.median,
    ratioP95: main.stats["http-request"]!.p95 / main.stats.request!.p95,
  };
  if (ctx.smoke) return result;
  result.realistic = await runPass(ctx, "Workflow = apply-component (a ConfigMap), then the call", "after-apply-component", ["http-request", "request"], Math.ceil(n / 2), 1);
  // Steps with side effects may wait for KubeVela's second poll before starting (the executor's
  // --confirm-session, default on): that costs one backoff round (1 s). Measure without it too.
  const confirmFlag = hasFlag("confirm-session");
  if (confirmFlag) {
    await ctx.restartExecutor(["--confirm-session", "off"]);
    result.unconfirmed = await runPass(ctx, "Workflow = the call only, executor with `--confirm-session off`", "call-only", ["http-request", "request"], n, 1);
  }
  await installVariants(ctx.addonDir, ctx.workDir, ctx.executor.url, ctx.executor.token);
  result.breakdown = await runPass(ctx, `Breakdown (bench-only definitions)${confirmFlag ? ", executor with `--confirm-session off`" : ""}`, "call-only",
    ["http-request", "request", "bench-request-1read", "bench-http-request-noreads"], Math.ceil(n / 2), 1);
  if (confirmFlag) await ctx.restartExecutor([]);
  return result;
}

function table(p: OverheadPass, baseline = "request"): string[] {
  const base = p.stats[baseline]!;
  return [
    "| step | n | min | median | mean | p95 | max | median vs `request` | median − `request` |",
    "|---|---|---|---|---|---|---|---|---|",
    ...p.variants.map((v) => {
      const s = p.stats[v]!;
      return `| \`${v}\` | ${s.n} | ${s.min.toFixed(0)} | ${s.median.toFixed(0)} | ${s.mean.toFixed(0)} | ${s.p95.toFixed(0)} | ${s.max.toFixed(0)} | ${fmt(s.median / base.median)} | ${(s.median - base.median).toFixed(0)} ms |`;
    }),
  ];
}

function raw(p: OverheadPass): string[] {
  return p.variants.map((v) => `- ${p.title}, \`${v}\`: ${p.runs.filter((x) => x.variant === v).map((x) => x.wallMs.toFixed(0)).join(", ")}`);
}

export function overheadMarkdown(r: OverheadResult): string {
  const m = r.main;
  const ours = [m, r.realistic, r.unconfirmed, r.breakdown].filter((p): p is OverheadPass => !!p).flatMap((p) => p.runs.map((x) => ({ ...x, flags: p.executorFlags.join(" ") || "defaults" }))).filter((x) => x.variant === "http-request");
  const engineMs = (r.unconfirmed ?? m).runs.filter((x) => x.variant === "http-request").map((x) => x.executorMs ?? 0);
  const verdict = (x: number) => (x <= 1.05 ? "meets the goal ≤ 1.05" : "**misses the goal ≤ 1.05**");
  const all = [m, r.realistic, r.unconfirmed, r.breakdown].filter((p): p is OverheadPass => !!p);
  const out = [
    `Wall time in ms: \`create\` of the Application → first watch event with \`status.status: running\` and \`workflow.finished: true\`` +
      " (a watch rather than 100 ms polling, so the figures are not quantised). One Application at a time, variants interleaved; " +
      `warm-up runs (${m.warmup} per variant) not counted. The call: \`POST {target}/fast\` with body \`{"paths": ["/index.html"]}\`, answered \`200 {"ok":true,...}\` at once.`,
    "",
    `### ${m.title} (N = ${m.n} per variant; executor flags: ${m.executorFlags.join(" ") || "defaults"})`,
    "",
    ...table(m),
    "",
    `**Ratio http-request / request: median ${fmt(r.ratioMedian)} (${verdict(r.ratioMedian)}), p95 ${fmt(r.ratioP95)}.**`,
  ];
  if (r.realistic) {
    const s = r.realistic.stats;
    out.push("", `### ${r.realistic.title} (N = ${r.realistic.n} per variant)`, "", ...table(r.realistic), "",
      `Ratio: median ${fmt(s["http-request"]!.median / s.request!.median)}, p95 ${fmt(s["http-request"]!.p95 / s.request!.p95)}.`);
  }
  if (r.unconfirmed) {
    const s = r.unconfirmed.stats;
    out.push("", `### ${r.unconfirmed.title} (N = ${r.unconfirmed.n} per variant)`, "", ...table(r.unconfirmed), "",
      `Ratio: median ${fmt(s["http-request"]!.median / s.request!.median)}, p95 ${fmt(s["http-request"]!.p95 / s.request!.p95)}.`);
  }
  if (r.breakdown) {
    out.push("", `### ${r.breakdown.title} (N = ${r.breakdown.n} per variant)`, "", ...table(r.breakdown), "", ...VARIANT_NOTES);
  }
  const byFlags = new Map<string, number[]>();
  for (const x of ours) byFlags.set(x.flags, [...(byFlags.get(x.flags) ?? []), x.executorPolls ?? -1]);
  const pollLine = [...byFlags].map(([flags, counts]) => {
    const h = new Map<number, number>();
    for (const c of counts) h.set(c, (h.get(c) ?? 0) + 1);
    return `executor ${flags}: ${counts.filter((c) => c === 1).length} of ${counts.length} runs answered on the first poll (polls per run: ${[...h].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k} × ${v}`).join(", ")})`;
  });
  out.push(
    "",
    "### First evaluation",
    "",
    "Does a fast call finish within the step's first evaluation? The executor waits up to `--first-answer-wait` (1 s) on a run's first poll for a quick result, so it can answer `succeeded` at once and the workflow never enters KubeVela's wait backoff. Polls the executor received per `http-request` run:",
    "",
    ...pollLine.map((l) => `- ${l}.`),
    "",
    `Time the engine spent answering the polls of one run (${r.unconfirmed ? "`--confirm-session off` pass; " : ""}the call to the target included): median ${fmt(median(engineMs))} ms, p95 ${fmt(percentile(engineMs, 95))} ms. ` +
      `Every run called the target exactly once: ${all.every((p) => p.runs.every((x) => x.targetCalls === 1)) ? "yes" : "**no**"}.`,
    "",
    "<details><summary>raw wall times (ms), in run order</summary>",
    "",
    ...all.flatMap(raw),
    "",
    "</details>",
  );
  return out.join("\n");
}
