// read-object-and-wait and apply-and-wait on a managed cluster (`cluster:`), on the real KubeVela
// controller with the control plane's managed cluster c2 (scripts/control-plane multicluster up):
// KubeVela deploys a component there with a topology policy, and the steps wait (and apply) there,
// through cluster-gateway; examples/multi-cluster-rollout runs as a user applies it; in
// AuthenticateApplication mode a tenant uses only the clusters the hub's RBAC grants it.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { kubeconfigPath, tempNamespace } from "../fixtures/kube.js";
import { render } from "../fixtures/examples.js";
import { reply, startTarget } from "../fixtures/target.js";
import { applyYaml, finished, kubectl, startExecutorProcess, step, vela, waitForApp, type AppStatus, type ExecutorProcess } from "./harness.js";

const exec = promisify(execFile);
const controlPlane = (...args: string[]) => exec("scripts/control-plane", args, { env: process.env, timeout: 600_000 });

/** The managed cluster up, an executor, a namespace both on the hub and in the managed cluster, the addon enabled against the executor. */
async function setUp(prefix: string, executorArgs: string[] = []) {
  const managed = join(dirname(kubeconfigPath()), "managed.kubeconfig");
  await controlPlane("multicluster", "up");
  const executor = await startExecutorProcess(executorArgs);
  const ns = await tempNamespace(prefix);
  await kubectl(["--kubeconfig", managed, "create", "namespace", ns.name]);
  await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
  return { managed, executor, ns };
}

describe("e2e: steps on a managed cluster (cluster-gateway)", function () {
  this.timeout(600_000);
  const cluster = process.env.STEP_EXECUTOR_MANAGED_CLUSTER ?? "c2";
  let executor: ExecutorProcess;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let managed: string;

  before(async () => {
    ({ managed, executor, ns } = await setUp("e2e-mc"));
  });
  after(async () => {
    await ns?.delete();
    await executor?.stop();
    await controlPlane("multicluster", "down");
  });

  const app = (name: string, waitCluster: string) => ({
    apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace: ns.name },
    spec: {
      components: [{ name, type: "k8s-objects", properties: { objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { deployedBy: "kubevela" } }] } }],
      policies: [{ name: "managed", type: "topology", properties: { clusters: [cluster], namespace: ns.name } }],
      workflow: {
        steps: [
          { name: "deploy", type: "deploy", properties: { policies: ["managed"] } },
          { name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name, cluster: waitCluster, condition: "object.data.deployedBy == 'kubevela'", timeout: "2m", outputs: { uid: "object.metadata.uid" } } },
        ],
      },
    },
  });

  it("waits for the component KubeVela deployed to the managed cluster, there (not on the hub)", async () => {
    await applyYaml(app("on-managed", cluster));
    const s = await waitForApp(ns.name, "on-managed", finished, 180_000);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    expect(step(s, "wait").phase).to.equal("succeeded");
    const onManaged = JSON.parse(await kubectl(["--kubeconfig", managed, "-n", ns.name, "get", "configmap", "on-managed", "-o", "json"]));
    const runs = JSON.parse(await kubectl(["get", "stepruns", "-n", ns.name, "-o", "json"])) as { items: { spec: { step: string }; status?: { outputs?: Record<string, unknown>; message?: string } }[] };
    const run = runs.items.find((r) => r.spec.step === "wait");
    expect(run?.status?.outputs, "the object read is the managed cluster's").to.deep.include({ uid: onManaged.metadata.uid });
    console.log(`      (step message: ${step(s, "wait").message})`);
  });

  it("a step-group waits on the component in every cluster of the topology at once (the hub as `local`)", async () => {
    const name = "everywhere";
    await applyYaml({
      apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace: ns.name },
      spec: {
        components: [{ name, type: "k8s-objects", properties: { objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { deployedBy: "kubevela" } }] } }],
        policies: [{ name: "both", type: "topology", properties: { clusters: ["local", cluster], namespace: ns.name } }],
        workflow: { steps: [
          { name: "deploy", type: "deploy", properties: { policies: ["both"] } },
          { name: "rolled-out", type: "step-group", subSteps: ["local", cluster].map((c) => (
            { name: `in-${c}`, type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name, cluster: c, outputs: { uid: "object.metadata.uid" } } })) },
        ] },
      },
    });
    const s = await waitForApp(ns.name, name, finished, 180_000);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    const runs = JSON.parse(await kubectl(["get", "stepruns", "-n", ns.name, "-o", "json"])) as { items: { spec: { step: string; application: string }; status?: { outputs?: Record<string, unknown> } }[] };
    const uidOf = (step: string) => runs.items.find((r) => r.spec.application === name && r.spec.step === step)?.status?.outputs?.uid;
    const hub = JSON.parse(await kubectl(["-n", ns.name, "get", "configmap", name, "-o", "json"])).metadata.uid;
    const there = JSON.parse(await kubectl(["--kubeconfig", managed, "-n", ns.name, "get", "configmap", name, "-o", "json"])).metadata.uid;
    expect(hub).not.to.equal(there);
    expect(uidOf("in-local"), "`local` is the hub").to.equal(hub);
    expect(uidOf(`in-${cluster}`)).to.equal(there);
  });

  it("a cluster that is not joined fails the step at once, naming it", async () => {
    await applyYaml(app("nowhere", "nowhere"));
    const s = await waitForApp(ns.name, "nowhere", finished, 180_000);
    expect(step(s, "wait").phase).to.equal("failed");
    expect(step(s, "wait").message).to.include(`cluster: "nowhere" is not a cluster joined to KubeVela (vela cluster list); fix cluster`);
  });

  it("an unreachable managed cluster makes the step wait with a clear message, never fail; it goes on when the cluster is back", async () => {
    // Nothing deploys "late": the wait starts, then the managed cluster's kube-apiserver dies.
    const waitOnly = app("late", cluster);
    waitOnly.spec.workflow.steps = waitOnly.spec.workflow.steps.filter((x) => x.name === "wait");
    (waitOnly.spec.workflow.steps[0]!.properties as { timeout: string }).timeout = "5m";
    await applyYaml(waitOnly);
    await waitForApp(ns.name, "late", (s) => /to exist/.test(s.workflow?.steps?.find((x) => x.name === "wait")?.message ?? ""), 120_000);
    const pid = Number(readFileSync(join(dirname(kubeconfigPath()), "run", "managed-kube-apiserver.pid"), "utf8"));
    process.kill(pid, "SIGKILL");
    const down = await waitForApp(ns.name, "late", (s) => !/to exist/.test(s.workflow?.steps?.find((x) => x.name === "wait")?.message ?? "") || finished(s), 120_000);
    const msg = step(down, "wait").message ?? "";
    console.log(`      (while c2 is down: ${msg})`);
    expect(step(down, "wait").phase, msg).to.equal("running");
    expect(msg).to.match(/^waiting for ConfigMap .*\/late in cluster c2: cluster c2 cannot be reached through cluster-gateway: HTTP 5\d\d /);
    await controlPlane("multicluster", "up"); // restarts its kube-apiserver
    await kubectl(["--kubeconfig", managed, "-n", ns.name, "create", "configmap", "late", "--from-literal=deployedBy=kubevela"]);
    const s = await waitForApp(ns.name, "late", finished, 180_000);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
  });

  it("apply-and-wait applies in the managed cluster and waits there; a later step takes its output; the object goes with the Application", async () => {
    const name = "applied";
    await applyYaml({
      apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace: ns.name },
      spec: {
        components: [],
        workflow: { steps: [
          { name: "apply", type: "apply-and-wait", properties: { cluster, value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied-there" }, data: { state: "applied" } }, condition: "object.data.state == 'applied'", outputs: { uid: "object.metadata.uid", name: "object.metadata.name" } }, outputs: [{ name: "applied", valueFrom: "outputs.name" }] },
          { name: "read", type: "read-object-and-wait", inputs: [{ from: "applied", parameterKey: "name" }], properties: { cluster, apiVersion: "v1", kind: "ConfigMap", outputs: { uid: "object.metadata.uid" } } },
        ] },
      },
    });
    const s = await waitForApp(ns.name, name, finished, 180_000);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    const there = JSON.parse(await kubectl(["--kubeconfig", managed, "-n", ns.name, "get", "configmap", "applied-there", "-o", "json"]));
    expect(there.data).to.deep.equal({ state: "applied" });
    expect(await kubectl(["-n", ns.name, "get", "configmap", "applied-there", "--ignore-not-found"]), "nothing applied on the hub").to.equal("");
    const runs = JSON.parse(await kubectl(["get", "stepruns", "-n", ns.name, "-o", "json"])) as { items: { spec: { step: string; application: string }; status?: { outputs?: Record<string, unknown> } }[] };
    expect(runs.items.find((r) => r.spec.application === name && r.spec.step === "apply")?.status?.outputs).to.deep.equal({ uid: there.metadata.uid, name: "applied-there" });
    // The later step read the object the earlier one named, in the same cluster.
    expect(runs.items.find((r) => r.spec.application === name && r.spec.step === "read")?.status?.outputs).to.deep.equal({ uid: there.metadata.uid });
    console.log(`      (apply: ${step(s, "apply").message})`);
    await kubectl(["-n", ns.name, "delete", "applications.core.oam.dev", name, "--wait=true", "--timeout=120s"]);
    await until(async () => (await kubectl(["--kubeconfig", managed, "-n", ns.name, "get", "configmap", "applied-there", "--ignore-not-found"])) === "", 60_000, "KubeVela to delete the applied object in the managed cluster");
  });

  it("apply-and-wait on an unreachable cluster waits (applying nothing) and goes on when it is back", async () => {
    const pid = Number(readFileSync(join(dirname(kubeconfigPath()), "run", "managed-kube-apiserver.pid"), "utf8"));
    process.kill(pid, "SIGKILL");
    try {
      await applyYaml({
        apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name: "apply-late", namespace: ns.name },
        spec: { components: [], workflow: { steps: [
          { name: "apply", type: "apply-and-wait", properties: { cluster, value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "apply-late" }, data: { v: "1" } }, condition: "object.data.v == '1'" } },
        ] } },
      });
      const down = await waitForApp(ns.name, "apply-late", (x) => /waiting for cluster/.test(x.workflow?.steps?.find((y) => y.name === "apply")?.message ?? "") || finished(x), 120_000);
      const msg = step(down, "apply").message ?? "";
      console.log(`      (while c2 is down: ${msg})`);
      expect(step(down, "apply").phase, msg).to.equal("running");
      expect(msg).to.match(/^apply-and-wait: waiting for cluster c2 before applying ConfigMap .*\/apply-late: cluster c2 cannot be reached through cluster-gateway: HTTP 5\d\d /);
    } finally {
      await controlPlane("multicluster", "up");
    }
    const s = await waitForApp(ns.name, "apply-late", finished, 180_000);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    expect(JSON.parse(await kubectl(["--kubeconfig", managed, "-n", ns.name, "get", "configmap", "apply-late", "-o", "json"])).data).to.deep.equal({ v: "1" });
  });

  it("examples/multi-cluster-rollout: waits for the rollout in the managed cluster, records the release there, notifies with both steps' outputs", async () => {
    const chat = await startTarget((_r, res) => reply(res, 200, { ok: true }));
    const ex = await tempNamespace("ex-multi-cluster");
    try {
      await kubectl(["--kubeconfig", managed, "create", "namespace", ex.name]);
      await kubectl(["apply", "-n", ex.name, "-f", "-"], render("multi-cluster-rollout", { CLUSTER: cluster, CHAT_WEBHOOK_URL: `${chat.url}/hooks/releases` }));
      // The managed cluster has no controllers: the test reports the rollout as kube-controller-manager would.
      const inCluster = (...args: string[]) => kubectl(["--kubeconfig", managed, "-n", ex.name, ...args]);
      await until(async () => (await inCluster("get", "deployment", "shop", "--ignore-not-found")) !== "", 120_000, "KubeVela to deploy the Deployment to the managed cluster");
      const generation = JSON.parse(await inCluster("get", "deployment", "shop", "-o", "json")).metadata.generation as number;
      const report = (updated: number, available: number) => inCluster("patch", "deployment", "shop", "--subresource=status", "--type=merge", "-p",
        JSON.stringify({ status: { observedGeneration: generation, replicas: 2, updatedReplicas: updated, readyReplicas: available, availableReplicas: available } }));
      await report(1, 0);
      const halfway = await waitForApp(ex.name, "shop", (x) => /1 of 2 replicas updated/.test(x.workflow?.steps?.find((y) => y.name === "rollout")?.message ?? "") || finished(x), 120_000);
      expect(step(halfway, "rollout").message).to.equal(`waiting for Deployment ${ex.name}/shop in cluster ${cluster} to be ready: 1 of 2 replicas updated`);
      expect(chat.requests, "nothing notified before the rollout is done").to.have.length(0);
      await report(2, 2);
      const s = await waitForApp(ex.name, "shop", finished, 180_000);
      const steps = (s.workflow?.steps ?? []).map((x) => `${x.name}: ${x.phase} (${x.message ?? ""})`).join("\n");
      expect(s.status, steps).to.equal("running");
      for (const x of ["deploy", "rollout", "record-release", "notify"]) expect(step(s, x).phase, steps).to.equal("succeeded");
      const record = JSON.parse(await inCluster("get", "configmap", "shop-release", "-o", "json"));
      expect(record.data).to.deep.equal({ release: "2026.11", image: "ghcr.io/acme/shop:2026.11" });
      expect(chat.requests).to.have.length(1);
      expect(JSON.parse(chat.requests[0]!.body)).to.deep.equal({
        channel: "#releases",
        text: `shop ghcr.io/acme/shop:2026.11 rolled out in ${cluster}: 2 replicas available`,
        record: `shop-release (uid ${record.metadata.uid})`,
      });
      console.log(`      (rollout: ${step(s, "rollout").message}; record-release: ${step(s, "record-release").message})`);
    } finally {
      await chat.close();
      await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ex.name, "--wait=true", "--timeout=120s"]).catch(() => undefined);
      await ex.delete();
    }
  });
});

describe("e2e: managed clusters for a tenant, KubeVela AuthenticateApplication mode", function () {
  this.timeout(600_000);
  const cluster = process.env.STEP_EXECUTOR_MANAGED_CLUSTER ?? "c2";
  let executor: ExecutorProcess;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let managed: string;

  before(async () => {
    ({ managed, executor, ns } = await setUp("e2e-mc-tenant", ["--authenticate-application", "on"]));
    await kubectl(["--kubeconfig", managed, "-n", ns.name, "create", "configmap", "there", "--from-literal=v=1"]);
    // The tenant's ServiceAccount: the built-in `admin` ClusterRole in its own namespace on the hub, no cluster yet.
    await kubectl(["-n", ns.name, "create", "serviceaccount", "tenant"]);
    await kubectl(["-n", ns.name, "create", "rolebinding", "tenant-admin", "--clusterrole=admin", `--serviceaccount=${ns.name}:tenant`]);
    await exec("bash", ["scripts/control-plane", "vela-core", "restart", "--feature-gates=AuthenticateApplication=true"], { env: process.env, timeout: 180_000 });
  });
  after(async () => {
    await exec("bash", ["scripts/control-plane", "vela-core", "restart"], { env: process.env, timeout: 180_000 }).catch(() => undefined);
    await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ns.name, "--wait=true", "--timeout=120s"]).catch(() => undefined);
    await kubectl(["delete", "clusterrolebinding,clusterrole", "-l", `step-executor-test=${ns?.name}`]).catch(() => undefined);
    await ns?.delete();
    await executor?.stop();
    await controlPlane("multicluster", "down");
  });

  const tenantApp = (name: string, steps: unknown[]) => ({
    apiVersion: "core.oam.dev/v1beta1", kind: "Application",
    metadata: { name, namespace: ns.name, annotations: { "app.oam.dev/service-account-name": "tenant" } },
    spec: { components: [], workflow: { steps } },
  });
  const failedOrDone = (s: AppStatus) => finished(s) || (s.workflow?.steps ?? []).some((x) => x.phase === "failed");

  it("a cluster the tenant is not granted is refused with what to grant; apply-and-wait applies nothing there", async () => {
    await applyYaml(tenantApp("not-granted-read", [
      { name: "read", type: "read-object-and-wait", properties: { cluster, apiVersion: "v1", kind: "ConfigMap", name: "there" } },
    ]));
    await applyYaml(tenantApp("not-granted-apply", [
      { name: "apply", type: "apply-and-wait", properties: { cluster, value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "not-granted" }, data: {} } } },
    ]));
    const read = await waitForApp(ns.name, "not-granted-read", failedOrDone, 180_000);
    const apply = await waitForApp(ns.name, "not-granted-apply", failedOrDone, 180_000);
    const grant = `a ClusterRole allowing get on clustergateways/proxy (API group cluster.core.oam.dev) with resourceNames [${cluster}], bound to ServiceAccount ${ns.name}/tenant by a ClusterRoleBinding`;
    for (const [s, name] of [[read, "read"], [apply, "apply"]] as const) {
      const msg = step(s, name).message ?? "";
      console.log(`      (${name}: ${msg})`);
      expect(step(s, name).phase, msg).to.equal("failed");
      expect(msg).to.include(`in cluster ${cluster}: ServiceAccount ${ns.name}/tenant`);
      expect(msg).to.include(`may not use cluster ${cluster}`);
      expect(msg).to.include(grant);
      expect(msg, "and what it needs in the cluster").to.include(`vela auth grant-privileges --serviceaccount tenant -n ${ns.name} --for-namespace ${ns.name} --for-cluster ${cluster}`);
    }
    expect(await kubectl(["--kubeconfig", managed, "-n", ns.name, "get", "configmap", "not-granted", "--ignore-not-found"])).to.equal("");
  });

  it("with the hub's RBAC on the cluster's proxy but no rights in the cluster, the tenant reads and applies nothing there (as KubeVela, the gateway acts as the tenant)", async () => {
    // What the refusal above says to grant on the hub: the proxy of that one cluster (KubeVela's own deploy needs the same).
    await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: `${ns.name}-use-${cluster}`, labels: { "step-executor-test": ns.name } },
        rules: [{ apiGroups: ["cluster.core.oam.dev"], resources: ["clustergateways/proxy"], resourceNames: [cluster], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] }] },
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: `${ns.name}-use-${cluster}`, labels: { "step-executor-test": ns.name } },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `${ns.name}-use-${cluster}` },
        subjects: [{ kind: "ServiceAccount", name: "tenant", namespace: ns.name }] },
    ] }));
    await applyYaml(tenantApp("no-rights-read", [
      { name: "read", type: "read-object-and-wait", properties: { cluster, apiVersion: "v1", kind: "ConfigMap", name: "there" } },
    ]));
    await applyYaml(tenantApp("no-rights-apply", [
      { name: "apply", type: "apply-and-wait", properties: { cluster, value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "no-rights" }, data: {} } } },
    ]));
    const read = await waitForApp(ns.name, "no-rights-read", failedOrDone, 180_000);
    const apply = await waitForApp(ns.name, "no-rights-apply", failedOrDone, 180_000);
    for (const [s, name] of [[read, "read"], [apply, "apply"]] as const) {
      const msg = step(s, name).message ?? "";
      console.log(`      (${name}: ${msg})`);
      expect(step(s, name).phase, msg).to.equal("failed");
      expect(msg).to.include(`may not read it in cluster ${cluster}`);
      expect(msg).to.include(`vela auth grant-privileges --serviceaccount tenant -n ${ns.name} --for-namespace ${ns.name} --for-cluster ${cluster}`);
    }
    expect(await kubectl(["--kubeconfig", managed, "-n", ns.name, "get", "configmap", "no-rights", "--ignore-not-found"])).to.equal("");
  });

  it("once granted rights in the cluster too (vela auth grant-privileges --for-cluster), the tenant's steps read and apply there", async () => {
    await vela("auth", "grant-privileges", "--serviceaccount", "tenant", "-n", ns.name, "--for-namespace", ns.name, "--for-cluster", cluster);
    await applyYaml(tenantApp("granted", [
      { name: "read", type: "read-object-and-wait", properties: { cluster, apiVersion: "v1", kind: "ConfigMap", name: "there", outputs: { v: "object.data.v" } } },
      { name: "apply", type: "apply-and-wait", properties: { cluster, value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "granted" }, data: { v: "2" } }, condition: "object.data.v == '2'" } },
    ]));
    const s = await waitForApp(ns.name, "granted", failedOrDone, 180_000);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    expect(JSON.parse(await kubectl(["--kubeconfig", managed, "-n", ns.name, "get", "configmap", "granted", "-o", "json"])).data).to.deep.equal({ v: "2" });
  });
});

/** Polls `check` until it holds (an event the test waits for, not a fixed sleep). */
async function until(check: () => Promise<boolean>, limitMs: number, what: string): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
