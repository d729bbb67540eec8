// The in-cluster mode on the local control plane: the addon enabled without executorURL, its
// Deployment scheduled on a fake node (kube-scheduler + kwok, `scripts/control-plane fake-nodes`)
// and Available, the step definitions pointed at the in-cluster Service URL. kwok only plays the
// kubelet: no container runs and nothing here connects to the fake pod IPs.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { tempNamespace } from "../fixtures/kube.js";
import { namespaceKey } from "../../server/http/auth.js";
import { application, applyYaml, kubectl, vela, waitForApp } from "./harness.js";

const exec = promisify(execFile);
const IN_CLUSTER_URL = "http://step-executor.vela-system.svc:8080";

async function controlPlane(...args: string[]) {
  try {
    await exec("scripts/control-plane", args, { env: process.env, timeout: 900_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`scripts/control-plane ${args.join(" ")} failed: ${e.message}\n${e.stderr ?? ""}`);
  }
}

const json = async (...args: string[]) => JSON.parse(await kubectl([...args, "-o", "json"]));

describe("e2e: the addon in the cluster (fake nodes)", function () {
  const token = randomBytes(16).toString("hex");
  // A cold cache builds kube-scheduler and kwok first (scripts/test.sh builds them up front).
  this.timeout(900_000);

  before(async () => {
    await controlPlane("fake-nodes", "up");
    const out = await vela("addon", "enable", "dist/step-executor", `token=${token}`, "replicas=2", "-y");
    expect(out).to.match(/enabled success/i);
  });

  after(async () => {
    try {
      await vela("addon", "disable", "step-executor", "-f", "-y");
      // `vela addon disable` returns before KubeVela has deleted the addon's Application and what it
      // applied; a suite enabling the addon meanwhile would see its definitions deleted under it.
      await kubectl(["wait", "--for=delete", "deployment/step-executor", "applications.core.oam.dev/addon-step-executor",
        "workflowstepdefinition/http-request", "-n", "vela-system", "--timeout=120s"]).catch(() => undefined);
    } finally {
      await controlPlane("fake-nodes", "down");
    }
  });

  it("its Deployment becomes Available with both replicas Ready on the fake node", async () => {
    await kubectl(["wait", "--for=condition=Available", "deployment/step-executor", "-n", "vela-system", "--timeout=180s"]);
    const deploy = await json("get", "deployment", "step-executor", "-n", "vela-system");
    expect(deploy.status).to.deep.include({ replicas: 2, readyReplicas: 2, availableReplicas: 2 });
    const pods = (await json("get", "pods", "-n", "vela-system", "-l", "app.kubernetes.io/name=step-executor")).items as any[];
    const live = pods.filter((p) => !p.metadata.deletionTimestamp);
    expect(live).to.have.length(2);
    for (const p of live) {
      expect(p.spec.nodeName).to.equal("kwok-node-0");
      expect(p.spec.serviceAccountName).to.equal("step-executor");
      expect(p.status.conditions.find((c: any) => c.type === "Ready").status).to.equal("True");
    }
    // Two replicas: a PodDisruptionBudget keeps one through a drain.
    const pdb = await json("get", "pdb", "step-executor", "-n", "vela-system");
    expect(pdb.spec.minAvailable).to.equal(1);
    expect(await vela("addon", "status", "step-executor")).to.match(/enabled/i);
  });

  it("the step definitions resolve the in-cluster Service URL, and the Service selects the Ready pods", async () => {
    const cm = await json("get", "configmap", "step-executor", "-n", "vela-system");
    expect(cm.data.url).to.equal(IN_CLUSTER_URL);
    // The executor copies that URL into Secret step-executor of each namespace with an Application
    // (server/http/namespace-keys.ts); every definition reads it there, in its own namespace (addon/definitions/_shared).
    for (const kind of ["http-request", "read-object-and-wait", "apply-and-wait", "github-actions"]) {
      const def = await json("get", "workflowstepdefinition", kind, "-n", "vela-system");
      const template: string = def.spec.schematic.cue.template;
      expect(template, kind).to.match(/metadata: \{\s*name:\s*"step-executor"\s*,?\s*namespace:\s*context\.namespace/);
      expect(template, kind).to.contain('annotations["step-executor.oam.dev/url"]');
    }
    const svc = await json("get", "service", "step-executor", "-n", "vela-system");
    expect(new URL(IN_CLUSTER_URL).port).to.equal(String(svc.spec.ports[0].port));
    const slices = (await json("get", "endpointslices", "-n", "vela-system", "-l", "kubernetes.io/service-name=step-executor")).items as any[];
    const ready = slices.flatMap((s) => s.endpoints ?? []).filter((e: any) => e.conditions?.ready);
    expect(ready).to.have.length(2);
  });
  it("the readiness gate: with no ready replica a step about to start waits saying so, without calling; with ready replicas it calls", async () => {
    const cm = await json("get", "configmap", "step-executor", "-n", "vela-system");
    expect(cm.data.service).to.equal("vela-system/step-executor");
    const ns = await tempNamespace("e2e-gate");
    try {
      // No executor process runs here (kwok plays the kubelet), so nothing writes the namespace's
      // Secret: written as the executor would (server/http/namespace-keys.ts), naming the Service.
      await applyYaml({
        apiVersion: "v1", kind: "Secret", type: "Opaque",
        metadata: { name: "step-executor", namespace: ns.name, annotations: { "step-executor.oam.dev/url": cm.data.url, "step-executor.oam.dev/service": cm.data.service } },
        data: { key: Buffer.from(namespaceKey(token, ns.name)).toString("base64") },
      });
      await kubectl(["scale", "deployment/step-executor", "-n", "vela-system", "--replicas=0"]);
      await kubectl(["wait", "--for=delete", "pod", "-l", "app.kubernetes.io/name=step-executor", "-n", "vela-system", "--timeout=120s"]);
      const hook = { name: "hook", type: "http-request", properties: { url: "https://example.com/hook", method: "POST" } };
      await applyYaml(application(ns.name, "gated", [hook]));
      const unavailable = "step executor unavailable (no ready replica behind Service vela-system/step-executor); waiting";
      const waiting = await waitForApp(ns.name, "gated", (s) => s.workflow?.steps?.find((x) => x.name === "hook")?.message === unavailable, 120_000);
      expect(waiting.workflow!.steps!.find((x) => x.name === "hook")).to.include({ phase: "running" });
      // Replicas back (Ready on the fake node): the gate opens and the definition calls the
      // in-cluster URL, which this host cannot resolve — KubeVela's own call error proves the call.
      await kubectl(["scale", "deployment/step-executor", "-n", "vela-system", "--replicas=2"]);
      await kubectl(["wait", "--for=condition=Available", "deployment/step-executor", "-n", "vela-system", "--timeout=180s"]);
      await kubectl(["annotate", "applications.core.oam.dev", "gated", "-n", ns.name, "--overwrite", `e2e/poke=${Date.now()}`]);
      await waitForApp(ns.name, "gated", (s) => /executor\.exchange\.call/.test(s.workflow?.steps?.find((x) => x.name === "hook")?.message ?? ""), 120_000);
    } finally {
      await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ns.name, "--wait=true", "--timeout=120s"]).catch(() => undefined);
      await ns.delete();
      await kubectl(["scale", "deployment/step-executor", "-n", "vela-system", "--replicas=2"]).catch(() => undefined);
    }
  });
});
