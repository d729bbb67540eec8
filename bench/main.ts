// The benchmark driver (npm run bench → bench/run.sh → here). Needs the local control plane
// (KUBECONFIG, kubectl and vela on PATH: bench/run.sh provides them) and the assembled addon.
//
//   node --import tsx bench/main.ts --addon DIR --work DIR [--smoke] [--only overhead,reaction,cost,hang,scale,cel,template,idle] [--out FILE]
//
// Full run: every bench, then BENCHMARKS.md (or --out). --smoke: tiny sizes, same code paths,
// prints a summary and writes nothing (CI runs it so the benches never rot).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runCelBench, type CelResult } from "./cel.js";
import { controllerCost, controllerCostMarkdown, type CostResult } from "./controller-cost.js";
import { hang, hangMarkdown, type HangResult } from "./hang.js";
import { idleMarkdown, idleMemory, type IdleResult } from "./idle.js";
import { enableAddon, execText, velaCoreFlags } from "./lib/cluster.js";
import { log, machine, median, versions } from "./lib/common.js";
import type { BenchContext } from "./lib/context.js";
import { compileExecutor, startExecutor } from "./lib/executor.js";
import { freePort } from "./lib/target.js";
import { startTarget } from "./lib/target.js";
import { overhead, overheadMarkdown, type OverheadResult } from "./overhead.js";
import { reaction, reactionMarkdown, type ReactionResult } from "./reaction.js";
import { renderReport } from "./report.js";
import { scale, type ScaleResult } from "./scale.js";
import { templateCpu, templateCpuMarkdown, type TemplateCpuResult } from "./template-cpu.js";

const { values } = parseArgs({
  options: {
    addon: { type: "string" },
    work: { type: "string" },
    smoke: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string", default: "BENCHMARKS.md" },
    "overhead-n": { type: "string", default: "30" },
    /** JSON list of scale levels (bench/scale.ts Level), instead of the standard ones. */
    "scale-levels": { type: "string" },
    /** Re-render the report from a results file written by an earlier run (bench/.results/*.json); runs nothing. */
    render: { type: "string" },
  },
});
if (values.render) {
  const saved = JSON.parse(readFileSync(values.render, "utf8")) as { header: Parameters<typeof renderReport>[0]["header"]; results: Results; durationS: number };
  writeFileSync(values.out!, renderReport({ ...saved, sections: { overheadMarkdown, reactionMarkdown, controllerCostMarkdown, hangMarkdown, templateCpuMarkdown, idleMarkdown } }));
  log(`re-rendered ${values.out} from ${values.render}`);
  process.exit(0);
}
if (!values.addon || !values.work) {
  process.stderr.write("usage: bench/main.ts --addon DIR --work DIR [--smoke] [--only overhead,reaction,cost,hang,scale,cel,template,idle] [--out FILE]\n(run it through `npm run bench`)\n");
  process.exit(2);
}
const only = new Set((values.only ?? "overhead,reaction,cost,hang,scale,cel,template,idle").split(",").map((s) => s.trim()));
const smoke = values.smoke!;
const started = new Date();
const t0 = performance.now();

export interface Results {
  overhead?: OverheadResult;
  reaction?: ReactionResult;
  cost?: CostResult;
  scale?: ScaleResult;
  cel?: CelResult;
  hang?: HangResult;
  template?: TemplateCpuResult;
  idle?: IdleResult;
  errors: Record<string, string>;
}
const results: Results = { errors: {} };

async function section<T>(name: string, f: () => Promise<T>): Promise<T | undefined> {
  const s = performance.now();
  try {
    log(`── ${name}`);
    const r = await f();
    log(`── ${name} done in ${((performance.now() - s) / 1000).toFixed(0)} s`);
    return r;
  } catch (err) {
    const msg = (err as Error).stack ?? String(err);
    log(`── ${name} FAILED: ${msg}`);
    results.errors[name] = msg;
    return undefined;
  }
}

const target = await startTarget();
// The executor the Applications call: server/main.ts with its default flags (compiled; tsx for the
// smoke run, which has no time to compile), on a fixed port so it can be restarted with other
// flags without enabling the addon again.
const runtime = smoke ? "tsx" : "compiled";
const port = await freePort();
let executor = await startExecutor({ runtime, port });
const ctx: BenchContext = {
  smoke, executor, target, overheadN: Number(values["overhead-n"]), addonDir: values.addon, workDir: values.work,
  async restartExecutor(flags) {
    await ctx.executor.stop();
    executor = await startExecutor({ runtime, port, token: ctx.executor.token, flags });
    ctx.executor = executor;
    log(`executor restarted with flags: ${flags.join(" ") || "(defaults)"}`);
    return executor;
  },
};
const header = {
  machine: machine(),
  versions: versions(),
  git: await execText("git", ["describe", "--always", "--dirty"]),
  dirtyFiles: (await execText("git", ["diff", "--name-only", "HEAD"])).split("\n").filter(Boolean).filter((f) => !f.startsWith("bench/") && f !== "BENCHMARKS.md" && f !== "package.json"),
  velaCoreFlags: await velaCoreFlags(),
  executorCommand: executor.command,
  started: started.toISOString(),
};

try {
  // Always: the addon also installs what the executor may need in the cluster (e.g. its run-record CRD).
  log(`enabling the addon against the executor at ${executor.url}`);
  await enableAddon(ctx.addonDir, executor.url, executor.token);
  if (only.has("overhead")) results.overhead = await section("1. overhead", () => overhead(ctx));
  if (only.has("reaction")) results.reaction = await section("2. reaction latency", () => reaction(ctx));
  if (only.has("cost")) results.cost = await section("4. controller cost", () => controllerCost(ctx));
  if (only.has("hang")) results.hang = await section("6. executor hang", () => hang(ctx));
  // A replica beside the bench executor, with its token (it writes the namespaces' Secrets too).
  if (only.has("idle")) results.idle = await section("8. idle memory", () => idleMemory(smoke, ctx.executor.token));
} finally {
  await ctx.executor.stop();
}
if (only.has("scale")) results.scale = await section("3. executor scale", () => scale(ctx, values["scale-levels"] ? JSON.parse(values["scale-levels"]) : undefined));
// No cluster needed: the executor's CEL pool in a process of its own (compiled, as the image runs it).
if (only.has("cel")) {
  results.cel = await section("5. CEL bounds", async () => {
    if (!smoke) await compileExecutor();
    return runCelBench(smoke, smoke ? undefined : "bench/.build/bench/cel.js");
  });
}
// No cluster needed: KubeVela's step runner evaluating the assembled definitions.
if (only.has("template")) results.template = await section("7. template CPU", () => templateCpu(values.addon!, smoke));
await target.close();

const durationS = (performance.now() - t0) / 1000;
if (smoke) {
  const o = results.overhead;
  const lines = [
    `bench smoke finished in ${durationS.toFixed(0)} s`,
    o ? `overhead: http-request median ${o.main.stats["http-request"]!.median.toFixed(0)} ms vs request ${o.main.stats.request!.median.toFixed(0)} ms (ratio ${o.ratioMedian.toFixed(2)}; tiny N, not a result)` : "",
    results.reaction ? `reaction: ${results.reaction.samples.length} samples, ${results.reaction.failures.length} failures` : "",
    results.cost ? `controller cost: ${results.cost.phases.length} phases measured` : "",
    results.hang ? `hang: unrelated Application median ${Math.round(median(results.hang.baselineMs))} ms healthy, ${Math.round(median(results.hang.hungMs))} ms with the executor stopped; ${results.hang.failures.length} failed waiting steps` : "",
    results.scale ? `scale: ${results.scale.levels.map((l) => `${l.level.mode} n=${l.level.n}: ${l.polls} polls, ${l.errors} errors`).join("; ")}` : "",
    results.template ? `template: ${results.template.rows.map((r) => `${r.variant.replace(/`/g, "")} ${r.msPerEvaluation.toFixed(1)} ms`).join("; ")} per evaluation` : "",
    results.idle ? `idle: ${results.idle.rows.map((r) => `${r.variant.replace(/`/g, "")} ${median(r.rssMiB).toFixed(0)} MiB`).join("; ")}` : "",
    results.cel ? `cel: /healthz p99 ${results.cel.hostile.p99.toFixed(1)} ms with hostile expressions in flight (idle ${results.cel.idle.p99.toFixed(1)} ms); ${results.cel.workerUs.toFixed(0)} µs per evaluation in a worker vs ${results.cel.inThreadUs.toFixed(0)} µs in-thread` : "",
    ...Object.entries(results.errors).map(([k, v]) => `FAILED ${k}: ${v.split("\n")[0]}`),
  ].filter(Boolean);
  process.stdout.write(lines.join("\n") + "\n");
  const bad = Object.keys(results.errors).length > 0 || (results.reaction?.failures.length ?? 0) > 0 || (results.hang?.failures.length ?? 0) > 0 || (results.scale?.levels.some((l) => l.errors > 0 || l.startFailures > 0) ?? false);
  process.exit(bad ? 1 : 0);
}

// The raw results, so the report can be re-rendered (--render) without running again.
mkdirSync("bench/.results", { recursive: true });
const resultsFile = `bench/.results/${started.toISOString().replace(/[:.]/g, "-")}.json`;
writeFileSync(resultsFile, JSON.stringify({ header, results, durationS }, null, 1));
log(`raw results in ${resultsFile}`);
const md = renderReport({ header, results, durationS, sections: { overheadMarkdown, reactionMarkdown, controllerCostMarkdown, hangMarkdown, templateCpuMarkdown, idleMarkdown } });
writeFileSync(values.out!, md);
log(`wrote ${values.out} (${durationS.toFixed(0)} s)`);
process.exit(Object.keys(results.errors).length > 0 ? 1 : 0);
