// read-object-and-wait on a managed cluster (`cluster:`), on the real KubeVela controller with the
// control plane's managed cluster c2 (scripts/control-plane multicluster up): KubeVela deploys a
// component there with a topology policy, and the step waits for it there, through cluster-gateway.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { kubeconfigPath, tempNamespace } from "../fixtures/kube.js";
import { applyYaml, finished, kubectl, startExecutorProcess, step, vela, waitForApp, type ExecutorProcess } from "./harness.js";

const exec = promisify(execFile);
const controlPlane = (...args: string[]) => exec("scripts/control-plane", args, { env: process.env, timeout: 600_000 });

describe("e2e: steps on a managed cluster (cluster-gateway)", function () {
  this.timeout(600_000);
  const cluster = process.env.STEP_EXECUTOR_MANAGED_CLUSTER ?? "c2";
  let executor: ExecutorProcess;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let managed: string;

  before(async () => {
    managed = join(dirname(kubeconfigPath()), "managed.kubeconfig");
    await controlPlane("multicluster", "up");
    executor = await startExecutorProcess();
    ns = await tempNamespace("e2e-mc");
    await kubectl(["--kubeconfig", managed, "create", "namespace", ns.name]);
    await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
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
    expect(msg).to.match(/^waiting for ConfigMap .*\/late in cluster c2: /);
    await controlPlane("multicluster", "up"); // restarts its kube-apiserver
    await kubectl(["--kubeconfig", managed, "-n", ns.name, "create", "configmap", "late", "--from-literal=deployedBy=kubevela"]);
    const s = await waitForApp(ns.name, "late", finished, 180_000);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
  });
});
