// Reads as the Application's ServiceAccount (server/kube/kube.ts kubeReaderForRun): where an
// Application carries app.oam.dev/service-account-name, its steps read objects and Secrets as
// that ServiceAccount, by impersonation, on the real kube-apiserver with its real RBAC.
import { expect } from "chai";
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { createKubeReader, ForbiddenReadError, kubeReaderForRun } from "../../server/kube/kube.js";
import { ObjectWatches } from "../../server/kube/object-watch.js";
import { applyObject, clientWithToken, kubeClients, tempNamespace } from "../fixtures/kube.js";
import { startExecutor, type Executor } from "../fixtures/executor.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { randomUUID } from "node:crypto";

describe("impersonation of the Application's ServiceAccount (real kube-apiserver RBAC)", function () {
  this.timeout(60_000);
  let executor: Executor;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let target: Target;
  const rbac = () => kubeClients().kc.makeApiClient(RbacAuthorizationV1Api);
  const run = (application: string) => ({ namespace: ns.name, application, step: "s", session: randomUUID().slice(0, 10) });

  before(async () => {
    executor = await startExecutor();
    ns = await tempNamespace("impersonate");
    target = await startTarget((_r, res) => reply(res, 200, "ok"));
    const { core } = kubeClients();
    for (const sa of ["deployer", "reader", "watcher"]) await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: sa } } });
    for (const [name, sa] of [["as-deployer", "deployer"], ["as-reader", "reader"], ["as-watcher", "watcher"]]) {
      await applyObject({
        apiVersion: "core.oam.dev/v1beta1", kind: "Application",
        metadata: { name, namespace: ns.name, annotations: { "app.oam.dev/service-account-name": sa } },
        spec: { components: [] },
      } as never);
    }
    await applyObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "flag", namespace: ns.name }, data: { on: "yes" } } as never);
    await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "hook" }, stringData: { token: "s3cr3t-value-of-the-hook" } } });
    // "reader" may get ConfigMaps and Secrets in the namespace; "deployer" may read nothing.
    await rbac().createNamespacedRole({ namespace: ns.name, body: { metadata: { name: "reader" }, rules: [{ apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["get"] }] } });
    await rbac().createNamespacedRoleBinding({ namespace: ns.name, body: {
      metadata: { name: "reader" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
      subjects: [{ kind: "ServiceAccount", name: "reader", namespace: ns.name }],
    } });
    // "watcher" may also list and watch ConfigMaps.
    await rbac().createNamespacedRole({ namespace: ns.name, body: { metadata: { name: "watcher" }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }] } });
    await rbac().createNamespacedRoleBinding({ namespace: ns.name, body: {
      metadata: { name: "watcher" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "watcher" },
      subjects: [{ kind: "ServiceAccount", name: "watcher", namespace: ns.name }],
    } });
  });
  after(async () => { await executor.close(); await target.close(); await ns.delete(); });

  const wait = { apiVersion: "v1", kind: "ConfigMap", name: "flag", condition: "object.data.on == 'yes'", timeout: "5s" };

  it("a ServiceAccount without read rights: the wait fails at once, naming the ServiceAccount and the permission it lacks", async () => {
    const { answer } = await executor.pollUntilDone("read-object-and-wait", wait, run("as-deployer"));
    expect(answer.body.phase).to.equal("failed");
    expect(answer.body.message).to.equal(
      `error reading ConfigMap ${ns.name}/flag: ServiceAccount ${ns.name}/deployer (the Application's annotation app.oam.dev/service-account-name; the executor reads as it, as KubeVela applies as it) may not read it ` +
      `(configmaps "flag" is forbidden: User "system:serviceaccount:${ns.name}:deployer" cannot get resource "configmaps" in API group "" in the namespace "${ns.name}"); ` +
      `grant ServiceAccount ${ns.name}/deployer get on configmaps in namespace ${ns.name} (a Role and RoleBinding)`);
  });

  it("a ServiceAccount whose Role grants get: the wait succeeds", async () => {
    const { answer } = await executor.pollUntilDone("read-object-and-wait", wait, run("as-reader"));
    expect(answer.body).to.include({ phase: "succeeded", message: `ConfigMap ${ns.name}/flag: condition \`object.data.on == 'yes'\` is true` });
  });

  it("waits follow by watch where the ServiceAccount may list and watch, and re-read every poll interval where it may only get", async () => {
    const watches = new ObjectWatches({ pollIntervalMs: 100 });
    const own = await startExecutor({ watches });
    try {
      await applyObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "later", namespace: ns.name }, data: { on: "no" } } as never);
      const later = { ...wait, name: "later" };
      const [r, w] = [run("as-reader"), run("as-watcher")];
      expect((await own.poll("read-object-and-wait", later, r)).body.phase).to.equal("running");
      expect((await own.poll("read-object-and-wait", later, w)).body.phase).to.equal("running");
      const end = Date.now() + 3_000;
      while (Date.now() < end && JSON.stringify(watches.counts()) !== JSON.stringify({ watch: 1, poll: 1 })) await new Promise((res) => setTimeout(res, 20));
      // One feed per identity: the two ServiceAccounts do not share what they may see.
      expect(watches.counts()).to.deep.equal({ watch: 1, poll: 1 });
      await applyObject({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "later", namespace: ns.name }, data: { on: "yes" } } as never);
      expect((await own.pollUntilDone("read-object-and-wait", later, r, 5_000)).answer.body.phase).to.equal("succeeded");
      expect((await own.pollUntilDone("read-object-and-wait", later, w, 5_000)).answer.body.phase).to.equal("succeeded");
    } finally {
      await own.close();
    }
  });

  it("Secret lookups impersonate too: refused for the ServiceAccount without rights, nothing sent; allowed with them", async () => {
    const param = { url: `${target.url}/hook`, secretHeaders: { Authorization: { name: "hook", key: "token" } }, retries: 0 };
    const denied = await executor.pollUntilDone("http-request", param, run("as-deployer"));
    expect(denied.answer.body.phase).to.equal("failed");
    expect(denied.answer.body.message).to.match(new RegExp(`^error reading Secret ${ns.name}/hook: ServiceAccount ${ns.name}/deployer .* may not read it .*; grant ServiceAccount ${ns.name}/deployer get on secrets in namespace ${ns.name}`));
    expect(denied.answer.body.message).to.not.contain("s3cr3t");
    expect(target.requests).to.have.length(0);
    const allowed = await executor.pollUntilDone("http-request", param, run("as-reader"));
    expect(allowed.answer.body.phase).to.equal("succeeded");
    expect(target.requests.map((r) => r.headers.authorization)).to.deep.equal(["s3cr3t-value-of-the-hook"]);
  });

  it("an Application without the annotation is read for as the executor itself", async () => {
    await applyObject({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name: "plain", namespace: ns.name }, spec: { components: [] } } as never);
    const { answer } = await executor.pollUntilDone("read-object-and-wait", wait, run("plain"));
    expect(answer.body.phase).to.equal("succeeded");
  });

  it("an executor without impersonate on serviceaccounts is refused, told which rule to grant; the addon's rule lets it", async () => {
    // The executor as a ServiceAccount of its own with a token, like in the cluster: it may read
    // Applications and ConfigMaps itself, but not (yet) impersonate.
    const { core } = kubeClients();
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: "executor" } } });
    await rbac().createNamespacedRole({ namespace: ns.name, body: { metadata: { name: "executor" }, rules: [
      { apiGroups: ["core.oam.dev"], resources: ["applications"], verbs: ["get"] },
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get"] },
    ] } });
    const bind = (name: string) => rbac().createNamespacedRoleBinding({ namespace: ns.name, body: {
      metadata: { name }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name: "executor", namespace: ns.name }],
    } });
    await bind("executor");
    const token = (await core.createNamespacedServiceAccountToken({ namespace: ns.name, name: "executor", body: { spec: { audiences: [], expirationSeconds: 600 } } })).status!.token;
    const kc = clientWithToken(token);
    const ref = { apiVersion: "v1", kind: "ConfigMap", name: "flag", namespace: ns.name };
    const err = await kubeReaderForRun(createKubeReader(kc), { namespace: ns.name, application: "as-reader" }).readObject(ref).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(ForbiddenReadError);
    expect(err!.message).to.match(new RegExp(`^error reading ConfigMap ${ns.name}/flag: the executor may not impersonate ServiceAccount ${ns.name}/reader .*cannot impersonate resource "serviceaccounts".*; grant the executor's ClusterRole impersonate on serviceaccounts`));
    // The rule of addon/resources/rbac.cue, here as a Role of the namespace.
    await rbac().createNamespacedRole({ namespace: ns.name, body: { metadata: { name: "impersonate" }, rules: [{ apiGroups: [""], resources: ["serviceaccounts"], verbs: ["impersonate"] }] } });
    await bind("impersonate");
    const obj = await kubeReaderForRun(createKubeReader(kc), { namespace: ns.name, application: "as-reader" }).readObject(ref);
    expect(obj?.metadata?.name).to.equal("flag");
  });
});
