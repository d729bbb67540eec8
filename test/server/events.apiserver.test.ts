// Events on the real kube-apiserver: one Event per step and reason, repeats aggregated into its
// count, new Events per Application rate-limited, nothing for an Application that is gone.
import { expect } from "chai";
import { pino } from "pino";
import { ApplicationEvents, MAX_EVENT_MESSAGE } from "../../server/observe/events.js";
import { createMetrics } from "../../server/observe/metrics.js";
import { applyObject, executorClient, kubeClients, tempNamespace } from "../fixtures/kube.js";

interface Ev { reason: string; message: string; count: number; type: string; involvedObject: { kind: string; name: string; uid?: string }; source: { component: string }; reportingComponent: string }

describe("events: Kubernetes Events on the Application (real kube-apiserver)", function () {
  this.timeout(60_000);
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let uid: string;
  const log = pino({ level: "silent" });
  before(async () => {
    ns = await tempNamespace("events");
    // No components: KubeVela has nothing to deploy; the Application is only the Events' object.
    const app = (await applyObject({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name: "shop", namespace: ns.name }, spec: { components: [] } } as never)) as { metadata: { uid: string } };
    uid = app.metadata.uid;
  });
  after(async () => { await ns?.delete(); });

  async function events(): Promise<Ev[]> {
    const list = await kubeClients().core.listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.name=shop" });
    // KubeVela writes its own Events on the Application (Parsed, Rendered, ...): only ours count.
    return (list.items as unknown as Ev[]).filter((e) => e.source.component === "step-executor");
  }

  it("writes Events on the Application; repeats of a step's reason update one Event's count and message", async () => {
    const metrics = createMetrics();
    const ev = new ApplicationEvents(executorClient(), log, "executor-a", metrics, { updateIntervalMs: 50 });
    ev.emit(ns.name, "shop", "call", "Normal", "StepStarted", "step call (http-request) started");
    for (let i = 1; i <= 30; i++) ev.emit(ns.name, "shop", "call", "Warning", "StepRetrying", `attempt ${i}/31: 503; retrying`);
    await ev.idle();
    await new Promise((r) => setTimeout(r, 100));
    await ev.idle();
    const list = await events();
    expect(list.map((e) => e.reason).sort()).to.deep.equal(["StepRetrying", "StepStarted"]);
    const retry = list.find((e) => e.reason === "StepRetrying")!;
    expect(retry).to.deep.include({ count: 30, message: "attempt 30/31: 503; retrying", type: "Warning", reportingComponent: "step-executor" });
    expect(retry.source.component).to.equal("step-executor");
    expect(retry.involvedObject).to.deep.include({ kind: "Application", name: "shop", uid });
    const text = await metrics.registry.metrics();
    expect(text).to.match(/^step_executor_events_total\{reason="StepRetrying",result="created"\} 1$/m);
    expect(text).to.match(/^step_executor_events_total\{reason="StepRetrying",result="aggregated"\} 29$/m);
  });

  it("rate-limits new Events per Application (a burst, then drops), and cuts long messages", async () => {
    const metrics = createMetrics();
    const ev = new ApplicationEvents(executorClient(), log, "executor-b", metrics, { burst: 5, refillMs: 60_000 });
    const before = (await events()).length;
    for (let i = 0; i < 12; i++) ev.emit(ns.name, "shop", `step-${i}`, "Normal", "StepStarted", i === 0 ? "x".repeat(5000) : `step-${i} started`);
    await ev.idle();
    const list = await events();
    expect(list.length - before).to.equal(5);
    expect(list.find((e) => e.message.startsWith("xxx"))!.message).to.have.length(MAX_EVENT_MESSAGE);
    expect(await metrics.registry.metrics()).to.match(/^step_executor_events_total\{reason="StepStarted",result="dropped"\} 7$/m);
  });

  it("writes nothing for an Application that does not exist", async () => {
    const ev = new ApplicationEvents(executorClient(), log, "executor-c");
    ev.emit(ns.name, "gone", "call", "Normal", "StepStarted", "step call started");
    await ev.idle();
    const list = await kubeClients().core.listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.name=gone" });
    expect(list.items).to.have.length(0);
  });
});
