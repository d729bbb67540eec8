// End-to-end harness: the real control plane (started by scripts/test.sh), the real `vela` CLI,
// the executor as a real process on 127.0.0.1, and real target servers.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { kubeClients } from "../fixtures/kube.js";
import { closedPort } from "../fixtures/target.js";

const exec = promisify(execFile);

export async function vela(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec("vela", args, { env: process.env, maxBuffer: 16 << 20, timeout: 660_000 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`vela ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
}

export async function kubectl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn("kubectl", args, { env: process.env });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(" ")}: ${out}`))));
    p.stdin.end(input ?? "");
  });
}


export interface ExecutorProcess {
  url: string;
  token: string;
  logs: () => string;
  stop(): Promise<void>;
}

/** Starts `server/main.ts` as a separate process, as an operator would run it on loopback. */
export async function startExecutorProcess(extraArgs: string[] = []): Promise<ExecutorProcess> {
  const port = await closedPort();
  const token = randomBytes(24).toString("hex");
  let logs = "";
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "server/main.ts", "--host", "127.0.0.1", "--port", String(port), "--poll-interval", "250ms",
    // Every target of the e2e suites is on loopback, which the executor refuses unless allowed.
    "--outbound-allow", "127.0.0.1", ...extraArgs], {
    env: { ...process.env, STEP_EXECUTOR_TOKEN: token, STEP_EXECUTOR_LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => (logs += d));
  child.stderr!.on("data", (d) => (logs += d));
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch { /* not listening yet */ }
    if (child.exitCode !== null || Date.now() > end) throw new Error(`the executor did not become ready:\n${logs}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    token,
    logs: () => logs,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

export interface AppStatus {
  status?: string;
  workflow?: { status?: string; message?: string; finished?: boolean; steps?: { name: string; type: string; phase: string; message?: string; reason?: string }[] };
}

export async function applyYaml(obj: unknown): Promise<void> {
  await kubectl(["apply", "-f", "-"], stringify(obj));
}

export async function appStatus(namespace: string, name: string): Promise<AppStatus | undefined> {
  try {
    const app = (await kubeClients().objects.read({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace } })) as { status?: AppStatus };
    return app.status ?? {};
  } catch {
    return undefined;
  }
}

/** Polls the Application until `done` says so (every 500 ms, at most `limitMs`). */
export async function waitForApp(namespace: string, name: string, done: (s: AppStatus) => boolean, limitMs = 120_000): Promise<AppStatus> {
  const end = Date.now() + limitMs;
  let last: AppStatus | undefined;
  for (;;) {
    last = await appStatus(namespace, name);
    if (last && done(last)) return last;
    if (Date.now() > end) throw new Error(`Application ${namespace}/${name} did not reach the expected state in ${limitMs} ms; last status: ${JSON.stringify(last, null, 1)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export const finished = (s: AppStatus) => ["running", "workflowFailed", "workflowTerminated", "unhealthy"].includes(s.status ?? "");

export function step(s: AppStatus, name: string) {
  const st = s.workflow?.steps?.find((x) => x.name === name);
  if (!st) throw new Error(`no step ${name} in ${JSON.stringify(s.workflow?.steps)}`);
  return st;
}

/** A KubeVela Application with one k8s-objects component and the given workflow steps. */
export function application(namespace: string, name: string, steps: unknown[], annotations: Record<string, string> = {}) {
  return {
    apiVersion: "core.oam.dev/v1beta1",
    kind: "Application",
    metadata: { name, namespace, annotations },
    spec: {
      components: [{
        name: `${name}-config`,
        type: "k8s-objects",
        properties: { objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `${name}-config` }, data: { deployedBy: "kubevela" } }] },
      }],
      workflow: { steps: [{ name: "deploy", type: "apply-component", properties: { component: `${name}-config` } }, ...steps] },
    },
  };
}
