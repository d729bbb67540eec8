// The sweep's writes are paced (EngineDeps.sweepWritesPerSecond): when a replica holding many runs
// dies, the survivors release its runs at a bounded rate instead of as fast as the API server
// answers (before: ≈ 200 StepRun PATCHes/s, the kube-apiserver at ≈ 90 % of this machine).
import { expect } from "chai";
import { runKey } from "../../server/runs/store.js";
import type { RunRecord, RunUpdate } from "../../server/runs/store.js";
import { memoryEngine, newRun } from "./engine-fixture.js";

describe("sweep pace", () => {
  async function orphans(e: ReturnType<typeof memoryEngine>, n: number) {
    for (let i = 0; i < n; i++) {
      const run = newRun();
      const { record } = await e.store.create({ key: runKey(run), kind: "read-object-and-wait", run, phase: "running", message: "waiting", outputs: {}, createdAt: Date.now(), holder: "gone-executor", attempts: 1 });
      await e.store.update(record, { acknowledged: true }); // KubeVela stored the session: the sweep may wake it
    }
  }

  /** Records when each release (an update emptying the holder) was written. */
  function recordReleases(e: ReturnType<typeof memoryEngine>): number[] {
    const at: number[] = [];
    const update = e.store.update.bind(e.store);
    e.store.update = async (record: RunRecord, u: RunUpdate) => {
      if (u.holder === "") at.push(Date.now());
      return update(record, u);
    };
    return at;
  }

  it("releases the runs of a dead executor at most sweepWritesPerSecond a second", async () => {
    const e = memoryEngine({ sweepWritesPerSecond: 20 });
    try {
      await orphans(e, 10);
      const at = recordReleases(e);
      await e.engine.sweep();
      expect(at).to.have.length(10);
      // 10 writes at 20/s: 9 gaps of at least 50 ms (a slow machine only widens them).
      expect(at[9]! - at[0]!, "ms from the first release to the tenth").to.be.at.least(9 * 50 - 5);
      for (const s of (await e.store.listRunning())) expect(s.holder).to.equal("");
    } finally {
      await e.close();
    }
  });

  it("a paced sweep ends at once when the executor drains, leaving the rest to the other replicas", async () => {
    const e = memoryEngine({ sweepWritesPerSecond: 0.5 });
    try {
      await orphans(e, 5);
      const at = recordReleases(e);
      const sweeping = e.engine.sweep();
      while (at.length === 0) await new Promise((r) => setTimeout(r, 5));
      const t0 = Date.now();
      await e.engine.drain(0);
      await sweeping;
      expect(Date.now() - t0, "drain waited for the paced sweep").to.be.below(1_500);
      expect(at.length, "runs released before the drain").to.be.below(5);
    } finally {
      await e.close();
    }
  });
});
