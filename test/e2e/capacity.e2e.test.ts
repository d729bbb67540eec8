// An executor at its maximum of runs (--max-runs, addon parameter maxRuns) on the real KubeVela
// controller: a new step waits with a one-line message in `vela status` instead of growing the
// executor's memory, and starts once a run ended; the workflow does not fail (docs/operations.md "Sizing").
import { expect } from "chai";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { application, applyYaml, finished, startExecutorProcess, step, vela, waitForApp, type ExecutorProcess } from "./harness.js";

describe("e2e: an executor at capacity", function () {
  this.timeout(300_000);
  let executor: ExecutorProcess;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;

  before(async () => {
    executor = await startExecutorProcess(["--max-runs", "1"]);
    ns = await tempNamespace("e2e-capacity");
    await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
  });

  after(async () => {
    await ns?.delete();
    await executor?.stop();
  });

  it("the step past the maximum shows 'executor at capacity (1 run); waiting', then runs once the other ended; both workflows succeed", async () => {
    const wait = (cm: string) => ({ name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: cm, timeout: "4m" } });
    await kubeClients().core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: "second-go" }, data: {} } });
    await applyYaml(application(ns.name, "first", [wait("first-go")]));
    await waitForApp(ns.name, "first", (s) => s.workflow?.steps?.some((x) => x.name === "wait" && x.phase === "running") ?? false);
    // The second's ConfigMap exists: it would succeed on its first look, if it were started.
    await applyYaml(application(ns.name, "second", [wait("second-go")]));
    const full = await waitForApp(ns.name, "second", (s) => /capacity/.test(s.workflow?.steps?.find((x) => x.name === "wait")?.message ?? ""));
    expect(step(full, "wait")).to.deep.include({ phase: "running", message: "read-object-and-wait: executor at capacity (1 run); waiting" });
    const status = await vela("status", "second", "-n", ns.name);
    expect(status).to.include("executor at capacity (1 run); waiting");
    expect(executor.logs()).to.not.match(/"level":50/); // nothing logged as an error for it
    // Let KubeVela's backoff for the deferred step grow (int(2^n × 0.05) s, at least 1: polls at
    // about 1, 2, 3, 4, 5, 6, 9, 15, 27, 52 and 103 s): from 60 s on the next poll is ~40 s away, so
    // only the wake-up of the deferred step, not the backoff, can start it within the bound below
    // (without it: 10.9 s after a 40 s wait, so the wait must be this long).
    const deferredAt = Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, deferredAt + 60_000 - Date.now())));
    // The first ends; its end wakes the second, which starts and ends at once (its ConfigMap exists).
    await kubeClients().core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: "first-go" }, data: {} } });
    const t0 = Date.now();
    const first = await waitForApp(ns.name, "first", finished);
    expect(first.status, JSON.stringify(first.workflow)).to.equal("running");
    const second = await waitForApp(ns.name, "second", finished, 120_000);
    const ms = Date.now() - t0;
    expect(second.status, JSON.stringify(second.workflow)).to.equal("running");
    expect(step(second, "wait").phase).to.equal("succeeded");
    expect(ms, "first's condition true → the deferred second finished (ms)").to.be.below(15_000);
    console.log(`      (the deferred step finished ${ms} ms after the run ahead of it could end)`);
    const metrics = await (await fetch(`${executor.url}/metrics`)).text();
    expect(metrics).to.match(/^step_executor_runs_max 1$/m);
    expect(Number(/^step_executor_runs_deferred_total\{kind="read-object-and-wait"\} (\d+)$/m.exec(metrics)?.[1] ?? 0)).to.be.at.least(1);
  });
});
