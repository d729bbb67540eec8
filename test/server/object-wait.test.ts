import { expect } from "chai";
import { judgeObject, prepareWait } from "../../server/kube/object-wait.js";

const ref = { apiVersion: "v1", kind: "ConfigMap", namespace: "team-a", name: "flag" };

describe("object waits judge with CEL off the event loop", () => {
  it("succeeds with outputs, waits on a missing field, fails on the failure condition", async () => {
    const p = prepareWait(ref, { timeout: "1m", condition: "object.data.state == 'ready'", failureCondition: "object.data.state == 'broken'", outputs: { v: "object.data.version" } });
    expect(await judgeObject(p, { data: { state: "ready", version: "2" } })).to.deep.equal({
      phase: "succeeded", message: "ConfigMap team-a/flag: condition `object.data.state == 'ready'` is true", outputs: { v: "2" },
    });
    expect(await judgeObject(p, { data: { state: "pending" } })).to.equal("waiting for ConfigMap team-a/flag: condition `object.data.state == 'ready'` is false");
    expect(await judgeObject(p, {})).to.match(/^waiting for ConfigMap team-a\/flag: failureCondition `object.data.state == 'broken'` could not be evaluated: /);
    expect(await judgeObject(p, { data: { state: "broken" } })).to.deep.equal({ phase: "failed", message: "ConfigMap team-a/flag: failureCondition `object.data.state == 'broken'` is true" });
  });

  it("fails the step, not the executor, when a condition is too expensive for the object", async () => {
    const condition = "object.items.all(x, object.items.all(y, x >= 0))";
    const p = prepareWait(ref, { timeout: "1m", condition });
    const items = Array.from({ length: 100_000 }, (_, i) => i);
    let ticks = 0;
    const tick = setInterval(() => ticks++, 20);
    const verdict = await judgeObject(p, { items });
    clearInterval(tick);
    expect(verdict).to.deep.equal({ phase: "failed", message: `ConfigMap team-a/flag: condition \`${condition}\`: evaluation exceeded 1s (the executor's limit); simplify the expression` });
    expect(ticks, "timer ticks while the condition ran").to.be.at.least(20);
    // Marked: the next change of the object does not start it again.
    const t0 = performance.now();
    expect(await judgeObject(p, { items: [1] })).to.deep.equal(verdict);
    expect(performance.now() - t0).to.be.below(50);
  });
});
