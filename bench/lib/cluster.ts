// The local control plane as the benches see it: kube clients, kubectl/vela, Application
// watches, the kube-apiserver's request counters and the components' processes.
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, KubeConfig, KubernetesObjectApi, Watch, type KubernetesObject } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { log, procStat, sleep } from "./common.js";

const exec = promisify(execFile);

export function kubeconfigPath(): string {
  const path = process.env.KUBECONFIG;
  if (!path || !existsSync(path)) {
    throw new Error("the benches need the local control plane: run `npm run bench` (it starts one), or `eval \"$(scripts/control-plane env)\"` after `scripts/control-plane up`");
  }
  return path;
}

let clients: { kc: KubeConfig; core: CoreV1Api; objects: KubernetesObjectApi } | undefined;
export function kube() {
  if (!clients) {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath());
    clients = { kc, core: kc.makeApiClient(CoreV1Api), objects: KubernetesObjectApi.makeApiClient(kc) };
  }
  return clients;
}

export async function run(cmd: string, args: string[], input?: string, timeoutMs = 300_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: process.env });
    let out = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("error", (e) => { clearTimeout(timer); reject(e); });
    p.on("close", (code) => { clearTimeout(timer); if (code === 0) resolve(out); else reject(new Error(`${cmd} ${args.join(" ")} (exit ${code}): ${out}`)); });
    p.stdin.end(input ?? "");
  });
}
export const kubectl = (args: string[], input?: string) => run("kubectl", args, input);
export const vela = (...args: string[]) => run("vela", args, undefined, 660_000);

export async function applyYaml(obj: unknown): Promise<void> {
  await kubectl(["apply", "-f", "-"], Array.isArray(obj) ? obj.map((o) => stringify(o)).join("---\n") : stringify(obj));
}

export async function createObject(obj: KubernetesObject) {
  return kube().objects.create(obj);
}

export async function deleteObject(obj: KubernetesObject) {
  try { await kube().objects.delete(obj, undefined, undefined, 0, undefined, "Background"); } catch { /* gone */ }
}

export async function tempNamespace(prefix: string) {
  const name = `${prefix}-${Date.now().toString(36)}`;
  await kube().core.createNamespace({ body: { metadata: { name } } });
  return {
    name,
    delete: () => kube().core.deleteNamespace({ name }).then(() => undefined, () => undefined),
  };
}

/** Enables the addon built into `addonDir` (its basename must be step-executor) against an executor URL. */
export async function enableAddon(addonDir: string, executorURL: string, token: string) {
  const out = await vela("addon", "enable", addonDir, `executorURL=${executorURL}`, `token=${token}`, "-y");
  if (!/enabled success/i.test(out)) throw new Error(`vela addon enable: ${out}`);
  // The definitions read the URL from this ConfigMap on every evaluation: wait until it is the new one.
  const end = Date.now() + 120_000;
  for (;;) {
    try {
      const cm = await kube().core.readNamespacedConfigMap({ name: "step-executor", namespace: "vela-system" });
      if (cm.data?.url === executorURL) return;
    } catch { /* not yet */ }
    if (Date.now() > end) throw new Error("ConfigMap vela-system/step-executor never pointed at the bench executor");
    await sleep(500);
  }
}

// ---- Applications -------------------------------------------------------------------------------
export interface StepStatus { name: string; type: string; phase: string; message?: string; reason?: string; firstExecuteTime?: string; lastExecuteTime?: string }
export interface AppObject extends KubernetesObject {
  status?: { status?: string; workflow?: { finished?: boolean; suspend?: boolean; message?: string; startTime?: string; endTime?: string; steps?: StepStatus[] } };
}

export function application(namespace: string, name: string, steps: unknown[], components: unknown[] = []) {
  return {
    apiVersion: "core.oam.dev/v1beta1",
    kind: "Application",
    metadata: { name, namespace },
    spec: { components, workflow: { steps } },
  };
}

export const workflowDone = (a: AppObject) =>
  ["running", "workflowFailed", "workflowTerminated", "unhealthy"].includes(a.status?.status ?? "") && a.status?.workflow?.finished === true;

export function stepOf(a: AppObject, name: string): StepStatus | undefined {
  return a.status?.workflow?.steps?.find((s) => s.name === name);
}

/**
 * One watch on the Applications of a namespace, re-opened when it ends. `until(name, predicate)`
 * resolves with the time (performance.now) of the first event that satisfies the predicate.
 */
export async function watchApplications(namespace: string) {
  type Waiter = { name: string; pred: (a: AppObject) => boolean; resolve: (v: { at: number; app: AppObject }) => void };
  const waiters = new Set<Waiter>();
  const latest = new Map<string, AppObject>();
  let closed = false;
  let abort: AbortController | undefined;
  const onEvent = (_phase: string, obj: AppObject) => {
    const at = performance.now();
    const name = obj.metadata?.name ?? "";
    latest.set(name, obj);
    for (const w of waiters) {
      if (w.name === name && w.pred(obj)) { waiters.delete(w); w.resolve({ at, app: obj }); }
    }
  };
  const open = async (): Promise<void> => {
    if (closed) return;
    let ended!: () => void;
    const endedP = new Promise<void>((r) => (ended = r));
    abort = await new Watch(kube().kc).watch(`/apis/core.oam.dev/v1beta1/namespaces/${namespace}/applications`, { allowWatchBookmarks: false }, onEvent, () => ended());
    void endedP.then(async () => {
      if (closed) return;
      await sleep(200);
      await open().catch((e) => log(`watch re-open failed: ${e}`));
    });
  };
  await open();
  return {
    latest: (name: string) => latest.get(name),
    until(name: string, pred: (a: AppObject) => boolean, limitMs = 120_000): Promise<{ at: number; app: AppObject }> {
      return new Promise((resolve, reject) => {
        const cur = latest.get(name);
        if (cur && pred(cur)) return resolve({ at: performance.now(), app: cur });
        const w: Waiter = { name, pred, resolve: (v) => { clearTimeout(timer); resolve(v); } };
        const timer = setTimeout(async () => {
          waiters.delete(w);
          // The watch may have missed it: look once more.
          try {
            const a = (await kube().objects.read({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace } })) as AppObject;
            if (pred(a)) return resolve({ at: performance.now(), app: a });
            reject(new Error(`Application ${namespace}/${name} did not reach the expected state in ${limitMs} ms: ${JSON.stringify(a.status?.workflow ?? a.status)}`));
          } catch (e) { reject(e as Error); }
        }, limitMs);
        waiters.add(w);
      });
    },
    forget: (name: string) => latest.delete(name),
    close() { closed = true; abort?.abort(); },
  };
}

export async function waitGone(obj: KubernetesObject, limitMs = 60_000) {
  const end = Date.now() + limitMs;
  for (;;) {
    try { await kube().objects.read(obj as never); } catch { return; }
    if (Date.now() > end) throw new Error(`${obj.kind} ${obj.metadata?.namespace}/${obj.metadata?.name} was not deleted in ${limitMs} ms`);
    await sleep(100);
  }
}

// ---- kube-apiserver metrics ---------------------------------------------------------------------
/** apiserver_request_total as a map from "VERB resource[/subresource]" to the count (codes summed). */
export async function apiserverRequests(): Promise<Map<string, number>> {
  const text = await kubectl(["get", "--raw", "/metrics"]);
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? "/" + labels.subresource : ""}`;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

export function deltaRequests(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) out.set(k, d);
  }
  return out;
}

export const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

// ---- control-plane processes --------------------------------------------------------------------
export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager" | "vela-core";

/** The pid of a control-plane component, from scripts/control-plane's pid files next to the kubeconfig. */
export function componentPid(name: Component): number | undefined {
  const f = join(dirname(kubeconfigPath()), "run", `${name}.pid`);
  try { return Number(readFileSync(f, "utf8").trim()) || undefined; } catch { return undefined; }
}

export function componentCpu(names: Component[] = ["etcd", "kube-apiserver", "kube-controller-manager", "vela-core"]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) {
    const pid = componentPid(n);
    if (!pid) continue;
    try { out[n] = procStat(pid).cpuSeconds; } catch { /* gone */ }
  }
  return out;
}

export async function velaCoreFlags(): Promise<string> {
  const pid = componentPid("vela-core");
  if (!pid) return "unknown";
  try { return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(1).filter(Boolean).join(" "); } catch { return "unknown"; }
}

export async function execText(cmd: string, args: string[]): Promise<string> {
  try { return (await exec(cmd, args)).stdout.trim(); } catch (e) { return `unknown (${(e as Error).message.split("\n")[0]})`; }
}
