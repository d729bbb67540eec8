// Renders BENCHMARKS.md from the results of one `npm run bench` (or of a saved results file:
// bench/main.ts --render). Every sentence that states a figure takes it from the results.
import { celMarkdown, type CelResult } from "./cel.js";
import type { CostResult } from "./controller-cost.js";
import type { HangResult } from "./hang.js";
import { fmt, percentile } from "./lib/common.js";
import type { OverheadResult } from "./overhead.js";
import type { ReactionResult } from "./reaction.js";
import type { TemplateCpuResult } from "./template-cpu.js";
import type { IdleResult } from "./idle.js";
import { findLevel, scaleMarkdown, type LevelResult, type ScaleResult } from "./scale.js";

/** §3's memory figures before server/runs/active-run.ts and the bounded kube connections (BENCHMARKS.md of that run). */
const BEFORE_RUN_CLASSES = {
  date: "2026-12-07 15:10 UTC",
  cpu: "253 / 255 / 353 µs (+39 % at 10,000; each sweep then listed all 10,000 StepRuns, 20 pages every 5 s, and released the earlier levels' runs unpaced; now it lists only the runs others or nobody hold, and paces its writes: which of these flattened the curve was not measured apart); the in-memory store levels of that run were 283 / 218 µs at 1,000 / 10,000, so this run's absolute figures are higher at every level, the in-memory ones included (a busier machine): compare ratios within one run",
  text: "30 KiB per waiting `http-request` with the in-memory store (389 MiB at 10,000), 728 / 729 MiB at 10,000 waiting `http-request` / `read-object-and-wait` with the default store; " +
    "V8 heap per waiting step at 1,000 (the same heap-snapshot levels run on the code before, 2026-12-07 18:30 UTC): `http-request` 27.3 KiB (array backing stores 5451 B, closures 3555 B, Objects 3297 B, strings 2697 B), `read-object-and-wait` 17 KiB",
};

export interface Header {
  machine: { nproc: string; memGiB: string; cpuModel: string; loadavg: string; node: string; kernel: string };
  versions: Record<string, string>;
  git: string;
  dirtyFiles: string[];
  velaCoreFlags: string;
  executorCommand: string;
  started: string;
  /** When the report merges several runs (`--render` of a merged file): which run gave which sections. */
  sources?: { started: string; git: string; sections: string[] }[];
}

interface Input {
  header: Header;
  results: { overhead?: OverheadResult; reaction?: ReactionResult; cost?: CostResult; scale?: ScaleResult; cel?: CelResult; hang?: HangResult; template?: TemplateCpuResult; idle?: IdleResult; errors: Record<string, string> };
  durationS: number;
  sections: {
    overheadMarkdown: (r: OverheadResult) => string;
    reactionMarkdown: (r: ReactionResult) => string;
    controllerCostMarkdown: (r: CostResult) => string;
    hangMarkdown?: (r: HangResult) => string;
    templateCpuMarkdown?: (r: TemplateCpuResult) => string;
    idleMarkdown?: (r: IdleResult) => string;
  };
}

const ok = (pass: boolean) => (pass ? "met" : "**missed**");
const mib = (x: number) => x.toFixed(0);
const flagsOf = (f: string[] | undefined) => (f?.length ? `\`${f.join(" ")}\`` : "defaults");
const kubeTotal = (l: LevelResult) => Object.values(l.kubeRequestsPerS).reduce((a, b) => a + b, 0);

/** Figures of the object waits before they followed their object by watch (commit 19f8ef8, 2026-12-05, this machine; bench/.results of that day). */
const BEFORE_WATCH = {
  obj1k: "944 object GETs/s from the executor, kube-apiserver 45 % CPU, executor 80 % CPU, poll p99 789 ms",
  obj10k: "7,860 of the 10,000 runs did not start within 60 s and the executor stopped answering (the section failed)",
  cost: "59.5 requests per waiting step per minute in all, against 0.97 for the built-in poll",
};

/** Section 3 before the executor's own Kubernetes client (run of 2026-12-06 23:51 UTC, c64a98c, @kubernetes/client-node). */
const BEFORE_CLIENT =
  "1,000 waiting `http-request` steps: poll p99 48.1 ms, executor CPU 66.2 %; 1,000 waiting `read-object-and-wait`: poll p99 1777 ms (event-loop delay p99 65.7 ms), executor CPU 76.4 %; " +
  "CPU per poll at 100 → 1,000 → 10,000 waiting `http-request` steps 588 → 663 → 4948 µs; RSS idle 158–165 MiB, 703 MiB with 10,000 `http-request` (5,924 started in the budget), 1178 MiB with 10,000 `read-object-and-wait`";

export function renderReport({ header: h, results, durationS, sections }: Input): string {
  const { overhead: o, reaction: re, cost, scale: sc, cel, hang, template, idle, errors } = results;
  const out: string[] = [];
  const failed = (name: string) => (errors[name] ? `\n**This bench failed in this run:**\n\n\`\`\`\n${errors[name]!.split("\n").slice(0, 8).join("\n")}\n\`\`\`\n` : "");

  // ---- figures used in several places ----------------------------------------------------------
  const lat = (v: string) => re?.samples.filter((s) => s.variant === v).map((s) => s.latencyMs / 1000) ?? [];
  const reactWake = lat("read-object-and-wait+wake");
  const reactOurs = lat("read-object-and-wait");
  const reactBuiltin = lat("bench-wait-object");
  const reactSuspend = lat("suspend");
  const L = (mode: "http" | "object" | "github", n: number) => (sc ? findLevel(sc, mode, n) : undefined);
  const http100 = L("http", 100), http1k = L("http", 1000), http10k = L("http", 10000);
  const obj100 = L("object", 100), obj1k = L("object", 1000), obj10k = L("object", 10000);
  const gh10k = L("github", 10000);
  const withFlags = (mode: string, n: number, pred: (l: LevelResult) => boolean) => sc?.levels.find((l) => l.level.mode === mode && l.level.n === n && !l.level.profile && pred(l));
  const memStore = (l: LevelResult) => !!l.level.flags?.includes("memory") && !l.level.nodeFlags && l.level.runtime !== "tsx";
  const http1kMem = withFlags("http", 1000, memStore), http10kMem = withFlags("http", 10000, memStore), obj1kMem = withFlags("object", 1000, memStore);
  const http10kTsx = withFlags("http", 10000, (l) => l.level.runtime === "tsx");
  const httpHeap = sc?.levels.find((l) => l.level.mode === "http" && l.heapGrowth);
  const http10kPaced = sc?.levels.find((l) => l.level.mode === "http" && l.level.n === 10000 && l.level.createConcurrency);
  const defaultStoreIsKube = !!http1kMem; // memory-store levels exist only when the default store is another one
  const tlsPerCall = [http1k, obj100, obj1k].some((l) => l && kubeTotal(l) > 5 && l.kubeConnectionsPerS > 0.8 * kubeTotal(l));
  const costOf = (v: string) => cost?.phases.find((p) => p.variant === v)?.windows;
  const costOurs = costOf("read-object-and-wait"), costBuiltin = costOf("bench-wait-object"), costSuspend = costOf("suspend");

  out.push(
    "# Benchmarks",
    "",
    `Generated by \`npm run bench\` (bench/) on ${h.started.slice(0, 16).replace("T", " ")} UTC in ${fmt(durationS / 60)} min; do not edit by hand, run it again. ` +
      "Every ratio compares figures taken in the same run on the same machine; the machine is shared with other work and noisy, so read single figures as ±10–20 %.",
    "",
    ...(h.sources?.length ? [
      `Sections from ${h.sources.length} runs on this machine (\`bench/main.ts --render\` of their merged results): ` +
        h.sources.map((x) => `${x.sections.join(", ")} at ${x.started.slice(0, 16).replace("T", " ")} UTC (\`${x.git}\`)`).join("; ") + ".",
      "",
    ] : []),
    "## Summary",
    "",
    "| # | what | goal | measured | verdict |",
    "|---|---|---|---|---|",
  );
  if (o) {
    const u = o.unconfirmed?.stats;
    out.push(`| 1 | workflow wall time, \`http-request\` / built-in \`request\`, median (p95) | ≤ 1.05 | ${fmt(o.ratioMedian)} (${fmt(o.ratioP95)}): ${fmt(o.main.stats["http-request"]!.median)} vs ${fmt(o.main.stats.request!.median)} ms` +
      (u ? `; with \`--confirm-session off\`: ${fmt(u["http-request"]!.median / u.request!.median)} (${fmt(u["http-request"]!.median)} vs ${fmt(u.request!.median)} ms)` : "") +
      (o.realistic ? `; after an \`apply-component\` step: ${fmt(o.realistic.stats["http-request"]!.median / o.realistic.stats.request!.median)}` : "") + ` | ${ok(o.ratioMedian <= 1.05)} |`);
  } else out.push("| 1 | overhead | ≤ 1.05 | not measured | – |");
  if (reactWake.length) {
    out.push(`| 2 | reaction latency, condition true → step succeeded, \`read-object-and-wait\` with wake-up (default) | p95 ≤ 1 s | p50 ${fmt(percentile(reactWake, 50))} s, p95 ${fmt(percentile(reactWake, 95))} s; without wake-up p95 ${fmt(percentile(reactOurs, 95))} s; built-in poll p95 ${fmt(percentile(reactBuiltin, 95))} s; suspend + resume p95 ${fmt(percentile(reactSuspend, 95))} s | ${ok(percentile(reactWake, 95) <= 1)} |`);
  } else if (reactOurs.length) {
    out.push(`| 2 | reaction latency, condition true → step succeeded, \`read-object-and-wait\` without wake-up | p95 ≤ 1 s | p50 ${fmt(percentile(reactOurs, 50))} s, p95 ${fmt(percentile(reactOurs, 95))} s; built-in poll p95 ${fmt(percentile(reactBuiltin, 95))} s; suspend + resume p95 ${fmt(percentile(reactSuspend, 95))} s | ${ok(percentile(reactOurs, 95) <= 1)} |`);
  } else out.push("| 2 | reaction latency | p95 ≤ 1 s | not measured | – |");
  if (http1k) {
    out.push(`| 3a | poll latency p99, 1,000 waiting \`http-request\` steps each polled every 1 s | p99 < 10 ms | client ${fmt(http1k.client.p99)} ms, server ${fmt(http1k.server.p99)} ms; executor CPU ${fmt(http1k.executorCpuPct)} %` +
      (http1kMem ? ` (in-memory run store: client ${fmt(http1kMem.client.p99)} ms)` : "") + ` | ${ok(http1k.client.p99 < 10)} |`);
  }
  if (obj1k) {
    out.push(`| 3a′ | the same, 1,000 waiting \`read-object-and-wait\` steps (one shared watch of their object) | p99 < 10 ms | client ${fmt(obj1k.client.p99)} ms (event-loop delay p99 ${fmt(obj1k.server.loopDelayP99)} ms); executor CPU ${fmt(obj1k.executorCpuPct)} %; kube-apiserver ${fmt(obj1k.apiserver!.totalPerS)} requests/s in all (before the watch: ${BEFORE_WATCH.obj1k}) | ${ok(obj1k.client.p99 < 10)} |`);
  }
  if (http100 && http1k && http10k) {
    // Issue 16: flat means within ±10 % from 100 to 10,000.
    const memFlat = http1kMem && http10kMem ? `; in-memory run store ${fmt(http1kMem.cpuPerPollUs)} → ${fmt(http10kMem.cpuPerPollUs)} µs at 1,000 → 10,000` : "";
    out.push(`| 3b | executor CPU per poll at 100 → 1,000 → 10,000 waiting steps (1,000 polls/s) | flat (±10 %) | ${fmt(http100.cpuPerPollUs)} → ${fmt(http1k.cpuPerPollUs)} → ${fmt(http10k.cpuPerPollUs)} µs${memFlat}; server p50 ${fmt(http100.server.p50)} → ${fmt(http1k.server.p50)} → ${fmt(http10k.server.p50)} ms | ${ok(Math.abs(http10k.cpuPerPollUs / http100.cpuPerPollUs - 1) <= 0.1)} |`);
  }
  if (http10k) {
    out.push(`| 3c | executor RSS with 10,000 waiting steps | < 256 MiB | \`http-request\` (one call in flight each): ${mib(http10k.rssLoadMiB)} MiB (idle ${mib(http10k.rssIdleMiB)} MiB; ${http10k.level.n - http10k.startFailures} runs started)` +
      (http10kMem ? `; in-memory run store ${mib(http10kMem.rssLoadMiB)} MiB` : "") + (http10kTsx ? `; under tsx (\`npm start\`) ${mib(http10kTsx.rssLoadMiB)} MiB` : "") +
      (obj10k ? `; \`read-object-and-wait\` ${mib(obj10k.rssLoadMiB)} MiB (${obj10k.level.n - obj10k.startFailures} started)` : "") +
      (gh10k ? `; \`github-actions\` (waiting on runs, 100 repositories) ${mib(gh10k.rssLoadMiB)} MiB (${gh10k.githubRuns ?? 0} runs dispatched)` : "") + ` | ${ok(http10k.rssLoadMiB < 256 && http10k.startFailures === 0)} |`);
  }
  if (obj10k) {
    out.push(`| 3d | apiserver load of 10,000 waiting \`read-object-and-wait\` steps | (report) | kube-apiserver ${fmt(obj10k.apiserver!.totalPerS)} requests/s in all, ${fmt(obj10k.apiserver!.cpuPct)} % CPU, etcd ${fmt(obj10k.apiserver!.etcdCpuPct)} %; executor ${fmt(obj10k.executorCpuPct)} % CPU; ${obj10k.startFailures} of 10,000 runs did not start within ${obj10k.level.createBudgetS ?? 120} s (before the watch: ${BEFORE_WATCH.obj10k}) | ${obj10k.startFailures === 0 && obj10k.errors === 0 ? "fixed (3)" : "**a problem** (3)"} |`);
  }
  if (costOurs && costBuiltin) {
    const a = costOurs.at(-1)!, b = costBuiltin.at(-1)!;
    out.push(`| 4 | apiserver requests per waiting step per minute, ${fmt(a.fromS)}–${fmt(a.toS)} s after creation | (compare) | ours ${fmt(a.totalPerStepPerMin)} (the executor's own: ${fmt(a.executorReadsPerStepPerMin)}), built-in poll ${fmt(b.totalPerStepPerMin)}${costSuspend ? `, suspend ${fmt(costSuspend.at(-1)!.totalPerStepPerMin)}` : ""} | ours ≈ ${fmt(a.totalPerStepPerMin / Math.max(0.01, b.totalPerStepPerMin))}× the built-in poll |`);
  }
  if (cel) {
    out.push(`| 5 | /healthz p99 while tenants' hostile CEL expressions keep every evaluator busy | p99 < 100 ms (before: no answer for 16 s) | ${fmt(cel.hostile.p99)} ms (idle ${fmt(cel.idle.p99)} ms), max ${fmt(cel.hostile.max)} ms; ${fmt(cel.workerUs)} µs per ordinary evaluation in a worker vs ${fmt(cel.inThreadUs)} µs in-thread | ${ok(cel.hostile.p99 < 100)} |`);
  }
  if (hang) {
    const mid = (v: number[]) => percentile(v, 50) / 1000;
    out.push(`| 6 | an unrelated Application's deploy while the executor hangs (SIGSTOP), ${hang.waiting} Applications waiting at our steps | ≤ 2× baseline (before: 16.7 s vs 0.1 s) | ${fmt(mid(hang.hungMs))} s vs ${fmt(mid(hang.baselineMs))} s healthy (medians of ${hang.hungMs.length}); ${hang.failures.length} waiting steps failed | ${ok(mid(hang.hungMs) <= 2 * mid(hang.baselineMs) && hang.failures.length === 0)} |`);
  }
  if (template) {
    const waitRow = template.rows.find((x) => x.variant.includes("`read-object-and-wait`, a waiting")), builtin = template.rows.find((x) => x.variant.startsWith("built-in"));
    if (waitRow && builtin) out.push(`| 7 | KubeVela's CPU per evaluation of a waiting \`read-object-and-wait\` (answered from its StepRun) vs the built-in poll | (compare) | ${fmt(waitRow.msPerEvaluation)} vs ${fmt(builtin.msPerEvaluation)} ms (was 15.8 before this change) | ${fmt(waitRow.msPerEvaluation / builtin.msPerEvaluation)}× the built-in poll |`);
  }
  if (idle?.rows[0]) {
    const rss = (i: number) => percentile(idle.rows[i]?.rssMiB ?? [], 50);
    const others = idle.rows.slice(1).map((x, i) => `${x.variant.replace(/ \(.*\)$/, "")}: ${fmt(rss(i + 1))} MiB`).join("; ");
    out.push(`| 8 | executor RSS idle, as the image runs it, against the control plane | ≤ 96 MiB (before: 156–165 MiB) | ${fmt(rss(0))} MiB${others ? ` (${others})` : ""} | ${ok(rss(0) <= 96)} |`);
  }
  out.push("");

  // ---- machine, versions, commands -------------------------------------------------------------
  out.push(
    "## Machine, versions, commands",
    "",
    `- Machine: ${h.machine.nproc} cores (\`nproc\`), ${h.machine.memGiB} GiB memory, CPU ${h.machine.cpuModel}, Linux ${h.machine.kernel}; load average at the start ${h.machine.loadavg} (the machine is shared with other work).`,
    `- Versions: node ${h.machine.node}; KubeVela ${h.versions.KUBEVELA_VERSION}, Kubernetes ${h.versions.KUBERNETES_VERSION}, etcd ${h.versions.ETCD_VERSION} (scripts/versions.env), built from their Go modules by scripts/build-control-plane.sh.`,
    `- Code: \`git describe --always --dirty\` = \`${h.git}\`${h.dirtyFiles.length ? `, with uncommitted changes (outside bench/) in ${h.dirtyFiles.map((f) => `\`${f}\``).join(", ")}` : ""}.`,
    `- Control plane: \`scripts/control-plane up\`, everything on 127.0.0.1. vela-core runs with the script's flags only, i.e. KubeVela's defaults for everything measured here (wait backoff 1–60 s, 4 concurrent reconciles, client QPS 50 / burst 100): \`vela-core ${h.velaCoreFlags}\`.`,
    `- Executor: \`${h.executorCommand}\` plus the flags named per bench. bench/lib/executor-process.ts installs counters and then imports server/main.ts, so the executor runs with main.ts's own wiring, flags and defaults (whatever they are at the time of the run). ` +
      "\"compiled\" = the sources compiled by tsc (bench/tsconfig.executor.json → bench/.build/), run by node, as an image would run them; \"tsx\" = `node --import tsx`, as `npm start` runs them.",
    "- Traffic: loopback only (127.0.0.1). Every load loop is bounded in count and time.",
    "",
    "Reproduce:",
    "",
    "```sh",
    "npm ci",
    "npm run bench          # everything (~30 min): scripts/control-plane up, benches, BENCHMARKS.md, scripts/control-plane down",
    "npm run bench:smoke    # the same code paths with tiny sizes (< 60 s once the control plane is built); writes nothing",
    "bash bench/run.sh --only overhead,reaction,cost,scale --out FILE     # a subset (reuses a control plane that is already up)",
    "node --import tsx bench/main.ts --render bench/.results/<run>.json   # re-render this file from a run's raw results",
    "```",
    "",
  );

  // ---- 1 -----------------------------------------------------------------------------------------
  out.push("## 1. Overhead: `http-request` versus the built-in `request`", "", failed("1. overhead"));
  if (o) {
    out.push(sections.overheadMarkdown(o), "");
    const m = o.main.stats, u = o.unconfirmed?.stats, b = o.breakdown?.stats;
    const pollsMain = o.main.runs.filter((x) => x.variant === "http-request").map((x) => x.executorPolls ?? 0);
    const enginePerRun = (o.unconfirmed ?? o.main).runs.filter((x) => x.variant === "http-request").map((x) => x.executorMs ?? 0);
    const confirmMs = o.main.runs.filter((x) => x.variant === "http-request" && x.confirmMs !== undefined).map((x) => x.confirmMs!);
    out.push("### Where the extra time goes", "");
    if (u) {
      out.push(`- **The session confirmation costs the most: one more reconcile.** With the executor's defaults a side-effecting step starts only once KubeVela has stored its session (\`--confirm-session on\`, docs/runs.md §3): the first poll records the run as pending and answers \`running\`; KubeVela ends its reconcile with the status write that stores the session` +
        (confirmMs.length ? `, which the executor hears through its Application watch and claims the run ${fmt(percentile(confirmMs, 50))} ms (median; p95 ${fmt(percentile(confirmMs, 95))}) after its answer to the first poll` : "") +
        `; then the call, the run's end in its StepRun, and the wake-up (a patch of the Application) make KubeVela reconcile again, and that evaluation answers from the StepRun. ` +
        `The workflow takes ${fmt(m["http-request"]!.median - m.request!.median)} ms more than \`request\` (median); with \`--confirm-session off\` the call finishes in the first evaluation and the gap is ${fmt(u["http-request"]!.median - u.request!.median)} ms (ratio ${fmt(u["http-request"]!.median / u.request!.median)}).`);
    }
    out.push(`- **The executor's own part**: it spends ${fmt(percentile(enginePerRun, 50))} ms (median) answering a run's polls, the call to the target included` +
      (defaultStoreIsKube ? ` — mostly the run's record on the kube-apiserver: its claim (the create), the intent before the call and the result, each a write that must land before the next step (docs/runs.md §2, §4)${tlsPerCall ? ", over a new TLS connection per request; see 3" : ""}.` : "."));
    out.push(`- **The CUE template, evaluated by the controller.** KubeVela runs a template's provider calls one at a time and evaluates the whole template again after each (section 7 measures the CPU of one evaluation). A starting \`http-request\` makes four calls in its first reconcile — \`kube.#Read\` of its StepRun (not there yet), \`kube.#Read\` of Secret \`step-executor\` (the executor's URL and the namespace's key), the \`http.#HTTPDo\` to the executor, \`#ConditionalWait\` — plus a \`kube.#List\` of the executor's EndpointSlices in the cluster; its last reconcile makes two (the StepRun read, a \`#Message\` with the result). The built-in \`request\` makes one.` +
      (b ? ` The breakdown: a read alone adds ${fmt(b["bench-request-1read"]!.median - b.request!.median)} ms to the built-in \`request\`; our definition without the Secret read is ${fmt(b["bench-http-request-noreads"]!.median - b.request!.median)} ms slower than \`request\`, with it ${fmt(b["http-request"]!.median - b.request!.median)} ms.` : ""));
    out.push(
      "",
      "What is left, and why the goal ≤ 1.05 is out of reach for a step with side effects:",
      "- The confirmation round is the price of exactly-once: KubeVela makes a step's session id up in the reconcile that first runs it and drops it whenever that reconcile's status write fails (any write to the Application meanwhile, a controller restart; KubeVela conflicts with itself often, docs/runs.md §3). The built-in `request` sends its request again in the next session; ours waits for the stored session, which costs the second reconcile. Starting safe methods (GET/HEAD) on the first poll would save it for them, but servers that act on a GET (build triggers) would then see it twice: not done.",
      "- Dropping the `#Message` on success would save one evaluation of the last reconcile, but `vela status` would lose the step's result line: kept.",
      "- The StepRun read is what lets a waiting step be answered without the executor (an executor outage never fails or stalls it, issue 15); the Secret read keeps each namespace's key to itself (SECURITY.md). Both stay.",
      "- In a workflow that deploys something first, the absolute gap is what users notice (the `apply-component` pass).",
      "",
    );
  }

  // ---- 2 -----------------------------------------------------------------------------------------
  out.push("## 2. Reaction latency", "", failed("2. reaction latency"));
  if (re) {
    out.push(
      "Why these ways: the built-in `read-object` reads once and cannot wait, so KubeVela has no built-in \"wait for a condition\" step. With built-ins alone a user either writes a definition that polls with `kube.#Read` + `builtin.#ConditionalWait` (`bench-wait-object` in bench/lib/variants.ts; the fair polling counterpart of ours) or suspends the workflow and resumes it from outside (`suspend` + something that watches the object and runs `vela workflow resume`), which reacts fast but needs that external watcher.",
      "",
      sections.reactionMarkdown(re),
      "",
      "Reading: without wake-up both polling ways are bounded by KubeVela's wait backoff, not by the executor. A waiting step is re-evaluated after 1 s for its first five polls, then after 3, 6, 12, 25, 51 and 60 s as long as its message stays the same; our executor sees the condition within milliseconds (its watch of the object), but KubeVela only asks at its next evaluation, so the latency grows with how long the step has already waited, up to a minute, and ours tracks the built-in poll. " +
        "With wake-up (the default) the executor patches the Application's metadata the moment the condition holds and KubeVela evaluates the step at once (docs/runs.md §6): the latency is one watch event, one patch and one reconcile, whatever the backoff stood at. Suspend + resume is pushed too, at the price of a separate watcher.",
      "",
    );
  }

  // ---- 3 -----------------------------------------------------------------------------------------
  out.push("## 3. Executor scale", "", failed("3. executor scale"));
  if (sc) {
    out.push(
      "No KubeVela in the polling path: a load generator in the bench process sends signed polls (`X-Step-Executor-Signature`, HMAC of the body, as the definitions send them) over loopback to the executor process. " +
        "Runs are created by their first polls (two per run, so a step that waits for its session to be confirmed starts too; the poll that starts a run waits `--first-answer-wait`, 1 s), then polled at 1,000 polls/s in total, bounded in count and time. " +
        "Two kinds of waiting step: **http** = `http-request` whose target (127.0.0.1, in the bench process) holds the request for 10 min, so each waiting step has one call in flight; " +
        "**object** = `read-object-and-wait` on a ConfigMap on the real kube-apiserver whose condition never holds; all of them follow it through the executor's one shared watch (docs/operations.md, \"Waiting on objects\"). Executor flags: defaults unless the row says otherwise.",
      "",
      scaleMarkdown(sc),
      "",
      "### Findings",
      "",
    );
    if (http1k && obj1k) {
      out.push(`- **Before the executor's own Kubernetes client** (server/kube/api-client.ts, replacing @kubernetes/client-node; run of 2026-12-06): ${BEFORE_CLIENT}. ` +
        `Now: poll p99 ${fmt(http1k.client.p99)} / ${fmt(obj1k.client.p99)} ms, executor CPU ${fmt(http1k.executorCpuPct)} / ${fmt(obj1k.executorCpuPct)} % (the same two levels).`);
    }
    if (http100 && http1k && http10k) {
      out.push(`- **Per-poll cost is flat**: ${fmt(http100.cpuPerPollUs)} / ${fmt(http1k.cpuPerPollUs)} / ${fmt(http10k.cpuPerPollUs)} µs of executor CPU per poll at 100 / 1,000 / 10,000 waiting steps, server-side p50 ${fmt(http100.server.p50)} / ${fmt(http1k.server.p50)} / ${fmt(http10k.server.p50)} ms: answering a poll of a running run is a lookup behind HMAC, JSON and schema validation, and its cost is mostly Node's HTTP stack and express. ` +
        "What is not flat is the work around it (below): creating runs, and what waiting steps do in the background. The client-side p99 adds the executor's event-loop delay (background work, GC, other processes on this 2-core machine) and the load generator's own. " +
        `Run of ${BEFORE_RUN_CLASSES.date}: ${BEFORE_RUN_CLASSES.cpu}.`);
    }
    if (tlsPerCall) {
      out.push(`- **The kube client opens a new TLS connection for every request.** @kubernetes/client-node 1.x builds a new \`https.Agent\` per API call (\`KubeConfig.applySecurityAuthentication\` → \`createAgent\`), so nothing is kept alive: the table's new-connections/s equals the requests/s. The CPU profiles put \`TLSSocket.getPeerCertificate\`, \`SecureContext\` creation and the handshake at the top of the executor's CPU, and the apiserver pays a handshake per request too. ` +
        "Proposed fix (server/kube/kube.ts, server/runs/kube-store.ts): one keep-alive agent per KubeConfig for all API clients (override `createAgent`, or subclass `KubeConfig` so `applySecurityAuthentication` reuses it).");
    }
    if (defaultStoreIsKube && http1k && http1kMem) {
      out.push(`- **The default run store writes every run to the kube-apiserver**, which dominates creating runs: 1,000 \`http-request\` runs took ${fmt(http1k.createS)} s to start (${fmt(1000 / http1k.createS)} runs/s) against ${fmt(http1kMem.createS)} s with \`--run-store memory\`` +
        (http10k ? `; of 10,000, ${http10k.level.n - http10k.startFailures} started within the ${http10k.level.createBudgetS ?? 120} s budget` : "") + `. Polls of running runs are answered from memory either way (p50 ${fmt(http1k.server.p50)} vs ${fmt(http1kMem.server.p50)} ms).`);
    }
    if (http10k) {
      const ref = http10kMem ?? http10k;
      out.push(`- **RSS misses the goal.** The executor starts at ${mib(ref.rssIdleMiB)} MiB compiled${http10kTsx ? ` (${mib(http10kTsx.rssIdleMiB)} MiB under tsx, as \`npm start\` runs it)` : ""} (section 8 has where the idle memory goes) ` +
        `and each waiting \`http-request\` adds ${fmt(((ref.rssCreatedMiB - ref.rssIdleMiB) * 1024) / (ref.level.n - ref.startFailures))} KiB${http10kMem ? " with the in-memory store" : ""}: an undici Client, a socket and its parser for the call in flight, the run's state, timers and AbortSignals` +
        (httpHeap ? ` (${fmt(httpHeap.heapGrowth!.total / 1024)} KiB of it V8 heap, by kind in the heap-snapshot summary above; the rest is native memory and heap headroom)` : "") + `. ` +
        (http10kMem ? `With the default run store RSS reached ${mib(http10k.rssLoadMiB)} MiB for ${http10k.level.n - http10k.startFailures} runs (the high-water of creating them: the concurrent StepRun writes; at most 32 connections to the API server since 2026-12-07, server/kube/api-client.ts). ` : "") +
        (http10kPaced ? `Created ${http10kPaced.level.createConcurrency} at a time instead of 500 (KubeVela itself sends at most \`--concurrent-reconciles\`, 4 by default, polls at once per controller), 10,000 waiting \`http-request\` steps take ${mib(http10kPaced.rssLoadMiB)} MiB against ${mib(http10k.rssLoadMiB)} MiB (V8 heap after GC ${fmt(http10kPaced.heapAfterGcMiB)} vs ${fmt(http10k.heapAfterGcMiB)} MiB): the creation burst's high-water is only part of the default store's excess over the in-memory one. ` : "") +
        `Before the run's state became classes and the kube client's connections were bounded (run of ${BEFORE_RUN_CLASSES.date}): ${BEFORE_RUN_CLASSES.text}. ` +
        "So a replica is capped by `--max-runs` (default 1,000) and the Deployment's memory limit follows it (addon/resources/deployment.cue; docs/operations.md \"Sizing\").");
    }
    if (obj100 && obj1k) {
      out.push(`- **\`read-object-and-wait\` now follows its object by watch.** Before (commit 19f8ef8, same machine, same day) each waiting step GOT its object every second: ${BEFORE_WATCH.obj1k} for 1,000 waiting steps, and at 10,000 ${BEFORE_WATCH.obj10k}. ` +
        "Fix (server/kube/object-watch.ts): a list by name, then one watch from its resourceVersion, shared by every step waiting on that object as the same identity; the waits are judged on each change the watch delivers. " +
        `Now 100 / 1,000 waiting steps cost the kube-apiserver ${fmt(obj100.apiserver!.totalPerS)} / ${fmt(obj1k.apiserver!.totalPerS)} requests/s in all (${fmt(obj100.apiserver!.cpuPct)} / ${fmt(obj1k.apiserver!.cpuPct)} % CPU; the executor's own: run records and its Lease), executor CPU ${fmt(obj100.executorCpuPct)} / ${fmt(obj1k.executorCpuPct)} %, poll p99 ${fmt(obj100.client.p99)} / ${fmt(obj1k.client.p99)} ms` +
        (obj10k ? `; 10,000: ${fmt(obj10k.apiserver!.totalPerS)} requests/s, ${obj10k.level.n - obj10k.startFailures} of 10,000 runs started within ${obj10k.level.createBudgetS ?? 120} s (creating a run writes its StepRun: that, not the wait, bounds the start rate), poll p50 ${fmt(obj10k.client.p50)} ms, p99 ${fmt(obj10k.client.p99)} ms` : "") + ". " +
        "Distinct objects cost one watch each (one connection); past `--max-object-watches` (1,000) or without list/watch rights a wait re-reads every `--poll-interval`.");
    }
  }
  out.push("");

  // ---- 4 -----------------------------------------------------------------------------------------
  out.push("## 4. Controller cost: apiserver requests per waiting step", "", failed("4. controller cost"));
  if (cost) {
    out.push(sections.controllerCostMarkdown(cost), "");
    if (costOurs && costBuiltin) {
      const a = costOurs.at(-1)!, b = costBuiltin.at(-1)!;
      out.push(
        `Reading: the controller's share (an evaluation on each backoff step: the step's reads, the Application's status update) falls as the backoff grows, for ours and the built-in poll alike; each evaluation of ours also reads the addon's ConfigMap and Secret. ` +
          `The executor's own share in the last window: ${fmt(a.executorReadsPerStepPerMin)} requests per step per minute (it follows the object by one watch; before the watch it GOT the object every second: ${BEFORE_WATCH.cost}). ` +
          `Once both have settled, ours costs ${fmt(a.totalPerStepPerMin)} requests per step per minute against ${fmt(b.totalPerStepPerMin)} for the built-in poll.`,
        "",
      );
    }
  }

  // ---- 5 -----------------------------------------------------------------------------------------
  out.push("## 5. CEL bounds", "", failed("5. CEL bounds"));
  if (cel) {
    out.push(
      "Tenants write CEL; CEL has no cost limit. Expressions are now refused at compile time past 2 nested comprehensions or 8 in all, and evaluated in worker threads (server/cel/pool.ts) that are terminated at a deadline or die of their own heap limit. No cluster in this bench: one process with the executor's CEL pool and a real express /healthz on 127.0.0.1 (bench/cel.ts).",
      "",
      celMarkdown(cel),
      "",
    );
  }

  // ---- 6 -----------------------------------------------------------------------------------------
  if (hang || errors["6. executor hang"]) {
    out.push("## 6. A hung executor and everybody else's deploys", "", failed("6. executor hang"));
    if (hang && sections.hangMarkdown) out.push(sections.hangMarkdown(hang), "", "Reproduce: `npm run bench -- --only hang` (docs/runs.md §12 explains the mechanism).", "");
  }

  // ---- 7 -----------------------------------------------------------------------------------------
  if (template || errors["7. template CPU"]) {
    out.push("## 7. KubeVela's CPU per evaluation of a step's template", "", failed("7. template CPU"));
    if (template && sections.templateCpuMarkdown) out.push(sections.templateCpuMarkdown(template), "", "Reproduce: `npm run bench -- --only template` (no cluster needed).", "");
  }

  // ---- 8 -----------------------------------------------------------------------------------------
  if (idle || errors["8. idle memory"]) {
    out.push("## 8. The executor's idle memory", "", failed("8. idle memory"));
    if (idle && sections.idleMarkdown) out.push(sections.idleMarkdown(idle), "", "Reproduce: `npm run bench -- --only idle`.", "");
  }

  // ---- open problems -----------------------------------------------------------------------------
  out.push("## Open problems", "");
  if (o) out.push(`- Overhead ratio ${fmt(o.ratioMedian)} against the goal 1.05 (section 1): the session confirmation's extra poll, then the template's provider calls.`);
  if (reactWake.length && percentile(reactWake, 95) > 1) out.push(`- Reaction latency with wake-up p95 ${fmt(percentile(reactWake, 95))} s (goal 1 s); without it p95 ${fmt(percentile(reactOurs, 95))} s (KubeVela's backoff).`);
  if (tlsPerCall) out.push("- The kube client's new TLS connection per request: the biggest single cost in the executor (CPU, latency, memory high-water) and a cost to the apiserver.");
  if (http10k) out.push(`- RSS: ${mib((http10kMem ?? http10k).rssIdleMiB)} MiB before any run; 10,000 concurrent in-flight calls take ${mib((http10kMem ?? http10k).rssLoadMiB)} MiB; above the 256 MiB goal (the Deployment's limit follows --max-runs instead: docs/operations.md "Sizing").`);
  if (obj10k && obj10k.startFailures > 0) out.push(`- Starting 10,000 object waits at once: ${obj10k.startFailures} did not start within ${obj10k.level.createBudgetS ?? 120} s (each start writes a StepRun).`);
  if (hang?.burstMs?.length && hang.controlMs?.length && percentile(hang.burstMs, 50) > 2 * percentile(hang.controlMs, 50)) {
    const poll = hang.pollControlMs?.length ? percentile(hang.pollControlMs, 50) : undefined;
    const tWait = template?.rows.find((x) => x.variant.includes("`read-object-and-wait`, a waiting")), tStart = template?.rows.find((x) => x.variant.includes("a starting poll")), tBuiltin = template?.rows.find((x) => x.variant.startsWith("built-in"));
    out.push(`- A burst of starting waits slows everybody's deploys on this machine: during a burst of ${hang.burst} starting \`read-object-and-wait\` steps an unrelated deploy took ${fmt(percentile(hang.burstMs, 50) / 1000)} s (median), against ${fmt(percentile(hang.controlMs, 50) / 1000)} s during the same burst of built-in \`suspend\` steps` +
      (poll !== undefined ? ` and ${fmt(poll / 1000)} s during one of the built-in way of waiting, which KubeVela polls on the same backoff` : "") +
      ` (section 6). Every waiting step is evaluated on KubeVela's backoff (1 s for its first polls)` +
      (tStart && tWait && tBuiltin ? `; a step's first two polls call the executor and cost KubeVela ${fmt(tStart.msPerEvaluation / tBuiltin.msPerEvaluation)}× a built-in poll's CPU, the later ones ${fmt(tWait.msPerEvaluation / tBuiltin.msPerEvaluation)}× (section 7).` : "."));
  }
  if (Object.keys(errors).length) out.push(`- Benches that failed in this run: ${Object.keys(errors).join(", ")}.`);
  out.push("");
  return out.join("\n");
}
