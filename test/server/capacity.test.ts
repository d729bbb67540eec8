// An executor at its maximum of runs (--max-runs) starts no new one: the step is answered
// `running` with a message and starts on a later poll once a run ended. Nothing is lost, nothing
// runs twice, and the executor's memory stays bounded by the maximum instead of growing until the
// pod is OOM-killed (docs/operations.md, "Sizing").
import { expect } from "chai";
import type { StepKind } from "../../server/contract/step.js";
import { InputError } from "../../server/shared/errors.js";
import { runKey } from "../../server/runs/store.js";
import type { Waker } from "../../server/kubevela/wake.js";
import { memoryEngine, newRun } from "./engine-fixture.js";

/** A step that runs until released, counting its starts. */
function gated(kind = "gated", pure = false) {
  const releases: (() => void)[] = [];
  let starts = 0;
  const step: StepKind<object, object> = {
    kind, description: "test", schema: {}, pure,
    prepare: (p) => p,
    execute: async () => {
      starts++;
      await new Promise<void>((r) => releases.push(r));
      return { phase: "succeeded", message: "done" };
    },
  };
  return { step, releases, starts: () => starts };
}

/** Runs `body` with an engine of `options` and a gated step, releasing and closing both after. */
async function withEngine(options: Parameters<typeof memoryEngine>[0], body: (e: ReturnType<typeof memoryEngine>, g: ReturnType<typeof gated>) => Promise<void>): Promise<void> {
  const e = memoryEngine(options);
  const g = gated();
  try {
    await body(e, g);
  } finally {
    for (const r of g.releases) r();
    await e.close();
  }
}

/** Waits for `cond` (bounded), for what the engine does in the background. */
async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("capacity (--max-runs)", () => {
  it("past the maximum a new run is answered 'executor at capacity (N runs); waiting' with no record, and starts on a later poll once a run ended", async () => {
    await withEngine({ maxRuns: 2 }, async (e, g) => {
      const [a, b, c] = [newRun(), newRun(), newRun()];
      expect((await e.engine.poll(g.step, a, {})).phase).to.equal("running");
      expect((await e.engine.poll(g.step, b, {})).phase).to.equal("running");
      await until("two starts", () => g.starts() === 2);
      const full = await e.engine.poll(g.step, c, {});
      expect(full).to.deep.equal({ phase: "running", message: "gated: executor at capacity (2 runs); waiting", outputs: {} });
      expect(await e.store.get(c), "no record for a run that did not start").to.equal(undefined);
      expect(await e.engine.poll(g.step, c, {}), "each poll while full says so").to.deep.include({ message: "gated: executor at capacity (2 runs); waiting" });
      expect(g.starts()).to.equal(2);
      // Polls of runs already under way are answered as before.
      expect((await e.engine.poll(g.step, a, {})).message).to.not.include("capacity");
      g.releases.shift()!();
      await until("a to end", () => e.engine.activeRuns === 1);
      expect((await e.engine.poll(g.step, a, {})).phase).to.equal("succeeded");
      const started = await e.engine.poll(g.step, c, {});
      expect(started.message).to.not.include("capacity");
      await until("c to start", () => g.starts() === 3);
      expect((await e.store.get(c))!.attempts).to.equal(1);
    });
  });

  it("bad input still fails at once when the executor is full (the step is not kept waiting for nothing)", async () => {
    await withEngine({ maxRuns: 1 }, async (e, g) => {
      const picky: StepKind<{ ok?: boolean }, object> = { ...(g.step as StepKind<{ ok?: boolean }, object>), kind: "picky", prepare: (p) => { if (!p.ok) throw new InputError("ok: must be true"); return p; } };
      await e.engine.poll(g.step, newRun(), {});
      await until("one start", () => g.starts() === 1);
      let err: unknown;
      try { await e.engine.poll(picky, newRun(), {}); } catch (x) { err = x; }
      expect(err).to.be.instanceOf(InputError).with.property("message", "ok: must be true");
    });
  });

  it("a side effect waiting for its session to be confirmed stays pending while full and starts exactly once when there is room", async () => {
    await withEngine({ maxRuns: 1, confirmSessions: true }, async (e, g) => {
      const first = newRun();
      await e.engine.poll(g.step, first, {});
      await e.engine.poll(g.step, first, {}); // the second poll confirms: it starts
      await until("first start", () => g.starts() === 1);
      const second = newRun();
      expect((await e.engine.poll(g.step, second, {})).message).to.equal("gated: executor at capacity (1 run); waiting");
      expect(await e.engine.poll(g.step, second, {})).to.deep.include({ message: "gated: executor at capacity (1 run); waiting" });
      expect(g.starts()).to.equal(1);
      g.releases.shift()!();
      await until("first to end", () => e.engine.activeRuns === 0);
      await e.engine.poll(g.step, second, {}); // creates the pending record
      await e.engine.poll(g.step, second, {}); // confirms and starts
      await e.engine.poll(g.step, second, {});
      await until("second start", () => g.starts() === 2);
      expect((await e.store.get(second))!.attempts).to.equal(1);
    });
  });

  it("a run handed over by another executor is not taken over while full; it is taken over, once, when there is room", async () => {
    await withEngine({ maxRuns: 1 }, async (e, g) => {
      await e.engine.poll(g.step, newRun(), {});
      await until("one start", () => g.starts() === 1);
      const orphan = newRun();
      await e.store.create({ key: runKey(orphan), kind: "gated", run: orphan, phase: "running", message: "gated: started (handed over: executor x stopped)", outputs: {}, createdAt: Date.now(), holder: "", attempts: 1 });
      const before = (await e.store.get(orphan))!;
      expect((await e.engine.poll(g.step, orphan, {})).message).to.equal("gated: executor at capacity (1 run); waiting");
      expect(await e.store.get(orphan), "the record is untouched").to.deep.equal(before);
      g.releases.shift()!();
      await until("room", () => e.engine.activeRuns === 0);
      await e.engine.poll(g.step, orphan, {});
      await until("the takeover", () => g.starts() === 2);
      expect((await e.store.get(orphan))!.attempts).to.equal(2);
    });
  });

  it("a run that ends wakes the Application of the step deferred longest ago (it need not wait for KubeVela's backoff), once per freed slot", async () => {
    const wakes: string[] = [];
    const waker: Waker = { wake: (ns, app, reason) => { wakes.push(`${ns}/${app}: ${reason}`); }, idle: async () => {} };
    await withEngine({ maxRuns: 1, waker }, async (e, g) => {
      await e.engine.poll(g.step, newRun(), {});
      await until("one start", () => g.starts() === 1);
      const older = { ...newRun(), application: "older" };
      const newer = { ...newRun(), application: "newer" };
      await e.engine.poll(g.step, older, {});
      await e.engine.poll(g.step, newer, {});
      await e.engine.poll(g.step, older, {}); // polled again: keeps its place
      const mayStart = () => wakes.filter((w) => w.includes("may start"));
      expect(mayStart()).to.deep.equal([]);
      g.releases.shift()!();
      await until("a wake", () => mayStart().length === 1);
      expect(mayStart()).to.deep.equal(["tenant/older: step step may start: the executor has room"]);
      // older starts on its (woken) poll; when it ends, newer is woken.
      await e.engine.poll(g.step, older, {});
      await until("older to start", () => g.starts() === 2);
      g.releases.shift()!();
      await until("the second wake", () => mayStart().length === 2);
      expect(mayStart()[1]).to.equal("tenant/newer: step step may start: the executor has room");
    });
  });
});
