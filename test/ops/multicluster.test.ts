// The local control plane's managed cluster (`scripts/control-plane multicluster up|down`): a second
// etcd + kube-apiserver joined to the hub through KubeVela's cluster-gateway, vela-core with
// --enable-cluster-gateway: KubeVela's multi-cluster delivery on real components, where the
// steps' `cluster` parameter (issue 19) is to be tested.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { kubeconfigPath, tempNamespace } from "../fixtures/kube.js";
import { applyYaml, kubectl, vela, waitForApp } from "../e2e/harness.js";

const exec = promisify(execFile);

async function controlPlane(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec("scripts/control-plane", args, { env: process.env, timeout: 600_000 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`scripts/control-plane ${args.join(" ")} failed: ${e.message}\n${e.stderr ?? ""}`);
  }
}

describe("control plane: a managed cluster through cluster-gateway (multicluster up|down)", function () {
  this.timeout(600_000);
  const cluster = process.env.STEP_EXECUTOR_MANAGED_CLUSTER ?? "c2";
  let managed: string;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  const onManaged = (...args: string[]) => kubectl(["--kubeconfig", managed, ...args]);

  before(async () => {
    managed = join(dirname(kubeconfigPath()), "managed.kubeconfig");
    await controlPlane("multicluster", "up");
    ns = await tempNamespace("multicluster");
  });
  after(async () => {
    await ns?.delete();
    await controlPlane("multicluster", "down");
  });

  it("the hub reaches the managed cluster through clustergateways/<name>/proxy (a kube-apiserver of its own)", async () => {
    const viaHub = JSON.parse(await kubectl(["get", "--raw", `/apis/cluster.core.oam.dev/v1alpha1/clustergateways/${cluster}/proxy/api/v1/namespaces/default`]));
    const direct = JSON.parse(await onManaged("get", "namespace", "default", "-o", "json"));
    const hub = JSON.parse(await kubectl(["get", "namespace", "default", "-o", "json"]));
    expect(viaHub.metadata.uid).to.equal(direct.metadata.uid);
    expect(viaHub.metadata.uid, "not the hub's own namespace").to.not.equal(hub.metadata.uid);
    expect(await kubectl(["get", "--raw", `/apis/cluster.core.oam.dev/v1alpha1/clustergateways/nowhere/proxy/api/v1/namespaces`]).catch((e: Error) => e.message)).to.match(/no such cluster nowhere|not found/i);
  });

  it("vela cluster list shows it, and a topology policy deploys a component there, not on the hub", async () => {
    expect(await vela("cluster", "list")).to.match(new RegExp(`^${cluster}\\s.*ServiceAccountToken\\s+https://127\\.0\\.0\\.1:\\d+\\s+true`, "m"));
    await onManaged("create", "namespace", ns.name);
    await applyYaml({
      apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name: "to-managed", namespace: ns.name },
      spec: {
        components: [{ name: "to-managed", type: "k8s-objects", properties: { objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "to-managed" }, data: { deployedBy: "kubevela" } }] } }],
        policies: [{ name: "managed-only", type: "topology", properties: { clusters: [cluster], namespace: ns.name } }],
      },
    });
    const status = await waitForApp(ns.name, "to-managed", (s) => s.status === "running" || s.status === "workflowFailed", 120_000);
    expect(status.status, JSON.stringify(status.workflow)).to.equal("running");
    expect(JSON.parse(await onManaged("-n", ns.name, "get", "configmap", "to-managed", "-o", "json")).data).to.deep.equal({ deployedBy: "kubevela" });
    expect(await kubectl(["-n", ns.name, "get", "configmap", "to-managed"]).catch((e: Error) => e.message)).to.match(/NotFound|not found/);
  });

  it("the managed cluster's kubeconfig is written next to the hub's", () => {
    expect(readFileSync(managed, "utf8")).to.match(/server: https:\/\/127\.0\.0\.1:\d+/);
  });
});
