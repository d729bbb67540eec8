// Shared by test/e2e/runs.e2e.test.ts, bench/kill-soak.ts and bench/reaction-latency.ts: executor
// replicas as real processes (server/main.ts) on 127.0.0.1 behind a small balancer that plays the
// Service, the addon enabled against the balancer, a target that counts deliveries and effects
// (one effect per Idempotency-Key, as an API honouring the header applies it), and a restart of
// the control plane's KubeVela controller. Needs the local control plane (KUBECONFIG) and the
// built addon (dist/step-executor).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { kubectl, vela } from "../test/e2e/harness.js";
import { kubeClients, tempNamespace } from "../test/fixtures/kube.js";
import { closedPort, reply, startTarget, type Target } from "../test/fixtures/target.js";
import { GROUP, PLURAL, VERSION, type StepRunObject } from "../server/runs/kube-store.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ReplicaOptions {
  wake: boolean;
  confirmSession: boolean;
  leaseDuration: string;
  sweepInterval: string;
  pollInterval: string;
}

export const replicaDefaults: ReplicaOptions = { wake: true, confirmSession: true, leaseDuration: "3s", sweepInterval: "1s", pollInterval: "250ms" };

/** One executor process; restarted processes of a slot reuse its port and get a new identity. */
export class Replica {
  child: ChildProcess | undefined;
  identity = "";
  private generation = 0;
  private out = "";

  constructor(readonly slot: string, readonly port: number, private readonly token: string, private readonly options: ReplicaOptions) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  logs() {
    return this.out;
  }

  async start(): Promise<void> {
    this.identity = `${this.slot}-${++this.generation}-${randomBytes(2).toString("hex")}`;
    const o = this.options;
    const child = spawn(process.execPath, [
      "--import", "tsx", "server/main.ts", "--host", "127.0.0.1", "--port", String(this.port), "--identity", this.identity,
      "--lease-duration", o.leaseDuration, "--sweep-interval", o.sweepInterval, "--poll-interval", o.pollInterval,
      "--wake", o.wake ? "on" : "off", "--confirm-session", o.confirmSession ? "on" : "off", "--shutdown-grace", "5s",
      // The targets are on loopback, which the executor refuses unless allowed.
      "--outbound-allow", "127.0.0.1",
    ], { env: { ...process.env, STEP_EXECUTOR_TOKEN: this.token, STEP_EXECUTOR_LOG_LEVEL: process.env.RUNS_LOG_LEVEL ?? "info" }, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    const keep = (d: Buffer) => { this.out = (this.out + d.toString()).slice(-200_000); };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const end = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await fetch(`${this.url}/readyz`)).ok) return;
      } catch { /* not listening yet */ }
      if (child.exitCode !== null || Date.now() > end) throw new Error(`executor ${this.identity} did not become ready:\n${this.out.slice(-3000)}`);
      await sleep(100);
    }
  }

  /** SIGKILL (a crash: nothing is released) or SIGTERM (graceful: runs are handed over). */
  async stop(signal: "SIGKILL" | "SIGTERM" = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    await exited;
  }
}

/**
 * Plays the Service in front of the replicas: round-robin, and a replica that refuses the
 * connection (dead, or restarting) is skipped, as kube-proxy stops routing to a pod whose
 * readiness probe fails.
 */
export async function startBalancer(backends: () => string[]) {
  let next = 0;
  /** Applications whose next poll answer is held back (ms), to keep KubeVela inside that reconcile. */
  const holds = new Map<string, number>();
  /** Every poll: when, which run, which replica, what it answered. */
  const polls: { at: number; app: string; step: string; session: string; backend: string; answer: string }[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    let app = "";
    let run: { application?: string; step?: string; session?: string } = {};
    try {
      run = (JSON.parse(body.toString()) as { run?: typeof run }).run ?? {};
      app = run.application ?? "";
    } catch { /* not a poll */ }
    const at = Date.now();
    const hold = holds.get(app);
    if (hold !== undefined) holds.delete(app);
    const list = backends();
    for (let i = 0; i < list.length; i++) {
      const base = list[(next + i) % list.length]!;
      try {
        const answer = await forward(base, req.method ?? "GET", req.url ?? "/", req.headers, body);
        if (hold) await sleep(hold);
        next = (next + i + 1) % list.length;
        if (app) {
          polls.push({ at, app, step: run.step ?? "", session: run.session ?? "", backend: base, answer: `${answer.status} ${answer.body.toString().slice(0, 120)}` });
          if (polls.length > 20_000) polls.splice(0, 10_000);
        }
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
        return;
      } catch { /* connection refused or reset before an answer: try the next replica */ }
    }
    res.writeHead(503, { "content-type": "application/json" });
    res.end(JSON.stringify({ phase: "running", message: "no executor replica answered", outputs: {} }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Holds back the answer to the next poll of `app` for `ms` (after the executor answered it). */
    hold: (app: string, ms: number) => void holds.set(app, ms),
    pollsOf: (app: string) => polls.filter((p) => p.app === app),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function forward(base: string, method: string, path: string, headers: NodeJS.Dict<string | string[]>, body: Buffer) {
  return new Promise<{ status: number; headers: Record<string, string>; body: Buffer }>((resolve, reject) => {
    const u = new URL(path, base);
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: { ...headers, host: u.host }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 502, headers: { "content-type": String(res.headers["content-type"] ?? "application/json") }, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(15_000, () => req.destroy(new Error("timeout")));
    req.end(body);
  });
}

/** A target whose POST /effect answers after `latencyMs()`; deliveries are counted on arrival, effects once per Idempotency-Key. */
export async function startCountingTarget(latencyMs: () => number) {
  const applied = new Set<string>();
  const target: Target = await startTarget(async (r, res) => {
    if (r.path.startsWith("/effect")) {
      applied.add(String(r.headers["idempotency-key"]));
      await sleep(latencyMs());
      return reply(res, 200, { ok: true });
    }
    if (r.path.startsWith("/slow")) {
      await sleep(Number(new URL(r.path, "http://x").searchParams.get("ms") ?? "3000"));
      return reply(res, 200, { ok: true });
    }
    return reply(res, 404, {});
  });
  const forApp = (app: string) => target.requests.filter((r) => r.body.includes(`"${app}"`));
  return {
    ...target,
    applied,
    /** Requests that reached the target for the Application (the body names it). */
    deliveries: (app: string) => forApp(app).length,
    /** When the first request for the Application reached the target (ms since the epoch). */
    firstDeliveryAt: (app: string): number | undefined => forApp(app)[0]?.at,
    /** Distinct Idempotency-Keys among them: what an API that honours the header applied. */
    effects: (app: string) => new Set(forApp(app).map((r) => r.headers["idempotency-key"])).size,
  };
}
export type CountingTarget = Awaited<ReturnType<typeof startCountingTarget>>;

/** Two replicas behind the balancer, the addon enabled against it, a namespace. */
export async function startRunsCluster(options: Partial<ReplicaOptions> = {}, replicas = 2) {
  const token = randomBytes(24).toString("hex");
  const o = { ...replicaDefaults, ...options };
  const set: Replica[] = [];
  for (let i = 0; i < replicas; i++) set.push(new Replica(String.fromCharCode(97 + i), await closedPort(), token, o));
  await Promise.all(set.map((r) => r.start()));
  const balancer = await startBalancer(() => set.map((r) => r.url));
  const out = await vela("addon", "enable", "dist/step-executor", `executorURL=${balancer.url}`, `token=${token}`, "-y");
  if (!/enabled success/i.test(out)) throw new Error(`vela addon enable: ${out}`);
  const ns = await tempNamespace("runs-e2e");
  return {
    replicas: set,
    balancer,
    ns: ns.name,
    byIdentity: (identity: string) => set.find((r) => r.identity === identity),
    async close() {
      // Applications using the addon's steps block `vela addon disable` (a later test does it):
      // delete them while the executors and KubeVela are still there.
      await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ns.name, "--wait=true", "--timeout=120s"]).catch(() => undefined);
      await Promise.all(set.map((r) => r.stop("SIGTERM")));
      await balancer.close();
      await ns.delete();
    },
  };
}
export type RunsCluster = Awaited<ReturnType<typeof startRunsCluster>>;

export async function stepRunsOf(namespace: string, application: string): Promise<StepRunObject[]> {
  const api = kubeClients().kc.makeApiClient(CustomObjectsApi);
  const list = (await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, labelSelector: `${GROUP}/application=${application}` })) as { items: StepRunObject[] };
  return list.items;
}

export interface AppState {
  generation?: number;
  annotations: Record<string, string>;
  spec: unknown;
  status?: { status?: string; workflow?: { startTime?: string; finished?: boolean; steps?: { name: string; id: string; phase: string; message?: string; reason?: string; firstExecuteTime?: string; lastExecuteTime?: string }[] } };
}

export async function readApp(namespace: string, name: string): Promise<AppState | undefined> {
  try {
    const app = (await kubeClients().objects.read({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace } })) as unknown as { metadata: { generation?: number; annotations?: Record<string, string> }; spec: unknown; status?: AppState["status"] };
    return { generation: app.metadata.generation, annotations: app.metadata.annotations ?? {}, spec: app.spec, status: app.status };
  } catch {
    return undefined;
  }
}

export const stepPhase = (s: AppState | undefined, step: string) => s?.status?.workflow?.steps?.find((x) => x.name === step)?.phase;
export const workflowEnded = (s: AppState | undefined) => ["running", "workflowFailed", "workflowTerminated", "unhealthy"].includes(s?.status?.status ?? "");

// ---- the control plane's KubeVela controller --------------------------------------------------

function velaCoreFiles() {
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig) throw new Error("KUBECONFIG is not set: start the control plane (scripts/control-plane up) and eval its env");
  const state = dirname(kubeconfig); // scripts/control-plane keeps admin.kubeconfig in its state dir
  return { state, pidfile: join(state, "run", "vela-core.pid"), log: join(state, "logs", "vela-core.log") };
}

/** The vela-core pid recorded by scripts/control-plane. */
export function velaCorePid(): number {
  const { pidfile } = velaCoreFiles();
  if (!existsSync(pidfile)) throw new Error(`no ${pidfile}: is the control plane up?`);
  return Number(readFileSync(pidfile, "utf8").trim());
}

/**
 * Restarts KubeVela's controller as a pod restart would: SIGTERM (or SIGKILL), `whileDown`, then the
 * same binary and arguments again, logging where scripts/control-plane logs and recording the
 * new pid in its pid file (so `control-plane down` stops it). Resolves once it is healthy.
 */
export async function restartVelaCore(signal: "SIGTERM" | "SIGKILL" = "SIGTERM", whileDown?: () => Promise<void>): Promise<number> {
  const { pidfile, log } = velaCoreFiles();
  const pid = velaCorePid();
  const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
  const env = Object.fromEntries(environ.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  process.kill(pid, signal);
  const end = Date.now() + 15_000;
  while (existsSync(`/proc/${pid}`) && !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8").toString())) {
    if (Date.now() > end) process.kill(pid, "SIGKILL");
    await sleep(50);
  }
  await whileDown?.();
  const fd = openSync(log, "a");
  const child = spawn(argv[0]!, argv.slice(1), { env, detached: true, stdio: ["ignore", fd, fd] });
  child.unref();
  writeFileSync(pidfile, `${child.pid}\n`);
  const health = argv.find((a) => a.startsWith("--health-addr="))?.slice("--health-addr=".length);
  const ready = Date.now() + 60_000;
  for (;;) {
    try {
      if (health && (await fetch(`http://${health}/readyz`)).ok) return child.pid!;
    } catch { /* starting */ }
    if (Date.now() > ready) throw new Error("vela-core did not become ready after the restart");
    await sleep(200);
  }
}
