// The caller's claims, checked before a new run starts (EngineDeps.verifyClaims): the Application
// the signed body names exists, and the step's session has not already ended in its status — so
// a body replayed after its run record was pruned starts nothing.
import { expect } from "chai";
import type { ApplicationMeta } from "../../server/kubevela/applications.js";
import { endedSessions, sessionKey } from "../../server/kubevela/applications.js";
import type { KubeReader } from "../../server/kube/kube.js";
import type { StepKind } from "../../server/contract/step.js";
import { memoryEngine, newRun, secretsOnly } from "./engine-fixture.js";

let effects = 0;
const effect: StepKind<object, object> = {
  kind: "effect", description: "test", schema: {},
  prepare: (p) => p,
  execute: async () => { effects++; return { phase: "succeeded", message: "done" }; },
};

function withApplications(apps: Record<string, ApplicationMeta | null>): KubeReader {
  return { ...secretsOnly({}), application: async (ns, name) => apps[`${ns}/${name}`] ?? null };
}

describe("claims of a new run", () => {
  it("a step KubeVela retries (failed, reason Execute) has not ended its session; failed for good, succeeded and skipped have", () => {
    const ended = endedSessions([
      { name: "retrying", id: "s1", phase: "failed", reason: "Execute" },
      { name: "gave-up", id: "s2", phase: "failed", reason: "FailedAfterRetries" },
      { name: "failed", id: "s3", phase: "failed", reason: "Action" },
      { name: "done", id: "s4", phase: "succeeded" },
      { name: "skipped", id: "s5", phase: "skipped" },
      { name: "running", id: "s6", phase: "running" },
    ]);
    expect([...ended].sort()).to.deep.equal([sessionKey("done", "s4"), sessionKey("failed", "s3"), sessionKey("gave-up", "s2"), sessionKey("skipped", "s5")].sort());
  });

  it("an Application that does not exist: the step fails and nothing runs", async () => {
    const e = memoryEngine({ kube: withApplications({}), verifyClaims: true });
    try {
      const before = effects;
      const run = newRun();
      const view = await e.engine.poll(effect, run, {});
      expect(view).to.deep.include({ phase: "failed", message: "Application tenant/app does not exist; the executor starts steps only for Applications it can find" });
      expect(effects).to.equal(before);
      expect(await e.store.get(run)).to.equal(undefined);
    } finally {
      await e.close();
    }
  });

  it("a session that already ended in the Application's status (a replay): fails, nothing runs; another session runs", async () => {
    const ended = newRun();
    const e = memoryEngine({ kube: withApplications({ "tenant/app": { annotations: {}, endedSessions: new Set([sessionKey(ended.step, ended.session)]) } }), verifyClaims: true });
    try {
      const before = effects;
      const view = await e.engine.poll(effect, ended, {});
      expect(view.phase).to.equal("failed");
      expect(view.message).to.equal(`step step of Application tenant/app already ended in session ${ended.session}; a repeated request starts nothing`);
      expect(effects).to.equal(before);
      const fresh = await e.runToEnd(effect, {});
      expect(fresh.view.phase).to.equal("succeeded");
      expect(effects).to.equal(before + 1);
    } finally {
      await e.close();
    }
  });

  it("an Application that cannot be read: the step waits (5xx), it does not fail", async () => {
    const kube: KubeReader = { ...secretsOnly({}), application: () => Promise.reject(new Error("connect ECONNREFUSED")) };
    const e = memoryEngine({ kube, verifyClaims: true });
    try {
      let err: unknown;
      try { await e.engine.poll(effect, newRun(), {}); } catch (x) { err = x; }
      expect((err as { status?: number }).status).to.equal(503);
      expect((err as Error).message).to.match(/^the step executor cannot read Application tenant\/app to check the request: /);
    } finally {
      await e.close();
    }
  });
});
