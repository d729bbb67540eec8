// The first poll of a run waits for a quick result (firstAnswerWaitMs) so that KubeVela does not
// spend a backoff round on a step that ends in milliseconds. Each such poll holds one of
// KubeVela's reconcile workers, so a wait (a `pure` kind) answers as soon as it has looked once
// and is waiting: a burst of starting waits must not hold the controller (issue 15).
import { expect } from "chai";
import type { StepContext, StepKind } from "../../server/contract/step.js";
import type { StepResult } from "../../server/contract/run.js";
import { memoryEngine, newRun } from "./engine-fixture.js";

/** A kind that reports progress at once, then ends when `release` is called. */
function gatedKind(pure: boolean) {
  let release!: (r: StepResult) => void;
  const ended = new Promise<StepResult>((r) => (release = r));
  const kind: StepKind = {
    kind: pure ? "test-wait" : "test-effect", pure, description: "", schema: {},
    prepare: (p) => p,
    async execute(ctx: StepContext) {
      ctx.progress("waiting for the test's signal");
      return ended;
    },
  };
  return { kind, release };
}

describe("the first poll's wait for a quick result", () => {
  // Far longer than this test's mocha timeout: a poll that waited for it would fail the test.
  const firstAnswerWaitMs = 60_000;

  it("a wait (pure kind) answers as soon as it has looked once and is waiting", async () => {
    const e = memoryEngine({ firstAnswerWaitMs });
    try {
      const { kind, release } = gatedKind(true);
      const view = await e.engine.poll(kind, newRun(), {});
      expect(view).to.deep.include({ phase: "running", message: "waiting for the test's signal" });
      release({ phase: "succeeded", message: "done" });
    } finally {
      await e.close();
    }
  });

  it("a step with a side effect still waits for its result (its progress says nothing about the end)", async () => {
    const e = memoryEngine({ firstAnswerWaitMs, confirmSessions: false });
    try {
      const { kind, release } = gatedKind(false);
      const polled = e.engine.poll(kind, newRun(), {});
      let answered = false;
      void polled.then(() => { answered = true; });
      // The step has reported progress (it runs); the poll is still waiting for the result.
      await new Promise((r) => setImmediate(r));
      expect(answered).to.equal(false);
      release({ phase: "succeeded", message: "done" });
      expect(await polled).to.deep.include({ phase: "succeeded", message: "done" });
    } finally {
      await e.close();
    }
  });
});
