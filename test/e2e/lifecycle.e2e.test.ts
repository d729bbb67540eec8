// When KubeVela ends a step on its own, the executor stops that run within seconds and its StepRun
// says why — on the real controller: the step's own `timeout`, `vela workflow terminate`,
// `vela workflow restart`, and the Application deleted.
import { expect } from "chai";
import { stepRunsOf } from "../../bench/runs-lib.js";
import { tempNamespace } from "../fixtures/kube.js";
import { application, applyYaml, kubectl, startExecutorProcess, vela, waitForApp, type ExecutorProcess } from "./harness.js";

/** A wait that never ends by itself (its own timeout is an hour). */
const neverReady = (extra: Record<string, unknown> = {}) => ({
  name: "wait", type: "read-object-and-wait", ...extra,
  properties: { apiVersion: "v1", kind: "ConfigMap", name: "never-there", timeout: "1h" },
});

describe("e2e: KubeVela ending a step ends its run", function () {
  this.timeout(300_000);
  let executor: ExecutorProcess;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;

  before(async () => {
    executor = await startExecutorProcess();
    ns = await tempNamespace("e2e-lifecycle");
    await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
  });
  after(async () => {
    await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ns.name, "--wait=true", "--timeout=120s"]).catch(() => undefined);
    await ns?.delete();
    await executor?.stop();
  });

  /** The StepRun of the `wait` step, once `ok` holds for it (polled every 250 ms). */
  async function waitRun(app: string, ok: (r: { phase?: string; message?: string; session: string }) => boolean, limitMs: number) {
    const end = Date.now() + limitMs;
    let last: unknown;
    for (;;) {
      const runs = (await stepRunsOf(ns.name, app)).filter((r) => r.spec.step === "wait").map((r) => ({ phase: r.status?.phase, message: r.status?.message, session: r.spec.session }));
      last = runs;
      const found = runs.find(ok);
      if (found) return found;
      if (Date.now() > end) throw new Error(`no StepRun of ${app}/wait reached the expected state in ${limitMs} ms: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  /** The `wait` step's session once KubeVela's status shows it as `phase` (the CLI acts only on a stored status). */
  async function stepIn(app: string, phase: string, reason?: string): Promise<string> {
    const s = await waitForApp(ns.name, app, (x) => (x.workflow?.steps ?? []).some((st) => st.name === "wait" && st.phase === phase && (reason === undefined || st.reason === reason)), 120_000);
    return (s.workflow!.steps!.find((st) => st.name === "wait") as { id?: string }).id!;
  }

  it("KubeVela's step timeout: the StepRun of that session ends `cancelled: the workflow step timed out in KubeVela`", async () => {
    await applyYaml(application(ns.name, "timed-out", [neverReady({ timeout: "8s" })]));
    const session = await stepIn("timed-out", "failed", "Timeout");
    const r = await waitRun("timed-out", (x) => x.session === session && x.phase === "failed", 10_000);
    expect(r.message).to.equal("cancelled: the workflow step timed out in KubeVela");
  });

  it("vela workflow terminate: ended within seconds", async () => {
    await applyYaml(application(ns.name, "terminated", [neverReady()]));
    const session = await stepIn("terminated", "running");
    await waitRun("terminated", (x) => x.session === session && x.phase === "running", 30_000);
    await vela("workflow", "terminate", "terminated", "-n", ns.name);
    const r = await waitRun("terminated", (x) => x.session === session && x.phase === "failed", 10_000);
    expect(r.message).to.equal("cancelled: the workflow was terminated");
  });

  it("vela workflow restart: the old session's run ends, a new one waits", async () => {
    await applyYaml(application(ns.name, "restarted", [neverReady()]));
    const session = await stepIn("restarted", "running");
    await waitRun("restarted", (x) => x.session === session && x.phase === "running", 30_000);
    await vela("workflow", "restart", "restarted", "-n", ns.name);
    const ended = await waitRun("restarted", (x) => x.session === session && x.phase === "failed", 30_000);
    expect(ended.message).to.match(/^cancelled: (the workflow was restarted|the step has a new session in KubeVela \(the workflow was restarted\))$/);
    await waitRun("restarted", (x) => x.session !== session && x.phase === "running", 60_000);
  });

  it("the Application deleted: the run stops (its StepRun goes with it) and the executor logs why", async () => {
    await applyYaml(application(ns.name, "deleted", [neverReady()]));
    await waitRun("deleted", (x) => x.phase === "running", 60_000);
    await kubectl(["delete", "applications.core.oam.dev", "deleted", "-n", ns.name, "--wait=false"]);
    const end = Date.now() + 10_000;
    while (!/run cancelled: KubeVela ended its step[^\n]*deleted|"why":"the Application (was|is being) deleted"/.test(executor.logs())) {
      if (Date.now() > end) throw new Error(`the executor did not cancel the run of the deleted Application:\n${executor.logs().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
