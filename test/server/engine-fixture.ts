// A RunEngine without a kube-apiserver: memory store, Secrets from a map, loopback targets
// allowed. For tests of what the engine does with every step's result.
import { pino } from "pino";
import { RunEngine } from "../../server/runs/engine.js";
import { createHttpClient } from "../../server/outbound/http-client.js";
import type { KubeReader } from "../../server/kube/kube.js";
import { MemoryRunStore } from "../../server/runs/store.js";
import type { StepKind, StepTuning } from "../../server/contract/step.js";
import type { RunIdentity } from "../../server/contract/run.js";
import type { Waker } from "../../server/kubevela/wake.js";

/** Reads Secrets of `secrets` (name → data); the tests here read no objects. */
export function secretsOnly(secrets: Record<string, Record<string, string>>): KubeReader {
  const reader: KubeReader = {
    readObject: () => Promise.reject(new Error("no objects in this test")),
    watchObject: () => { throw new Error("no objects in this test"); },
    readSecret: async (_ns, name) => secrets[name],
    impersonating: () => reader,
    impersonatingUser: () => reader,
    describeKind: () => Promise.reject(new Error("no discovery in this test")),
    application: async () => null,
  };
  return reader;
}

let n = 0;
export const newRun = (): RunIdentity => ({ namespace: "tenant", application: "app", step: "step", session: `s${++n}` });

export function memoryEngine(options: { secrets?: Record<string, Record<string, string>>; tuning?: Partial<StepTuning>; kube?: KubeReader; verifyClaims?: boolean; firstAnswerWaitMs?: number; confirmSessions?: boolean; maxRuns?: number; waker?: Waker; sweepWritesPerSecond?: number } = {}) {
  const store = new MemoryRunStore();
  const http = createHttpClient({ allow: ["127.0.0.1"] }); // test targets are on loopback
  const engine = new RunEngine({
    store, kube: options.kube ?? secretsOnly(options.secrets ?? {}), http, log: pino({ level: "silent" }), verifyClaims: options.verifyClaims,
    tuning: { pollIntervalMs: 50, secretWaitMs: 1_000, ...options.tuning }, firstAnswerWaitMs: options.firstAnswerWaitMs ?? 0, confirmSessions: options.confirmSessions,
    ...(options.maxRuns !== undefined ? { maxRuns: options.maxRuns } : {}),
    ...(options.waker ? { waker: options.waker } : {}),
    ...(options.sweepWritesPerSecond ? { sweepWritesPerSecond: options.sweepWritesPerSecond } : {}),
  });
  return {
    store,
    engine,
    /** Polls as KubeVela would until the run leaves `running` (bounded); its last answer. */
    async runToEnd(kind: StepKind, parameter: unknown, run = newRun()) {
      const end = Date.now() + 10_000;
      for (;;) {
        const view = await engine.poll(kind, run, parameter);
        if (view.phase !== "running") return { view, record: (await store.get(run))! };
        if (Date.now() > end) throw new Error(`run still running: ${view.message}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      await engine.drain(0);
      await http.close();
    },
  };
}
