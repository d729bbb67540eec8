// 2. Reaction latency without wake-up: a ConfigMap's condition (data.enabled == "true") becomes
// true → the waiting workflow step is `succeeded`. Three ways to wait, all on the real controller
// with default flags, all Applications waiting at the same time:
//   read-object-and-wait  ours: the executor follows the object by watch (server/kube/object-watch.ts);
//                         KubeVela re-evaluates the step (one executor poll) on its wait backoff
//   bench-wait-object     built-in providers only: kube.#Read + builtin.#ConditionalWait, also on
//                         KubeVela's wait backoff (the built-in `read-object` step cannot wait)
//   suspend + resume      the built-in `suspend` step, resumed by an external watcher that
//                         watches the ConfigMap and runs `vela workflow resume` (push, no polling)
// The condition turns true D seconds after the step started waiting, D spread from 2 s to
// `maxDelayS`, because KubeVela's backoff (1 s for five polls, then 3, 6, 12, 25, 51, 60 s while
// the step message stays the same) makes the latency depend on how long a step has waited.
//   read-object-and-wait  ours again, with the executor's wake-up on (its default): when the
//   + wake-up             condition holds, the executor patches the Application's metadata so
//                         KubeVela evaluates the step at once (docs/runs.md §6). Measured in a
//                         round of its own, before the others, because wake-up is an executor flag.
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { BenchContext } from "./lib/context.js";
import { application, createObject, kube, run, stepOf, tempNamespace, watchApplications } from "./lib/cluster.js";
import { fmt, log, percentile, pool, sleep } from "./lib/common.js";
import { hasFlag } from "./lib/executor.js";
import { installWaitDefinition } from "./lib/variants.js";

export type WaitVariant = "read-object-and-wait+wake" | "read-object-and-wait" | "bench-wait-object" | "suspend";
export const WAIT_VARIANTS: WaitVariant[] = ["read-object-and-wait+wake", "read-object-and-wait", "bench-wait-object", "suspend"];
const SHORT: Record<WaitVariant, string> = { "read-object-and-wait+wake": "wake", "read-object-and-wait": "ours", "bench-wait-object": "builtin", suspend: "suspend" };

export interface ReactionSample { variant: WaitVariant; delayS: number; latencyMs: number; resumeCliMs?: number }
export interface ReactionResult { perVariant: number; maxDelayS: number; executorFlags: string[]; wakeExecutorFlags?: string[]; samples: ReactionSample[]; failures: string[] }

function stepFor(variant: WaitVariant, flag: string) {
  switch (variant) {
    case "read-object-and-wait":
    case "read-object-and-wait+wake":
      return { name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: flag, condition: "object.data.enabled == 'true'", timeout: "10m" } };
    case "bench-wait-object":
      return { name: "wait", type: variant, properties: { name: flag } };
    case "suspend":
      return { name: "wait", type: "suspend", properties: { message: `waiting for ConfigMap ${flag}` } };
  }
}

export async function reaction(ctx: BenchContext): Promise<ReactionResult> {
  const perVariant = ctx.reaction?.perVariant ?? (ctx.smoke ? 1 : 20);
  const maxDelayS = ctx.reaction?.maxDelayS ?? (ctx.smoke ? 2 : 120);
  await installWaitDefinition(ctx.workDir);
  const samples: ReactionSample[] = [];
  const failures: string[] = [];
  // Round 1: ours with wake-up (the executor's default, when it has the flag).
  const hasWake = hasFlag("wake");
  let wakeExecutorFlags: string[] | undefined;
  if (hasWake) {
    wakeExecutorFlags = ctx.executor.flags;
    await round(["read-object-and-wait+wake"], perVariant, maxDelayS, samples, failures);
  }
  // Round 2: ours without wake-up, against the built-in ways, interleaved.
  if (hasWake) await ctx.restartExecutor(["--wake", "off"]);
  const executorFlags = ctx.executor.flags;
  try {
    await round(WAIT_VARIANTS.filter((v) => v !== "read-object-and-wait+wake"), perVariant, maxDelayS, samples, failures);
  } finally {
    if (hasWake) await ctx.restartExecutor([]);
  }
  return { perVariant, maxDelayS, executorFlags, ...(wakeExecutorFlags ? { wakeExecutorFlags } : {}), samples, failures };
}

/** All Applications of `variants` wait at once; each condition turns true after its D seconds of waiting. */
async function round(variants: WaitVariant[], perVariant: number, maxDelayS: number, samples: ReactionSample[], failures: string[]): Promise<void> {
  const ns = await tempNamespace("bench-reaction");
  const watch = await watchApplications(ns.name);
  try {
    const items: { variant: WaitVariant; name: string; flag: string; delayS: number }[] = [];
    for (let j = 0; j < perVariant; j++) {
      const delayS = perVariant === 1 ? maxDelayS : 2 + (j * (maxDelayS - 2)) / (perVariant - 1);
      for (const variant of variants) items.push({ variant, name: `${SHORT[variant]}-${j}`, flag: `flag-${SHORT[variant]}-${j}`, delayS });
    }
    for (const it of items) {
      await createObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: it.flag, namespace: ns.name }, data: { enabled: "false" } } as never);
    }
    await pool(items, 4, (it) => createObject(application(ns.name, it.name, [stepFor(it.variant, it.flag)])));
    log(`reaction: ${items.length} Applications waiting; conditions turn true after ${items[0]!.delayS.toFixed(0)}–${maxDelayS} s`);

    await Promise.all(items.map(async (it) => {
      try {
        // Waiting: ours and the built-in poll show the step `running`, suspend shows `suspending`.
        const waiting = await watch.until(it.name, (a) => ["running", "suspending"].includes(stepOf(a, "wait")?.phase ?? "") || a.status?.workflow?.suspend === true, 120_000);
        await sleep(Math.max(0, waiting.at + it.delayS * 1000 - performance.now()));
        await kube().core.patchNamespacedConfigMap({ name: it.flag, namespace: ns.name, body: { data: { enabled: "true" } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
        const flippedAt = performance.now();
        let resumeCliMs: number | undefined;
        if (it.variant === "suspend") {
          // The external watcher's reaction, done here: it sees the change (a watch would deliver it
          // within milliseconds) and resumes the workflow with the CLI.
          const t = performance.now();
          await run("vela", ["workflow", "resume", it.name, "-n", ns.name]);
          resumeCliMs = performance.now() - t;
        }
        const done = await watch.until(it.name, (a) => stepOf(a, "wait")?.phase === "succeeded", 180_000);
        samples.push({ variant: it.variant, delayS: it.delayS, latencyMs: done.at - flippedAt, ...(resumeCliMs !== undefined ? { resumeCliMs } : {}) });
        log(`reaction ${it.name}: condition true after ${it.delayS.toFixed(0)} s of waiting → succeeded ${((done.at - flippedAt) / 1000).toFixed(2)} s later`);
      } catch (err) {
        failures.push(`${it.name}: ${(err as Error).message.slice(0, 300)}`);
      }
    }));
  } finally {
    watch.close();
    await ns.delete();
  }
}


const BUCKETS: [string, number, number][] = [["waited ≤ 5 s", 0, 5], ["5–30 s", 5, 30], ["30–120 s", 30, 1e9]];

export function reactionMarkdown(r: ReactionResult): string {
  const lines = [
    `${r.perVariant} Applications per way of waiting, all waiting at once; the condition turns true after D seconds of waiting, D evenly spread over 2–${r.maxDelayS} s ` +
      `(the same D values for each way). Latency: the ConfigMap patch returns → the first watch event with the step \`succeeded\`. ` +
      `Executor flags: ${r.executorFlags.join(" ") || "defaults"}${r.wakeExecutorFlags ? ` (with wake-up: ${r.wakeExecutorFlags.join(" ") || "defaults"}, in a round of its own before the others)` : ""}.`,
    "",
    "| way of waiting | n | p50 (s) | p95 (s) | max (s) | p50 by how long the step had waited: " + BUCKETS.map((b) => b[0]).join(" / ") + " |",
    "|---|---|---|---|---|---|",
  ];
  for (const v of WAIT_VARIANTS) {
    const s = r.samples.filter((x) => x.variant === v);
    if (s.length === 0) continue;
    const l = s.map((x) => x.latencyMs / 1000);
    const byBucket = BUCKETS.map(([, lo, hi]) => {
      const b = s.filter((x) => x.delayS > lo && x.delayS <= hi).map((x) => x.latencyMs / 1000);
      return b.length ? `${fmt(percentile(b, 50))} (n=${b.length})` : "–";
    }).join(" / ");
    const label = v === "read-object-and-wait+wake" ? "`read-object-and-wait` (ours, wake-up on: the default)" : v === "read-object-and-wait" ? "`read-object-and-wait` (ours, wake-up off)" : v === "bench-wait-object" ? "built-in poll: `kube.#Read` + `#ConditionalWait`" : "built-in `suspend` + watcher running `vela workflow resume`";
    lines.push(`| ${label} | ${s.length} | ${fmt(percentile(l, 50))} | ${fmt(percentile(l, 95))} | ${fmt(Math.max(...l))} | ${byBucket} |`);
  }
  const cli = r.samples.filter((x) => x.resumeCliMs !== undefined).map((x) => x.resumeCliMs!);
  if (cli.length) lines.push("", `Of the suspend + resume latency, the \`vela workflow resume\` command itself took p50 ${fmt(percentile(cli, 50) / 1000)} s (CLI start-up included).`);
  if (r.failures.length) lines.push("", `Failures (${r.failures.length}):`, ...r.failures.map((f) => `- ${f}`));
  lines.push(
    "",
    "<details><summary>raw samples: D (s) → latency (s)</summary>",
    "",
    ...WAIT_VARIANTS.map((v) => `- ${v}: ${r.samples.filter((x) => x.variant === v).sort((a, b) => a.delayS - b.delayS).map((x) => `${x.delayS.toFixed(0)}→${(x.latencyMs / 1000).toFixed(2)}`).join(", ")}`),
    "",
    "</details>",
  );
  return lines.join("\n");
}
