// Shared by the run-store tests: the StepRun CRD from addon/resources/crd.cue on the real
// kube-apiserver, minimal KubeVela Applications to own records, and engines wired like main.ts.
import { resourcePath, type KubeClient } from "../../server/kube/api-client.js";
import { pino } from "pino";
import { RunEngine, type EngineDeps } from "../../server/runs/engine.js";
import { createHttpClient } from "../../server/outbound/http-client.js";
import { GROUP, KubeRunStore, PLURAL, recordName, ReplicaLeases, VERSION, type StepRunObject } from "../../server/runs/kube-store.js";
import { createKubeReader } from "../../server/kube/kube.js";
import type { Waker } from "../../server/kubevela/wake.js";
import type { RunIdentity } from "../../server/contract/run.js";
import { cueBin, sh } from "../addon/fixture.js";
import { executorClient, kubeClients } from "../fixtures/kube.js";

export const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

/** Applies the StepRun CRD exactly as the addon ships it and waits until it is served. */
export async function installStepRunCrd(): Promise<void> {
  const cue = await cueBin();
  const { stdout } = await sh(cue, ["export", "addon/resources/crd.cue", "-e", "stepRunCRD", "--out", "yaml"]);
  await sh("kubectl", ["apply", "--server-side", "--force-conflicts", "-f", "-"], { input: stdout });
  await sh("kubectl", ["wait", "--for=condition=Established", `crd/${PLURAL}.${GROUP}`, "--timeout=60s"]);
}

/** A KubeVela Application without components: an owner for StepRuns and a target for wake-ups. */
export async function createApplication(namespace: string, name: string, annotations?: Record<string, string>) {
  const { objects } = kubeClients();
  return (await objects.create({
    apiVersion: "core.oam.dev/v1beta1", kind: "Application",
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec: { components: [] },
  } as never)) as { metadata: { uid: string; annotations?: Record<string, string> } };
}

export async function readApplication(namespace: string, name: string) {
  const { objects } = kubeClients();
  return (await objects.read({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace } })) as {
    metadata: { annotations?: Record<string, string>; generation?: number; managedFields?: { manager?: string; fieldsV1?: unknown }[] };
  };
}

export async function readStepRun(kc: KubeClient, run: RunIdentity): Promise<StepRunObject> {
  return kc.request<StepRunObject>("GET", resourcePath({ group: GROUP, version: VERSION, namespace: run.namespace, plural: PLURAL, name: recordName(run) }));
}

/** A Waker that records what it was asked. */
export function recordingWaker(): Waker & { woken: string[] } {
  const woken: string[] = [];
  return { woken, wake: (ns, app) => void woken.push(`${ns}/${app}`), idle: async () => undefined };
}

export interface TestExecutor {
  identity: string;
  engine: RunEngine;
  leases: ReplicaLeases;
  store: KubeRunStore;
  close(): Promise<void>;
}

/** One executor as main.ts wires it with --run-store kube, in this process. */
export async function startKubeExecutor(identity: string, namespace: string, options: Partial<EngineDeps> & { leaseMs?: number } = {}): Promise<TestExecutor> {
  const kc = executorClient();
  const leases = new ReplicaLeases(kc, log, { identity, namespace: "default", durationMs: options.leaseMs ?? 2_000, requestTimeoutMs: 10_000 });
  await leases.start();
  const store = new KubeRunStore(kc, log, { namespace }); // the sweep sees this test's records only
  const http = createHttpClient({ allow: ["127.0.0.1"] }); // test targets are on loopback
  const engine = new RunEngine({
    store, kube: createKubeReader(kc), http, log,
    tuning: { pollIntervalMs: 100, secretWaitMs: 2_000 }, firstAnswerWaitMs: 0,
    identity, liveness: leases, handOver: true, progressWriteMs: 100,
    ...options,
  });
  return {
    identity, engine, leases, store,
    async close() {
      await engine.drain(0);
      await leases.stop();
      await http.close();
    },
  };
}

export async function until<T>(what: string, f: () => Promise<T | undefined | false>, limitMs = 20_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
