import { expect } from "chai";
import { clusterPrefix } from "../../server/kube/kube.js";
import { checkObjectRef } from "../../server/kube/object-ref.js";
import { describeRef, judgeObject, prepareWait } from "../../server/kube/object-wait.js";

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

describe("object references to a managed cluster", () => {
  it("go through cluster-gateway's proxy of that cluster, checked as a path segment, and messages name it", () => {
    const fields = { apiVersion: "apiVersion", kind: "kind", name: "name", namespace: "namespace", cluster: "cluster" };
    expect(clusterPrefix("prod-eu")).to.equal("/apis/cluster.core.oam.dev/v1alpha1/clustergateways/prod-eu/proxy");
    for (const ok of ["prod-eu", "c2", "eu.prod-1"]) expect(() => checkObjectRef({ apiVersion: "v1", kind: "ConfigMap", name: "x", namespace: "a", cluster: ok }, fields)).to.not.throw();
    for (const bad of ["../kube-system", "Prod", "a/b", "a%2Fb", "x y"]) {
      expect(() => checkObjectRef({ apiVersion: "v1", kind: "ConfigMap", name: "x", namespace: "a", cluster: bad }, fields), bad).to.throw(/^cluster: .* is not a cluster name/);
    }
    expect(describeRef({ apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: "shop", cluster: "prod-eu" })).to.equal("Deployment shop/web in cluster prod-eu");
    expect(describeRef({ apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: "shop" })).to.equal("Deployment shop/web");
  });
});
