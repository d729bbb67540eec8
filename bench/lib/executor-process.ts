// The executor as the benches run it: server/main.ts itself — its flags, defaults and wiring,
// whatever they are — started in a process that first installs counters (not a product entry
// point; started by bench/lib/executor.ts):
//   - RunEngine.prototype.poll: polls and engine time per Application (namespace/application);
//   - RunEngine.prototype.confirm: how long after its first poll's answer a pending run was claimed
//     (the session confirmation: KubeVela's status write heard or read, or its second poll);
//   - http.createServer (express's app.listen): server-side time of every POST, the event-loop
//     delay, and GET /bench/{stats,latency,gc,heap} answered before the app sees them; prints
//     "BENCH-LISTENING <port>" once listening;
//   - https.request (the kube client's transport, server/kube/api-client.ts): the executor's own
//     requests to the kube-apiserver, by verb and resource.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";
import { RunEngine } from "../../server/runs/engine.js";

// ---- polls --------------------------------------------------------------------------------------
const pollsByApp = new Map<string, number>();
const engineMsByApp = new Map<string, number>();
const firstAnswerAt = new Map<string, number>();
const confirmMsByApp = new Map<string, number>();
let polls = 0;
let engine: RunEngine | undefined;
const poll = RunEngine.prototype.poll;
RunEngine.prototype.poll = async function (this: RunEngine, ...args: Parameters<RunEngine["poll"]>) {
  engine = this;
  polls++;
  const run = args[1];
  const k = `${run.namespace}/${run.application}`;
  pollsByApp.set(k, (pollsByApp.get(k) ?? 0) + 1);
  const t0 = performance.now();
  try {
    return await poll.apply(this, args);
  } finally {
    engineMsByApp.set(k, (engineMsByApp.get(k) ?? 0) + performance.now() - t0);
    if (!firstAnswerAt.has(k)) firstAnswerAt.set(k, performance.now());
  }
};
type Confirm = (...args: [unknown, { namespace: string; application: string }, ...unknown[]]) => Promise<unknown>;
const engineProto = RunEngine.prototype as unknown as { confirm: Confirm };
const confirm = engineProto.confirm;
engineProto.confirm = function (this: RunEngine, ...args: Parameters<Confirm>) {
  const k = `${args[1].namespace}/${args[1].application}`;
  const t = firstAnswerAt.get(k);
  if (t !== undefined && !confirmMsByApp.has(k)) confirmMsByApp.set(k, performance.now() - t);
  return confirm.apply(this, args);
};

// ---- the executor's requests to the kube-apiserver ------------------------------------------------
const apiRequests = new Map<string, number>();
let apiConnections = 0;
function resourceOf(path: string): string {
  const seg = path.split("?")[0]!.split("/").filter(Boolean);
  const ns = seg.indexOf("namespaces");
  // /api/v1/namespaces/NS/RES[/NAME[/SUB]] or /apis/G/V/namespaces/NS/RES[...]; else /api(s)/.../RES[/NAME]
  if (ns >= 0 && seg.length > ns + 2) return seg[ns + 2]! + (seg[ns + 4] ? `/${seg[ns + 4]}` : "");
  const base = seg[0] === "api" ? 2 : 3;
  return seg[base] ?? seg.join("/");
}
const request = https.request;
(https as unknown as { request: typeof https.request }).request = function (this: unknown, ...args: unknown[]) {
  const o = (typeof args[0] === "object" && !(args[0] instanceof URL) ? args[0] : args[1]) as { method?: string; path?: string } | undefined;
  const u = args[0] instanceof URL ? args[0] : typeof args[0] === "string" ? new URL(args[0]) : undefined;
  const key = `${(o?.method ?? "GET").toUpperCase()} ${resourceOf(u ? u.pathname : o?.path ?? "/")}`;
  apiRequests.set(key, (apiRequests.get(key) ?? 0) + 1);
  const req = (request as (...a: unknown[]) => http.ClientRequest).apply(this, args);
  req.once("socket", (s) => { if (!(s as { benchSeen?: boolean }).benchSeen) { (s as { benchSeen?: boolean }).benchSeen = true; apiConnections++; } });
  return req;
} as typeof https.request;

// ---- the HTTP server ----------------------------------------------------------------------------
const latency = new Float32Array(1 << 18); // 1 MiB, counted in the RSS the benches report
let latencyCount = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function latencySummary() {
  const n = Math.min(latencyCount, latency.length);
  const sorted = Float32Array.from(latency.subarray(0, n)).sort();
  const at = (p: number) => (n ? sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]! : NaN);
  return {
    count: latencyCount, p50: at(50), p90: at(90), p99: at(99), max: n ? sorted[n - 1]! : NaN,
    loopDelayP99: loopDelay.percentile(99) / 1e6, loopDelayMax: loopDelay.max / 1e6,
  };
}

function json(res: ServerResponse, body: unknown) {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(body));
}

/**
 * Resident anonymous memory by kind of mapping (/proc/self/smaps): V8 heap pages (256 KiB each, of
 * every isolate in the process: the main one, CEL workers), malloc's main heap ([heap]), the rest
 * (malloc's thread arenas and large blocks, thread stacks, V8's code range).
 */
function anonymousMemory(): { v8PagesBytes: number; v8Pages: number; mallocHeapBytes: number; otherBytes: number } {
  const out = { v8PagesBytes: 0, v8Pages: 0, mallocHeapBytes: 0, otherBytes: 0 };
  let kind: "v8" | "heap" | "other" | undefined;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (m) {
      const name = m[3]!.trim();
      const size = parseInt(m[2]!, 16) - parseInt(m[1]!, 16);
      kind = name === "[heap]" ? "heap" : name ? undefined : size === 256 * 1024 ? "v8" : "other";
      if (kind === "v8") out.v8Pages++;
      continue;
    }
    if (kind && line.startsWith("Rss:")) {
      const bytes = Number(/(\d+)/.exec(line)![1]) * 1024;
      if (kind === "v8") out.v8PagesBytes += bytes; else if (kind === "heap") out.mallocHeapBytes += bytes; else out.otherBytes += bytes;
    }
  }
  return out;
}

function benchEndpoint(req: IncomingMessage, res: ServerResponse): boolean {
  const url = req.url ?? "";
  if (req.method !== "GET" || !url.startsWith("/bench/")) return false;
  if (url.startsWith("/bench/latency")) {
    json(res, latencySummary());
    if (url.includes("reset=1")) { latencyCount = 0; loopDelay.reset(); }
  } else if (url.startsWith("/bench/gc")) {
    // Memory after a full collection (the process runs with --expose-gc): what the runs retain.
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    // Where RSS beyond the heap is: the process's threads (CEL workers are isolates of their own) and anonymous memory.
    const status = readFileSync("/proc/self/status", "utf8");
    const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
    json(res, {
      rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers,
      threads: field("Threads"), rssAnonBytes: field("RssAnon") * 1024,
      heapSpaces: Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { sizeBytes: s.space_size, usedBytes: s.space_used_size }])),
      anon: anonymousMemory(),
    });
  } else if (url.startsWith("/bench/heap")) {
    // A heap snapshot (for finding what the runs retain), written where ?path= says.
    const path = new URL(url, "http://x").searchParams.get("path");
    json(res, { path: path ? writeHeapSnapshot(path) : undefined });
  } else {
    const m = process.memoryUsage();
    json(res, {
      polls,
      kubeRequests: Object.fromEntries(apiRequests),
      kubeRequestsTotal: [...apiRequests.values()].reduce((a, b) => a + b, 0),
      kubeConnections: apiConnections,
      running: (engine as unknown as { activeRuns?: number } | undefined)?.activeRuns ?? -1,
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
      ...(url.includes("apps=1") ? { pollsByApp: Object.fromEntries(pollsByApp), engineMsByApp: Object.fromEntries(engineMsByApp), confirmMsByApp: Object.fromEntries(confirmMsByApp) } : {}),
    });
  }
  return true;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const createServer = http.createServer;
(http as unknown as { createServer: unknown }).createServer = function (...args: unknown[]) {
  const app = args.find((a): a is Handler => typeof a === "function");
  const options = args.find((a) => typeof a === "object" && a !== null) as http.ServerOptions | undefined;
  const handler: Handler = (req, res) => {
    if (benchEndpoint(req, res)) return;
    if (req.method === "POST") {
      const t0 = performance.now();
      res.once("finish", () => { latency[latencyCount++ % latency.length] = performance.now() - t0; });
    }
    app?.(req, res);
  };
  const server = options ? createServer(options, handler) : createServer(handler);
  server.once("listening", () => process.stdout.write(`BENCH-LISTENING ${(server.address() as AddressInfo).port}\n`));
  return server;
};

// ---- the executor itself ------------------------------------------------------------------------
await import("../../server/main.js");
