import { expect } from "chai";
import { applyObject, kubeClients, tempNamespace } from "../fixtures/kube.js";
import { newRun, startExecutor, type Executor } from "../fixtures/executor.js";

describe("read-object-and-wait (real kube-apiserver)", () => {
  let executor: Executor;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  before(async () => {
    executor = await startExecutor();
    ns = await tempNamespace("read-wait");
  });
  after(async () => { await executor.close(); await ns.delete(); });

  const cm = (name: string, data: Record<string, string>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns.name }, data });

  it("waits for the object to exist, then for the condition, then outputs CEL values", async () => {
    const run = newRun(ns.name);
    const param = { apiVersion: "v1", kind: "ConfigMap", name: "flag", condition: "object.data.state == 'ready'", outputs: { version: "object.data.version", size: "size(object.data)" } };
    const first = await executor.poll("read-object-and-wait", param, run);
    expect(first.body.phase).to.equal("running");
    // each message as soon as the executor has looked (polled as KubeVela would, not after a fixed sleep)
    const says = async (message: string) => {
      const end = Date.now() + 10_000;
      let last = "";
      while ((last = (await executor.poll("read-object-and-wait", param, run)).body.message as string) !== message) {
        if (Date.now() > end) throw new Error(`expected the message ${JSON.stringify(message)}, last: ${JSON.stringify(last)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await says(`waiting for ConfigMap ${ns.name}/flag to exist`);
    await applyObject(cm("flag", { state: "pending", version: "1" }));
    await says(`waiting for ConfigMap ${ns.name}/flag: condition \`object.data.state == 'ready'\` is false`);
    await applyObject(cm("flag", { state: "ready", version: "2" }));
    const { answer } = await executor.pollUntilDone("read-object-and-wait", param, run);
    expect(answer.body).to.deep.equal({
      phase: "succeeded",
      message: `ConfigMap ${ns.name}/flag: condition \`object.data.state == 'ready'\` is true`,
      outputs: { version: "2", size: 2 },
    });
  });

  it("conditions and outputs see the object as the API server sends it: timestamps are strings", async () => {
    await applyObject(cm("stamped", { a: "b" }));
    const { answer } = await executor.pollUntilDone("read-object-and-wait", {
      apiVersion: "v1", kind: "ConfigMap", name: "stamped",
      condition: "object.metadata.creationTimestamp.startsWith('20')",
      outputs: { created: "object.metadata.creationTimestamp", kind: "object.kind" },
    }, newRun(ns.name));
    expect(answer.body.phase).to.equal("succeeded");
    expect(answer.body.outputs.created).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(answer.body.outputs.kind).to.equal("ConfigMap");
  });

  it("defaults to the Application's namespace and generic readiness", async () => {
    await applyObject(cm("plain", { a: "b" }));
    const { answer } = await executor.pollUntilDone("read-object-and-wait", { apiVersion: "v1", kind: "ConfigMap", name: "plain" }, newRun(ns.name));
    expect(answer.body).to.include({ phase: "succeeded", message: `ConfigMap ${ns.name}/plain: ready (exists)` });
  });

  it("keeps waiting while a field of the condition does not exist yet", async () => {
    await applyObject(cm("nofield", { a: "b" }));
    const run = newRun(ns.name);
    const param = { apiVersion: "v1", kind: "ConfigMap", name: "nofield", condition: "object.data.later == 'x'", timeout: "1s" };
    const { answer, messages } = await executor.pollUntilDone("read-object-and-wait", param, run);
    expect(messages.some((m) => m.includes("could not be evaluated") && m.includes("later"))).to.equal(true);
    expect(answer.body.phase).to.equal("failed");
    expect(answer.body.message).to.match(/^timed out after 1s: still waiting for ConfigMap .*\/nofield: condition `object.data.later == 'x'` could not be evaluated: /);
  });

  it("fails at once when the failureCondition holds", async () => {
    await applyObject(cm("broken", { state: "error" }));
    const { answer } = await executor.pollUntilDone("read-object-and-wait", {
      apiVersion: "v1", kind: "ConfigMap", name: "broken", condition: "object.data.state == 'ok'", failureCondition: "object.data.state == 'error'",
    }, newRun(ns.name));
    expect(answer.body).to.include({ phase: "failed", message: `ConfigMap ${ns.name}/broken: failureCondition \`object.data.state == 'error'\` is true` });
  });

  it("times out on an object that never appears, saying what it waited for", async () => {
    const { answer } = await executor.pollUntilDone("read-object-and-wait", { apiVersion: "apps/v1", kind: "Deployment", name: "ghost", timeout: "500ms" }, newRun(ns.name));
    expect(answer.body).to.include({ phase: "failed", message: `timed out after 500ms: still waiting for Deployment ${ns.name}/ghost to exist` });
  });

  it("refuses another namespace and Secrets, naming the rule", async () => {
    const other = await executor.poll("read-object-and-wait", { apiVersion: "v1", kind: "ConfigMap", name: "x", namespace: "kube-system" }, newRun(ns.name));
    expect(other.status).to.equal(422);
    expect(other.body.message).to.equal(`namespace: "kube-system" is not the Application's namespace "${ns.name}"; steps read objects only in their own Application's namespace`);
    const secret = await executor.poll("read-object-and-wait", { apiVersion: "v1", kind: "Secret", name: "x" }, newRun(ns.name));
    expect(secret.status).to.equal(422);
    expect(secret.body.message).to.match(/^kind: steps do not read Secrets/);
    const applied = await executor.poll("apply-and-wait", { value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", namespace: "default" } } }, newRun(ns.name));
    expect(applied.status).to.equal(422);
    expect(applied.body.message).to.match(/^value.metadata.namespace: "default" is not the Application's namespace/);
  });

  it("reads cluster-scoped objects", async () => {
    const { answer } = await executor.pollUntilDone("read-object-and-wait", {
      apiVersion: "v1", kind: "Namespace", name: ns.name, condition: "object.status.phase == 'Active'", outputs: { uid: "object.metadata.uid" },
    }, newRun(ns.name));
    expect(answer.body.phase).to.equal("succeeded");
    const live = await kubeClients().core.readNamespace({ name: ns.name });
    expect(answer.body.outputs.uid).to.equal(live.metadata!.uid);
  });

  it("waits with a clear message for a kind the API server does not serve", async () => {
    const { answer } = await executor.pollUntilDone("read-object-and-wait", { apiVersion: "example.com/v1", kind: "Widget", name: "w", timeout: "500ms" }, newRun(ns.name));
    expect(answer.body.phase).to.equal("failed");
    expect(answer.body.message).to.match(/timed out after 500ms: still waiting: .*Widget.*example.com\/v1 .*install its CRD/);
  });

  const deployment = (name: string, replicas: number) => ({
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name, namespace: ns.name },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "c", image: "example.invalid/web:1" }] } } },
  });

  it("judges a Deployment by its rollout status, as the real deployment controller writes it", async () => {
    // kube-controller-manager runs, but no scheduler or kubelet: a 0-replica Deployment rolls
    // out, a 1-replica one never gets an available pod.
    await applyObject(deployment("empty", 0) as never);
    await applyObject(deployment("stuck", 1) as never);
    const done = await executor.pollUntilDone("read-object-and-wait", { apiVersion: "apps/v1", kind: "Deployment", name: "empty", outputs: { gen: "object.status.observedGeneration" } }, newRun(ns.name));
    expect(done.answer.body).to.deep.equal({ phase: "succeeded", message: `Deployment ${ns.name}/empty: ready (0 of 0 replicas available)`, outputs: { gen: 1 } });
    const stuck = await executor.pollUntilDone("read-object-and-wait", { apiVersion: "apps/v1", kind: "Deployment", name: "stuck", timeout: "2s" }, newRun(ns.name));
    expect(stuck.answer.body.phase).to.equal("failed");
    expect(stuck.answer.body.message).to.match(new RegExp(`^timed out after 2s: still waiting for Deployment ${ns.name}/stuck to be ready: (0 of 1 replicas updated|0 of 1 updated replicas available)$`));
  });
});
