// 3. Executor scale: many concurrent waiting steps in one executor process, polled the way the
// step definitions poll (signed JSON POSTs on loopback), at a fixed total poll rate.
//   mode "http":   http-request steps waiting on a target on 127.0.0.1 that holds the request
//                  (the executor keeps one outbound connection per waiting step, no other work)
//   mode "object": read-object-and-wait steps waiting on a ConfigMap on the real kube-apiserver
//                  whose condition never holds (they follow it through one shared watch)
//   mode "github": github-actions steps that dispatched a workflow on the local GitHub server
//                  (test/github-server: every request and answer checked against GitHub's OpenAPI
//                  description) and wait for its hour-long run; 100 runs per repository, so each
//                  repository's one poller follows its runs with one list call
// Each level runs in a fresh executor process: create N runs (their first polls), then poll them
// at `rate` polls/s in total for `steadyS` seconds (run k % N at start + k / rate), bounded in
// count and time. Figures: client- and server-side poll latency, executor CPU and RSS, and for
// "object" the kube-apiserver's request counts and CPU.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Pool } from "undici";
import { namespaceKey, sign } from "../server/http/auth.js";
import type { BenchContext } from "./lib/context.js";
import { apiserverRequests, componentCpu, createObject, deltaRequests, kubectl, tempNamespace } from "./lib/cluster.js";
import { fmt, log, MiB, pool, sleep, summary } from "./lib/common.js";
import { hasFlag, startExecutor, type BenchExecutor, type GcMemory, type Runtime, type ServerLatency } from "./lib/executor.js";
import { summariseProfile, type ProfileSummary } from "./lib/profile.js";
import { growthPerStep, summarizeSnapshot } from "./lib/heap-summary.js";
import { GROUP, PLURAL, VERSION } from "../server/runs/kube-store.js";
import type { BenchTarget } from "./lib/target.js";
import { FakeGitHub, type FakeRepo } from "../test/github-server/server.js";

export type Mode = "http" | "object" | "github";
export interface Level {
  mode: Mode;
  n: number;
  rate: number;
  steadyS: number;
  runtime?: Runtime;
  /** Run with node --cpu-prof and summarise the profile. */
  profile?: boolean;
  /** Node's own flags for the executor (e.g. a V8 heap setting), beside the executor's `flags`. */
  nodeFlags?: string[];
  /** Seconds allowed for creating the runs (default 120). */
  createBudgetS?: number;
  /** Extra executor flags (e.g. --run-store memory). */
  flags?: string[];
  /** Heap snapshots before and after creating the runs: where a waiting step's V8 heap goes. */
  heap?: boolean;
  /** Environment of the executor process (e.g. glibc's MALLOC_ARENA_MAX). */
  env?: Record<string, string>;
  /** Runs created at a time (default 500); KubeVela itself sends at most --concurrent-reconciles (4) polls at once. */
  createConcurrency?: number;
}

export interface LevelResult {
  level: Level;
  createS: number;
  /** First polls that did not answer `running` within the creation budget. */
  startFailures: number;
  polls: number;
  errors: number;
  skipped: number;
  achievedRate: number;
  client: ReturnType<typeof summary>;
  server: ServerLatency;
  executorCpuPct: number;
  cpuPerPollUs: number;
  /** RSS of the executor: just started; after creating the runs; at the end of the steady window; after a full GC. */
  rssIdleMiB: number;
  rssCreatedMiB: number;
  rssLoadMiB: number;
  rssAfterGcMiB: number;
  heapAfterGcMiB: number;
  /** The executor's memory after a full GC, in detail. */
  gc?: GcMemory;
  /** What the V8 heap gained per waiting step, by kind (Level.heap). */
  heapGrowth?: ReturnType<typeof growthPerStep>;
  running: number;
  /** The executor's GETs of the watched ConfigMap, per second (object mode). */
  kubeReadsPerS?: number;
  /** All of the executor's requests to the kube-apiserver per second in the window, by verb and resource, and new connections per second. */
  kubeRequestsPerS: Record<string, number>;
  kubeConnectionsPerS: number;
  apiserver?: { getConfigmapsPerS: number; totalPerS: number; cpuPct: number; etcdCpuPct: number };
  profile?: ProfileSummary;
  /** github mode: runs the local GitHub server holds, i.e. dispatches that reached it. */
  githubRuns?: number;
}

export interface ScaleResult { levels: LevelResult[]; executorCommand: string }

async function runLevel(ctx: BenchContext, level: Level, target: BenchTarget, namespace: string): Promise<LevelResult> {
  const profDir = level.profile ? join(ctx.workDir, `prof-${level.mode}-${level.n}-${Date.now()}`) : undefined;
  const executor: BenchExecutor = await startExecutor({
    runtime: level.runtime ?? "compiled",
    ...(profDir ? { cpuProfDir: profDir } : {}),
    ...(level.nodeFlags ? { nodeFlags: level.nodeFlags } : {}),
    ...(level.env ? { env: level.env } : {}),
    // "http" holds one request per waiting step to the one target host, "github" dispatches as many
    // runs as are created at a time to the one GitHub host: lift the per-host limit (default 16 in
    // flight, 256 queued), which would otherwise queue and refuse them.
    // The levels measure n waiting steps on one replica: lift --max-runs (default 1,000) to n too.
    flags: [
      ...(level.mode !== "object" && hasFlag("outbound-host-concurrency") ? ["--outbound-host-concurrency", String(level.n + 16), "--outbound-host-queue", "0"] : []),
      ...(hasFlag("max-runs") ? ["--max-runs", String(level.n)] : []),
      ...(level.flags ?? []),
    ],
  });
  await sleep(ctx.smoke ? 200 : 1_000);
  const rssIdleMiB = executor.proc().rssBytes / MiB;
  const snapshot = (name: string) => join(ctx.workDir, `heap-${level.mode}-${level.n}-${name}.heapsnapshot`);
  if (level.heap) await executor.heapSnapshot(snapshot("idle"));
  const client = new Pool(executor.url, { connections: 512, pipelining: 1, keepAliveTimeout: 60_000 });
  const path = `/v1/steps/${STEP_KIND[level.mode]}`;
  const github = level.mode === "github" ? await startGithub(level.n) : undefined;
  const parameterOf = (i: number): unknown => level.mode === "http"
    ? { url: `${target.url}/slow?holdMs=600000`, method: "GET", timeout: "10m", retries: 0, backoff: "1s", maxBackoff: "30s" }
    : level.mode === "object"
      ? { apiVersion: "v1", kind: "ConfigMap", name: "never-ready", condition: "object.data.enabled == 'true'", timeout: "1h" }
      : { owner: "bench", repo: `repo-${Math.floor(i / RUNS_PER_REPO)}`, workflow: "deploy.yml", ref: "main", credentials: { token: { name: githubSecret(Math.floor(i / RUNS_PER_REPO)) } }, apiURL: github!.url, timeout: "2h" };
  const levelId = Date.now().toString(36);
  // The bodies and signatures, as the definitions would send them (precomputed: the generator stays cheap).
  const bodies = Array.from({ length: level.n }, (_, i) => {
    // Sessions of this level only: the levels share a namespace and an Application, and a run of an
    // earlier level (its executor stopped) would otherwise be taken over instead of started.
    const body = JSON.stringify({ run: { namespace, application: "scale", step: `s${i}`, session: `${level.mode}-${level.n}-${levelId}-${i}` }, parameter: parameterOf(i) });
    return { body, headers: { "content-type": "application/json", "x-step-executor-signature": sign(namespaceKey(executor.token, namespace), body) } };
  });
  let errors = 0;
  let lastMessage = "";
  const send = async (i: number): Promise<{ ms: number; phase?: string }> => {
    const t0 = performance.now();
    try {
      const res = await client.request({ path, method: "POST", headers: bodies[i]!.headers, body: bodies[i]!.body, headersTimeout: 15_000, bodyTimeout: 15_000 });
      const text = await res.body.text();
      const ms = performance.now() - t0;
      if (res.statusCode !== 200) { errors++; return { ms }; }
      const answer = JSON.parse(text) as { phase: string; message?: string };
      lastMessage = answer.message ?? "";
      return { ms, phase: answer.phase };
    } catch {
      errors++;
      return { ms: performance.now() - t0 };
    }
  };
  try {
    // Create the runs: their first polls (the one that starts a run waits --first-answer-wait, 1 s,
    // since nothing is quick here), 500 runs at a time (createConcurrency), within a budget of 120 s; what does not
    // start in time is counted.
    const t0 = performance.now();
    const budgetEnd = t0 + (level.createBudgetS ?? 120) * 1000;
    // Two polls per run: with the executor's session confirmation (--confirm-session on) a step with
    // side effects starts on its second poll, as it would with KubeVela.
    const first = await pool(bodies.map((_, i) => i), level.createConcurrency ?? 500, async (i) => {
      if (performance.now() >= budgetEnd) return { ms: 0 } as { ms: number; phase?: string };
      const a = await send(i);
      return a.phase === "running" && performance.now() < budgetEnd ? send(i) : a;
    });
    const createS = (performance.now() - t0) / 1000;
    const startFailures = first.filter((f) => f.phase !== "running").length;
    if (startFailures > 0) log(`scale ${level.mode} n=${level.n}: ${startFailures} runs did not start waiting in time (the executor is overloaded)`);
    if (github) {
      // A step answers "running" also while it retries its dispatch: count the runs GitHub holds.
      const want = level.n - startFailures;
      // One dispatch per second per credential (Octokit's write throttle, GitHub's advice against
      // secondary rate limits): a repository's 100 dispatches take 100 s.
      const end = performance.now() + 60_000 + RUNS_PER_REPO * 1_500;
      while (github.runs.length < want && performance.now() < end) await sleep(500);
      if (github.runs.length < want) log(`scale github n=${level.n}: ${want - github.runs.length} of ${want} started steps have not dispatched their run (a step's message: ${lastMessage})`);
    }
    await sleep(ctx.smoke ? 200 : 2_000);
    const rssCreatedMiB = executor.proc().rssBytes / MiB;
    let heapGrowth: LevelResult["heapGrowth"];
    if (level.heap) {
      await executor.heapSnapshot(snapshot("created"));
      heapGrowth = growthPerStep(summarizeSnapshot(snapshot("idle")), summarizeSnapshot(snapshot("created")), level.n - startFailures);
      if (!process.env.BENCH_KEEP_HEAP) for (const f of ["idle", "created"]) rmSync(snapshot(f), { force: true });
    }
    errors = 0;

    // Steady state: `rate` polls/s in total, for steadyS seconds; at most 1,000 in flight (the rest are skipped, and counted).
    const total = Math.round(level.rate * level.steadyS);
    const latencies: number[] = [];
    let skipped = 0;
    let inflight = 0;
    await executor.latency(true);
    const reqBefore = level.mode === "object" ? await apiserverRequests() : undefined;
    const cpuBefore = componentCpu(["kube-apiserver", "etcd"]);
    const statsBefore = await executor.stats();
    const procBefore = executor.proc();
    const start = performance.now();
    let k = 0;
    await new Promise<void>((resolve) => {
      const deadline = start + level.steadyS * 1000 + 30_000;
      const tick = () => {
        const now = performance.now();
        while (k < total && now >= start + (k * 1000) / level.rate) {
          const i = k % level.n;
          k++;
          if (inflight >= 1000) { skipped++; continue; }
          inflight++;
          void send(i).then((r) => { latencies.push(r.ms); inflight--; });
        }
        if ((k >= total && inflight === 0) || now > deadline) return resolve();
        setTimeout(tick, 1);
      };
      tick();
    });
    const wallS = (performance.now() - start) / 1000;
    const procAfter = executor.proc();
    const statsAfter = await executor.stats();
    const cpuAfter = componentCpu(["kube-apiserver", "etcd"]);
    const reqAfter = reqBefore ? await apiserverRequests() : undefined;
    const server = await executor.latency(true);
    const gc = await executor.gc();
    const polls = latencies.length;
    const cpuS = procAfter.cpuSeconds - procBefore.cpuSeconds;
    const result: LevelResult = {
      level, createS, startFailures, polls, errors, skipped,
      achievedRate: polls / wallS,
      client: summary(latencies),
      server,
      executorCpuPct: (100 * cpuS) / wallS,
      cpuPerPollUs: (cpuS * 1e6) / Math.max(1, polls),
      rssIdleMiB,
      rssCreatedMiB,
      rssLoadMiB: procAfter.rssBytes / MiB,
      rssAfterGcMiB: gc.rssBytes / MiB,
      heapAfterGcMiB: gc.heapUsedBytes / MiB,
      gc,
      ...(heapGrowth ? { heapGrowth } : {}),
      running: statsAfter.running,
      kubeRequestsPerS: Object.fromEntries(Object.entries(statsAfter.kubeRequests).map(([k, v]) => [k, (v - (statsBefore.kubeRequests[k] ?? 0)) / wallS]).filter(([, v]) => (v as number) > 0)),
      kubeConnectionsPerS: (statsAfter.kubeConnections - statsBefore.kubeConnections) / wallS,
    };
    if (github) result.githubRuns = github.runs.length;
    if (level.mode === "object") {
      result.kubeReadsPerS = ((statsAfter.kubeRequests["GET configmaps"] ?? 0) - (statsBefore.kubeRequests["GET configmaps"] ?? 0)) / wallS;
      const d = deltaRequests(reqBefore!, reqAfter!);
      result.apiserver = {
        getConfigmapsPerS: (d.get("GET configmaps") ?? 0) / wallS,
        totalPerS: [...d.values()].reduce((a, b) => a + b, 0) / wallS,
        cpuPct: (100 * ((cpuAfter["kube-apiserver"] ?? 0) - (cpuBefore["kube-apiserver"] ?? 0))) / wallS,
        etcdCpuPct: (100 * ((cpuAfter.etcd ?? 0) - (cpuBefore.etcd ?? 0))) / wallS,
      };
    }
    log(`scale ${level.mode} n=${level.n} (${executor.runtime}): ${polls} polls at ${result.achievedRate.toFixed(0)}/s, client p50 ${fmt(result.client.p50)} p99 ${fmt(result.client.p99)} ms, ` +
      `server p99 ${fmt(server.p99)} ms, loop delay p99 ${fmt(server.loopDelayP99)} ms, executor CPU ${result.executorCpuPct.toFixed(0)}%, ` +
      `RSS idle/created/load/gc ${[rssIdleMiB, rssCreatedMiB, result.rssLoadMiB, result.rssAfterGcMiB].map((x) => x.toFixed(0)).join("/")} MiB` +
      (result.apiserver ? `, executor kube GETs ${result.kubeReadsPerS!.toFixed(0)}/s, apiserver CPU ${result.apiserver.cpuPct.toFixed(0)}%` : ""));
    await client.close();
    await executor.stop();
    if (profDir) result.profile = summariseProfile(profDir);
    return result;
  } finally {
    await client.destroy().catch(() => undefined);
    await executor.stop();
    target.releaseAll();
    await github?.close().catch(() => undefined);
  }
}

const STEP_KIND: Record<Mode, string> = { http: "http-request", object: "read-object-and-wait", github: "github-actions" };
/** Waiting github-actions steps per repository (a poller lists 100 runs at most per call). */
const RUNS_PER_REPO = 100;
/** Each repository's team has its own token (Secret): Octokit sends one write a second per token. */
const githubSecret = (repo: number) => `bench-github-${repo}`;
const githubToken = (repo: number) => `ghp_bench${String(repo).padStart(31, "0")}`;

/** The local GitHub server: enough repositories for `n` runs, runs that last an hour, a rate limit that does not bind. */
function startGithub(n: number): Promise<FakeGitHub> {
  const repos: FakeRepo[] = Array.from({ length: Math.ceil(n / RUNS_PER_REPO) }, (_, r) => ({
    owner: "bench", name: `repo-${r}`, branches: ["main"],
    workflows: [{ id: 7000 + r, file: "deploy.yml", name: "Deploy", script: { queuedMs: 0, runningMs: 60 * 60_000, conclusion: "success" } }],
  }));
  return new FakeGitHub({ repos, tokens: repos.map((_, r) => githubToken(r)), rateLimit: { limit: 100_000_000, windowMs: 60 * 60_000 } }).start();
}

export function scaleLevels(smoke: boolean): Level[] {
  // The executor's defaults, and — when its default run store is not in memory — the in-memory
  // store too, to separate the cost of the run records from the cost of the engine.
  const memory = hasFlag("run-store") ? ["--run-store", "memory"] : undefined;
  if (smoke) {
    return [
      { mode: "http", n: 10, rate: 20, steadyS: 1, runtime: "tsx", heap: true },
      { mode: "object", n: 10, rate: 20, steadyS: 1, runtime: "tsx", ...(memory ? { flags: memory } : {}) },
      { mode: "github", n: 10, rate: 20, steadyS: 1, runtime: "tsx" },
    ];
  }
  const levels: Level[] = [
    // Per-poll cost at a fixed 1,000 polls/s while the number of waiting steps grows; n = 1,000 is
    // "each run polled every 1 s", KubeVela's fastest rate; n = 10,000 means every 10 s.
    { mode: "http", n: 100, rate: 1000, steadyS: 15 },
    { mode: "http", n: 1000, rate: 1000, steadyS: 20 },
    { mode: "http", n: 10000, rate: 1000, steadyS: 20 },
    // The same with steps that wait on a kube object (one shared watch of it).
    { mode: "object", n: 100, rate: 1000, steadyS: 15 },
    { mode: "object", n: 1000, rate: 1000, steadyS: 15 },
    { mode: "object", n: 10000, rate: 1000, steadyS: 15, createBudgetS: 150 },
    // github-actions steps waiting on runs (100 repositories at 10,000).
    { mode: "github", n: 1000, rate: 1000, steadyS: 15 },
    { mode: "github", n: 10000, rate: 1000, steadyS: 15, createBudgetS: 300 },
    // The same 10,000 arriving in a smaller burst (100 polls at once, not 500; KubeVela itself sends
    // at most a few, one per reconcile worker, and a starting http-request holds its poll for
    // --first-answer-wait): RSS keeps the high-water of the creation burst.
    { mode: "http", n: 10000, rate: 1000, steadyS: 20, createConcurrency: 100, createBudgetS: 300 },
    // V8's memory saver mode: Node 24's V8 keeps the pages its collections free resident (its page
    // pool) and grows the heap ahead of need; the mode releases them and keeps the heap tight, at a
    // CPU cost (BENCHMARKS.md §3: not adopted).
    { mode: "http", n: 10000, rate: 1000, steadyS: 20, nodeFlags: ["--memory-saver-mode"] },
    { mode: "object", n: 10000, rate: 1000, steadyS: 15, createBudgetS: 150, nodeFlags: ["--memory-saver-mode"] },
    { mode: "object", n: 1000, rate: 1000, steadyS: 20, nodeFlags: ["--memory-saver-mode"] },
    // V8 trading CPU for a smaller heap (slower heap growth, more frequent full collections).
    { mode: "http", n: 10000, rate: 1000, steadyS: 20, nodeFlags: ["--optimize-for-size"] },
  ];
  if (memory) {
    levels.push(
      { mode: "http", n: 1000, rate: 1000, steadyS: 20, flags: memory },
      { mode: "http", n: 10000, rate: 1000, steadyS: 20, flags: memory },
      { mode: "object", n: 1000, rate: 1000, steadyS: 15, flags: memory },
      // The image caps V8's young generation (Dockerfile); 0 is V8's own default: what the cap costs in CPU and saves in RSS.
      { mode: "http", n: 1000, rate: 1000, steadyS: 20, flags: memory, nodeFlags: ["--max-semi-space-size=0"] },
      { mode: "object", n: 1000, rate: 1000, steadyS: 15, flags: memory, nodeFlags: ["--max-semi-space-size=0"] },
    );
  }
  levels.push(
    // RSS as `npm start` runs it (tsx compiles the sources at start-up).
    { mode: "http", n: 10000, rate: 1000, steadyS: 10, runtime: "tsx", ...(memory ? { flags: memory } : {}) },
    // Heap snapshots: where a waiting step's memory goes (writing a snapshot raises RSS, so not in the levels above).
    { mode: "http", n: 1000, rate: 1000, steadyS: 2, heap: true },
    { mode: "object", n: 1000, rate: 1000, steadyS: 2, heap: true },
    { mode: "github", n: 1000, rate: 1000, steadyS: 2, heap: true },
    // CPU profiles (node --cpu-prof).
    { mode: "http", n: 500, rate: 500, steadyS: 10, profile: true },
    { mode: "object", n: 300, rate: 100, steadyS: 15, profile: true },
  );
  return levels;
}

export async function scale(ctx: BenchContext, levels = scaleLevels(ctx.smoke)): Promise<ScaleResult> {
  const ns = await tempNamespace("bench-scale");
  await createObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "never-ready", namespace: ns.name }, data: { enabled: "false" } } as never);
  // The Application the runs name: the executor starts runs only for Applications that exist.
  await createObject({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name: "scale", namespace: ns.name }, spec: { components: [] } } as never);
  // The github-actions steps' tokens, one per repository (read by the executor as the Application's identity would).
  const repos = Math.ceil(Math.max(0, ...levels.filter((l) => l.mode === "github").map((l) => l.n)) / RUNS_PER_REPO);
  await pool(Array.from({ length: repos }, (_, r) => r), 10, (r) =>
    createObject({ apiVersion: "v1", kind: "Secret", metadata: { name: githubSecret(r), namespace: ns.name }, stringData: { token: githubToken(r) } } as never));
  const results: LevelResult[] = [];
  try {
    for (const level of levels) {
      log(`scale ${level.mode} n=${level.n} rate=${level.rate}/s for ${level.steadyS}s`);
      results.push(await runLevel(ctx, level, ctx.target, ns.name));
      // The level's StepRuns go with it: left, they are runs of a stopped executor that the next
      // level's executor would release and wake (its sweep), measured as that level's own work.
      await forgetRuns(ns.name);
      await sleep(ctx.smoke ? 200 : 3_000);
    }
  } finally {
    await ns.delete();
  }
  writeFileSync(join(ctx.workDir, "scale.json"), JSON.stringify(results, null, 1));
  return { levels: results, executorCommand: "node --import tsx bench/lib/executor-process.ts --host 127.0.0.1 --port <free> --log-level warn" };
}

/** Deletes every StepRun of the namespace in one request and waits until none is listed (bounded). */
async function forgetRuns(namespace: string): Promise<void> {
  const path = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`;
  await kubectl(["delete", "--raw", path]).catch((err) => log(`scale: deleting the level's StepRuns: ${String(err).slice(0, 200)}`));
  const end = performance.now() + 120_000;
  while (performance.now() < end) {
    const list = JSON.parse(await kubectl(["get", "--raw", `${path}?limit=1`])) as { items: unknown[] };
    if (list.items.length === 0) return;
    await sleep(1_000);
  }
  log("scale: the level's StepRuns were still listed 120 s after their deletion");
}

const perStepKiB = (l: LevelResult) => ((l.rssCreatedMiB - l.rssIdleMiB) * 1024) / l.level.n;
const mib = (x: number) => x.toFixed(0);

export function findLevel(r: ScaleResult, mode: Mode, n: number, extra: (l: Level) => boolean = (l) => !l.profile && !l.heap && !l.createConcurrency && !l.nodeFlags && !l.env && (l.runtime ?? "compiled") === "compiled" && !l.flags?.length) {
  return r.levels.find((l) => l.level.mode === mode && l.level.n === n && extra(l.level));
}

/** What sets a level apart from the defaults, for its row's label. */
function tagsOf(level: Level): string {
  return [level.createConcurrency ? `created ${level.createConcurrency} at a time` : "", level.flags?.length ? `\`${level.flags.join(" ")}\`` : "", level.runtime === "tsx" ? "tsx (`npm start`)" : "", level.nodeFlags ? `\`node ${level.nodeFlags.join(" ")}\`` : "", level.env ? Object.entries(level.env).map(([k, v]) => `\`${k}=${v}\``).join(" ") : ""].filter(Boolean).join(", ");
}

export function scaleMarkdown(r: ScaleResult): string {
  const plain = r.levels.filter((l) => !l.level.profile && !l.level.heap);
  const row = (l: LevelResult) => {
    const every = l.level.n / l.level.rate;
    const tags = tagsOf(l.level);
    const kubeTotal = Object.values(l.kubeRequestsPerS).reduce((a, b) => a + b, 0);
    return `| ${l.level.mode} | ${l.level.n.toLocaleString("en")}${tags ? ` (${tags})` : ""} | ${fmt(every)} s | ${fmt(l.achievedRate)} | ${fmt(l.client.p50)} / ${fmt(l.client.p99)} / ${fmt(l.client.max)} | ${fmt(l.server.p50)} / ${fmt(l.server.p99)} | ${fmt(l.server.loopDelayP99)} | ${fmt(l.executorCpuPct)} | ${fmt(l.cpuPerPollUs)} | ${mib(l.rssIdleMiB)} / ${mib(l.rssCreatedMiB)} / ${mib(l.rssLoadMiB)} | ${fmt(perStepKiB(l))} | ${fmt(l.heapAfterGcMiB)} | ${fmt(kubeTotal)} / ${fmt(l.kubeConnectionsPerS)} | ${l.startFailures}/${l.errors}/${l.skipped} | ${fmt(l.createS)} |`;
  };
  const lines = [
    "Columns: each run is polled every *n / rate* seconds (1,000 polls/s in total at every level, so the per-poll cost is comparable); " +
      "poll latency measured by the load generator (client) and inside the executor from request to response end (server); the executor's event-loop delay p99 " +
      "(how long a poll can wait before the executor reads it); executor CPU (% of one core) and CPU time per poll; RSS just started / after the runs were created / at the end of the polling window; " +
      "RSS added per waiting step; V8 heap after a full GC; the executor's own requests to the kube-apiserver (run records, leases, object reads) and the new connections its kube client opened, per second during the polling window; " +
      "failures = runs that did not start in time / poll errors / polls skipped because 1,000 were already in flight; how long creating the runs took (two polls per run, 500 runs at a time).",
    "",
    "| mode | waiting steps | each polled every | polls/s | client p50 / p99 / max (ms) | server p50 / p99 (ms) | loop delay p99 (ms) | executor CPU % | CPU µs / poll | RSS idle / created / load (MiB) | KiB / step | heap after GC (MiB) | executor → apiserver requests/s / new connections/s | failures | creating took (s) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...plain.map(row),
  ];
  const obj = plain.filter((l) => l.apiserver);
  if (obj.length) {
    lines.push("", "Object mode, the kube-apiserver side during the polling window (the waiting steps follow their ConfigMap through one shared watch; a GET of it would be a fallback to polling):", "",
      "| waiting steps | executor GETs of the object/s | apiserver `GET configmaps`/s | apiserver requests/s (all) | kube-apiserver CPU % | etcd CPU % |",
      "|---|---|---|---|---|---|",
      ...obj.map((l) => `| ${l.level.n.toLocaleString("en")}${l.level.flags?.length ? ` (\`${l.level.flags.join(" ")}\`)` : ""}${l.level.nodeFlags ? ` (\`node ${l.level.nodeFlags.join(" ")}\`)` : ""}${l.level.runtime === "tsx" ? " (tsx)" : ""} | ${fmt(l.kubeReadsPerS!)} | ${fmt(l.apiserver!.getConfigmapsPerS)} | ${fmt(l.apiserver!.totalPerS)} | ${fmt(l.apiserver!.cpuPct)} | ${fmt(l.apiserver!.etcdCpuPct)} |`));
  }
  const gh = plain.filter((l) => l.githubRuns !== undefined);
  if (gh.length) {
    lines.push("", "Github mode: each step dispatched a workflow run on the local GitHub server and waits for its conclusion (an hour away); " +
      `runs the server holds at the end: ${gh.map((l) => `${l.githubRuns!.toLocaleString("en")} of ${l.level.n.toLocaleString("en")}`).join(", ")} (no dispatch twice, none missing).`);
  }
  const mem = plain.filter((l) => l.gc?.anon && l.gc.heapSpaces);
  if (mem.length) {
    const m = (b: number) => fmt(b / MiB);
    lines.push("", "Where the executor's memory is at the end of each level, after a full collection (`/bench/gc`), MiB: the main V8 heap in use and allocated (its old space in use / allocated); " +
      "resident anonymous memory by mapping — V8's 256 KiB pages of every isolate in the process (the main one, CEL workers; pages its collections freed stay resident in V8's page pool until it is flushed), malloc's main heap (native buffers, TLS, parsers), the rest (malloc's thread arenas and large blocks, thread stacks, V8's code) — and RSS (which adds the node binary's pages).", "",
      "| mode | waiting steps | V8 heap used / allocated | old space used / allocated | V8 pages resident | malloc heap | other anonymous | RSS |",
      "|---|---|---|---|---|---|---|---|",
      ...mem.map((l) => {
        const g = l.gc!, old = g.heapSpaces!.old_space;
        const tags = tagsOf(l.level);
        return `| ${l.level.mode} | ${l.level.n.toLocaleString("en")}${tags ? ` (${tags})` : ""} | ${m(g.heapUsedBytes)} / ${m(g.heapTotalBytes)} | ${old ? `${m(old.usedBytes)} / ${m(old.sizeBytes)}` : "–"} | ${m(g.anon!.v8PagesBytes)} | ${m(g.anon!.mallocHeapBytes)} | ${m(g.anon!.otherBytes)} | ${m(g.rssBytes)} |`;
      }));
  }
  const grown = r.levels.filter((l) => l.heapGrowth);
  if (grown.length) {
    lines.push("", "Where a waiting step's V8 heap goes: heap snapshots of the executor just started and after creating the runs (both after a full collection), the kinds of object that grew most, per waiting step:", "");
    for (const l of grown) {
      const g = l.heapGrowth!;
      lines.push(`*${l.level.mode}, ${l.level.n.toLocaleString("en")} waiting steps*: ${fmt(g.total / 1024)} KiB of V8 heap per step. ` +
        g.rows.slice(0, 10).map((x) => `${x.what} ${fmt(x.bytesPerStep)} B (${fmt(x.countPerStep)})`).join(" · "), "");
    }
  }
  for (const l of r.levels.filter((x) => x.level.profile && x.profile)) {
    const p = l.profile!;
    lines.push("", `CPU profile, ${l.level.mode} mode, ${l.level.n} waiting steps at ${l.level.rate} polls/s (${fmt(p.totalMs / 1000)} s sampled, executor CPU ${fmt(l.executorCpuPct)} %). Self time by area (idle excluded from the percentages):`, "");
    const busy = p.byArea.filter((a) => a.area !== "(idle)");
    const busyMs = busy.reduce((a, b) => a + b.selfMs, 0);
    lines.push(busy.slice(0, 8).map((a) => `${a.area} ${fmt((100 * a.selfMs) / busyMs)} %`).join(" · "), "", "Top functions by self time:", "",
      "| function | where | self ms | % of busy |", "|---|---|---|---|",
      ...p.top.filter((t) => t.fn !== "(idle)").slice(0, 10).map((t) => `| \`${t.fn}\` | ${t.where || "–"} | ${fmt(t.selfMs)} | ${fmt((100 * t.selfMs) / busyMs)} |`));
  }
  return lines.join("\n");
}
