// Starts bench/lib/executor-process.ts as a child process on 127.0.0.1 and reads its counters,
// CPU time and RSS. Two runtimes:
//   "compiled": the TypeScript compiled by tsc (bench/tsconfig.executor.json → bench/.build/),
//               run by plain node, as a container image would run it;
//   "tsx":      node --import tsx on the sources, as `npm start` runs server/main.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { usage } from "../../server/config.js";
import { log, procStat } from "./common.js";
import { run } from "./cluster.js";

export interface ExecutorStats {
  polls: number;
  /** The executor's own requests to the kube-apiserver, by "VERB resource". */
  kubeRequests: Record<string, number>;
  kubeRequestsTotal: number;
  /** New connections the kube client opened. */
  kubeConnections: number;
  /** Runs the engine works on (-1 when the engine does not say). */
  running: number;
  rssBytes: number;
  heapUsedBytes: number;
  pollsByApp?: Record<string, number>;
  /** Milliseconds the engine spent answering each Application's polls (summed). */
  engineMsByApp?: Record<string, number>;
  /** Per Application: ms from its first poll's answer to the claim of its pending run (absent: never pending). */
  confirmMsByApp?: Record<string, number>;
}

export interface ServerLatency { count: number; p50: number; p90: number; p99: number; max: number; loopDelayP99: number; loopDelayMax: number }
export interface GcMemory {
  rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; externalBytes: number; arrayBuffersBytes: number; threads: number; rssAnonBytes: number;
  /** The main isolate's spaces (v8.getHeapSpaceStatistics). */
  heapSpaces?: Record<string, { sizeBytes: number; usedBytes: number }>;
  /** Resident anonymous memory by mapping: V8 pages of all isolates, malloc's main heap, the rest. */
  anon?: { v8PagesBytes: number; v8Pages: number; mallocHeapBytes: number; otherBytes: number };
}

export interface BenchExecutor {
  url: string;
  token: string;
  pid: number;
  runtime: Runtime;
  flags: string[];
  /** The command line, as BENCHMARKS.md shows it. */
  command: string;
  stats(apps?: boolean): Promise<ExecutorStats>;
  /** Server-side latency (ms) of the POSTs since the last reset, and event-loop delay; `reset` starts a new window. */
  latency(reset?: boolean): Promise<ServerLatency>;
  /** Memory after a full garbage collection. */
  gc(): Promise<GcMemory>;
  /** Writes a V8 heap snapshot of the executor to `path`. */
  heapSnapshot(path: string): Promise<void>;
  /** CPU seconds (user+system) and RSS from /proc. */
  proc(): ReturnType<typeof procStat>;
  stop(): Promise<void>;
}

export type Runtime = "compiled" | "tsx";

export interface ExecutorOptions {
  runtime?: Runtime;
  /** The shared token (default: a new random one). */
  token?: string;
  /** Listen on this port (default: a free one). A fixed port lets the addon keep its executorURL across restarts. */
  port?: number;
  /** Extra flags for server/config.ts, e.g. ["--poll-interval", "1s"]. */
  flags?: string[];
  /** Write a V8 CPU profile into this directory on exit (node --cpu-prof). */
  cpuProfDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Node's own flags (e.g. --max-semi-space-size), before the entry. */
  nodeFlags?: string[];
}

/** Node's flags in the image's ENTRYPOINT (Dockerfile): the compiled executor runs with them, as in the cluster. */
export function imageNodeFlags(): string[] {
  const m = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync("Dockerfile", "utf8"));
  if (!m) throw new Error("the Dockerfile has no ENTRYPOINT [...] line");
  const argv = JSON.parse(m[1]!) as string[];
  return argv.slice(1).filter((a) => a.startsWith("--"));
}

/** Whether server/config.ts knows a flag (the executor's flags change while it is developed). */
export function hasFlag(flag: string): boolean {
  return new RegExp(`--${flag}\\b`).test(usage());
}

export const COMPILED_ENTRY = "bench/.build/bench/lib/executor-process.js";
let compiled = false;

/** Compiles the executor (server/, steps/, bench/lib/executor-process.ts) with tsc into bench/.build/. */
export async function compileExecutor(): Promise<void> {
  if (compiled) return;
  log("compiling the executor with tsc (bench/tsconfig.executor.json)");
  try {
    await run("npx", ["tsc", "-p", "bench/tsconfig.executor.json"]);
  } catch (err) {
    // Type errors still emit JavaScript; only a missing output is fatal.
    if (!existsSync(COMPILED_ENTRY)) throw err;
    log(`tsc reported errors but emitted the executor: ${(err as Error).message.split("\n").slice(0, 3).join(" ")}`);
  }
  compiled = true;
}

export async function startExecutor(options: ExecutorOptions = {}): Promise<BenchExecutor> {
  const runtime = options.runtime ?? "compiled";
  if (runtime === "compiled") await compileExecutor();
  const token = options.token ?? randomBytes(24).toString("hex");
  const nodeFlags = ["--expose-gc", ...(runtime === "compiled" ? imageNodeFlags() : []), ...(options.nodeFlags ?? [])];
  if (options.cpuProfDir) nodeFlags.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`);
  const entry = runtime === "compiled" ? [COMPILED_ENTRY] : ["--import", "tsx", "bench/lib/executor-process.ts"];
  const args = [...nodeFlags, ...entry, "--host", "127.0.0.1", "--port", String(options.port ?? 0), "--log-level", "warn", "--shutdown-grace", "1s",
    // The benches' targets are on loopback, which the executor refuses unless allowed.
    ...(hasFlag("outbound-allow") ? ["--outbound-allow", "127.0.0.1"] : []), ...(options.flags ?? [])];
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, ...options.env, STEP_EXECUTOR_TOKEN: token },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the executor did not start in 60 s:\n${logs}`)), 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      logs = (logs + d).slice(-20_000);
      const m = /BENCH-LISTENING (\d+)/.exec(logs);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.stderr!.on("data", (d: Buffer) => { logs = (logs + d).slice(-20_000); });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`the executor exited (${code}):\n${logs}`)); });
  });
  const url = `http://127.0.0.1:${port}`;
  const pid = child.pid!;
  const getJson = async <T>(path: string): Promise<T> => (await (await fetch(url + path)).json()) as T;
  return {
    url,
    token,
    pid,
    runtime,
    flags: options.flags ?? [],
    command: `node ${args.join(" ").replace(/--port \d+/, "--port <free>")}`,
    stats: (apps = false) => getJson<ExecutorStats>(`/bench/stats${apps ? "?apps=1" : ""}`),
    latency: (reset = false) => getJson<ServerLatency>(`/bench/latency${reset ? "?reset=1" : ""}`),
    gc: () => getJson<GcMemory>("/bench/gc"),
    heapSnapshot: async (path) => { await getJson(`/bench/heap?path=${encodeURIComponent(path)}`); },
    proc: () => procStat(pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
