// Run records on the real control plane: two executor processes share the StepRun store behind a
// balancer (bench/runs-lib.ts), the addon is enabled against it. SIGKILL of a replica at random
// points of a step's life (10 times; bench/kill-soak.ts runs 100), a restart of KubeVela's
// controller mid-step and mid-wait, the wake-up (no workflow restart, no spec change, no diff
// against the applied manifest, nothing copied onto rendered resources), and garbage collection of
// the records with their Application.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { stringify } from "yaml";
import { killSoak } from "../../bench/kill-soak.js";
import {
  readApp, restartVelaCore, sleep, startCountingTarget, startRunsCluster, stepPhase, stepRunsOf, workflowEnded,
  type AppState, type CountingTarget, type RunsCluster,
} from "../../bench/runs-lib.js";
import { FILTER_ANNOTATION, WAKE_ANNOTATION } from "../../server/kubevela/wake.js";
import { kubeClients } from "../fixtures/kube.js";
import { applyYaml, kubectl } from "./harness.js";

/** Every poll of the Application through the balancer, for failure messages. */
function pollLog(cluster: RunsCluster, app: string): string {
  const polls = cluster.balancer.pollsOf(app);
  const t0 = polls[0]?.at ?? 0;
  return "\npolls:\n" + polls.map((p) => `  +${p.at - t0} ms ${p.step} ${p.session} → ${p.backend.slice(-5)}: ${p.answer}`).join("\n");
}

async function waitFor(what: string, f: () => Promise<boolean>, limitMs = 120_000) {
  const end = Date.now() + limitMs;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** An Application with two components: c1 deployed first, c2 by the last step. */
function twoComponentApp(namespace: string, name: string, steps: unknown[]) {
  const component = (c: string) => ({
    name: `${name}-${c}`, type: "k8s-objects",
    properties: { objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `${name}-${c}` }, data: { c } }] },
  });
  return {
    apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace },
    spec: {
      components: [component("c1"), component("c2")],
      workflow: { steps: [{ name: "deploy", type: "apply-component", properties: { component: `${name}-c1` } }, ...steps, { name: "deploy2", type: "apply-component", properties: { component: `${name}-c2` } }] },
    },
  };
}

describe("e2e: run records across executor replicas, crashes, controller restarts and wake-ups", function () {
  this.timeout(600_000);
  let cluster: RunsCluster;
  let target: CountingTarget;

  before(async () => {
    cluster = await startRunsCluster();
    target = await startCountingTarget(() => Math.random() * 300);
  });
  after(async () => {
    await target?.close();
    await cluster?.close();
  });

  it("SIGKILL of one of two replicas at random points of a step's life: one effect per run, every workflow finishes (10 kills)", async () => {
    const report = await killSoak(cluster, target, 10);
    const { iterations, ...summary } = report;
    const detail = JSON.stringify(summary) + "\n" + iterations.map((i) => JSON.stringify(i)).join("\n");
    expect(report.finished, detail).to.equal(10);
    expect(report.exactlyOneEffect, detail).to.equal(10);
    expect(report.extraSessions, detail).to.equal(0);
    expect(report.duplicateDeliveriesOutsideWindow, detail).to.equal(0);
    // A second delivery happens only when the kill caught the request in flight, and then carries
    // the same Idempotency-Key, so an API honouring it applies it once (docs/runs.md).
    for (const i of iterations) if (i.deliveries > 1) expect(["in-flight", "intent-recorded"], detail).to.include(i.stage);
  });

  it("restarting KubeVela's controller while a step's request is in flight and while a step waits: the workflow finishes, the side effect happens once", async () => {
    const app = `vela-restart-${Date.now().toString(36)}`;
    await applyYaml(twoComponentApp(cluster.ns, app, [
      { name: "call", type: "http-request", properties: { url: `${target.url}/slow?ms=4000`, method: "POST", body: { app } } },
      { name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: `${app}-go`, timeout: "5m" } },
    ]));
    await waitFor("the request to reach the target", async () => target.deliveries(app) === 1);
    await restartVelaCore(); // the executor is mid-request; KubeVela waits on the step
    await waitFor("the wait step to be waiting", async () => stepPhase(await readApp(cluster.ns, app), "wait") === "running");
    // Down while the condition becomes true; back up, it polls and goes on.
    await restartVelaCore("SIGTERM", () => kubeClients().core.createNamespacedConfigMap({ namespace: cluster.ns, body: { metadata: { name: `${app}-go` }, data: {} } }).then(() => undefined));
    let s: AppState | undefined;
    await waitFor("the workflow to finish", async () => workflowEnded(s = await readApp(cluster.ns, app)));
    expect(s!.status?.status, JSON.stringify(s!.status?.workflow)).to.equal("running");
    expect(target.deliveries(app)).to.equal(1);
    // A restart during the reconcile that first ran a step loses that step's session (KubeVela
    // gives it a new one): a side-effect step had only claimed it (attempts 0), a wait may have
    // started a second, harmless run. One started `call`.
    const runs = await stepRunsOf(cluster.ns, app);
    expect(runs.filter((r) => r.spec.step === "call" && (r.status?.attempts ?? 0) > 0).map((r) => r.status?.phase), JSON.stringify(runs.map((r) => [r.spec.step, r.status]))).to.deep.equal(["succeeded"]);
  });

  it("a write to the Application while KubeVela's reconcile first runs a step loses that step's session: the side effect still happens once", async () => {
    const app = `lost-session-${Date.now().toString(36)}`;
    cluster.balancer.hold(app, 2_000); // KubeVela stays in the reconcile that first runs `call`...
    await applyYaml(twoComponentApp(cluster.ns, app, [{ name: "call", type: "http-request", properties: { url: `${target.url}/effect`, method: "POST", body: { app } } }]));
    await waitFor("the first poll", async () => (await stepRunsOf(cluster.ns, app)).length === 1);
    await kubectl(["annotate", "applications.core.oam.dev", app, "-n", cluster.ns, "e2e/poke=1"]); // ...while this write lands
    let s: AppState | undefined;
    await waitFor("the workflow to finish", async () => workflowEnded(s = await readApp(cluster.ns, app)));
    expect(s!.status?.status, JSON.stringify(s!.status?.workflow)).to.equal("running");
    const runs = await stepRunsOf(cluster.ns, app);
    const summary = JSON.stringify(runs.map((r) => [r.spec.session, r.status?.attempts, r.status?.phase])) + pollLog(cluster, app);
    expect(runs.length, `KubeVela gave the step a new session: ${summary}`).to.equal(2);
    expect(runs.map((r) => r.status?.attempts).sort(), summary).to.deep.equal([0, 1]); // the lost session never started
    expect(target.deliveries(app)).to.equal(1);
  });

  it("wake-up: KubeVela polls the waiting step at once; no workflow restart, no spec change, no diff against the applied manifest, nothing copied onto rendered resources", async () => {
    const app = `wake-${Date.now().toString(36)}`;
    const manifest = twoComponentApp(cluster.ns, app, [
      { name: "call", type: "http-request", properties: { url: `${target.url}/effect`, method: "POST", body: { app } } },
      { name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: `${app}-go`, timeout: "5m" } },
    ]);
    // kubectl apply (client-side, with the last-applied annotation): the way Argo CD applies by default.
    await applyYaml(manifest);
    await waitFor("the wait step to be waiting", async () => stepPhase(await readApp(cluster.ns, app), "wait") === "running");
    await sleep(9_000); // KubeVela's backoff grows: the next poll would come 6–12 s later
    const before = (await readApp(cluster.ns, app))!;
    const t0 = Date.now();
    await kubeClients().core.createNamespacedConfigMap({ namespace: cluster.ns, body: { metadata: { name: `${app}-go` }, data: {} } });
    let s: AppState | undefined;
    await waitFor("the workflow to finish", async () => workflowEnded(s = await readApp(cluster.ns, app)));
    const reactionMs = Date.now() - t0;
    const after = s!;
    expect(after.status?.status, JSON.stringify(after.status?.workflow)).to.equal("running");
    expect(after.annotations[WAKE_ANNOTATION], "the executor woke the Application").to.be.a("string");
    // This wake was for this condition: sent after it became true, before the workflow ended.
    const woke = Date.parse(after.annotations[WAKE_ANNOTATION]!);
    expect(woke, "the wake's time").to.be.within(t0 - 1_000, t0 + reactionMs);
    // Well inside KubeVela's backoff: after 9 s of waiting its polls are 4 s or more apart (1, 2,
    // 4, 8 s …), so without the wake the step would end up to that much later.
    expect(reactionMs, "condition true → workflow finished (ms)").to.be.below(4_000);
    expect(after.annotations[FILTER_ANNOTATION]).to.equal(WAKE_ANNOTATION);
    // Not restarted: same workflow start, same step sessions, one call.
    expect(after.status?.workflow?.startTime).to.equal(before.status?.workflow?.startTime);
    const ids = (x: AppState) => Object.fromEntries((x.status?.workflow?.steps ?? []).filter((st) => st.name !== "deploy2").map((st) => [st.name, st.id]));
    expect(ids(after)).to.deep.equal(ids(before));
    expect(target.deliveries(app)).to.equal(1);
    const runs = await stepRunsOf(cluster.ns, app);
    const summary = JSON.stringify(runs.map((r) => [r.spec.step, r.spec.session, r.status])) + pollLog(cluster, app);
    // KubeVela may drop the first session of the pure `wait` (docs/runs.md §3): that run ends at once,
    // cancelled, when the status shows the new session (server/kubevela/step-lifecycle.ts). Only a wait may be so.
    const dropped = runs.filter((r) => r.status?.message === "cancelled: the step has a new session in KubeVela (the workflow was restarted)");
    expect(dropped.map((r) => r.spec.step).every((st) => st === "wait"), summary).to.equal(true);
    expect(runs.filter((r) => !dropped.includes(r)).map((r) => r.spec.step).sort(), summary).to.deep.equal(["call", "wait"]);
    // Spec unchanged, generation unchanged, and no difference from the applied manifest.
    expect(after.spec).to.deep.equal(before.spec);
    expect(after.generation).to.equal(1);
    const diff = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn("kubectl", ["diff", "-f", "-"], { env: process.env });
      let out = "";
      p.stdout.on("data", (d) => (out += d));
      p.stderr.on("data", (d) => (out += d));
      p.on("close", (code) => resolve({ code, out }));
      p.stdin.end(stringify(manifest));
    });
    expect(diff, "kubectl diff against the applied manifest").to.deep.equal({ code: 0, out: "" });
    // The resources rendered before and after the wake carry no wake annotation.
    for (const c of ["c1", "c2"]) {
      const cm = await kubeClients().core.readNamespacedConfigMap({ namespace: cluster.ns, name: `${app}-${c}` });
      expect(cm.metadata?.annotations ?? {}, `ConfigMap ${app}-${c}`).not.to.have.any.keys(WAKE_ANNOTATION, FILTER_ANNOTATION);
    }
    console.log(`      (condition true → workflow finished in ${reactionMs} ms with wake-up; bench/reaction-latency.ts measures it)`);
  });

  it("deleting an Application deletes its StepRuns (owner reference, garbage collector)", async () => {
    const apps = (await kubectl(["get", "applications.core.oam.dev", "-n", cluster.ns, "-o", "jsonpath={.items[*].metadata.name}"])).split(/\s+/).filter(Boolean);
    const app = apps.find((a) => a.startsWith("soak-"))!;
    expect((await stepRunsOf(cluster.ns, app)).length).to.equal(1);
    await kubectl(["delete", "applications.core.oam.dev", app, "-n", cluster.ns, "--wait=true", "--timeout=120s"]);
    await waitFor("the StepRuns to be garbage-collected", async () => (await stepRunsOf(cluster.ns, app)).length === 0, 90_000);
  });
});
