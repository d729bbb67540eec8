// The executor down or hung while Applications wait at our steps, on the real controller
// (docs/runs.md, "Outages"): a step the executor already works on answers from its StepRun, so
// KubeVela neither fails the workflow (no step error is counted) nor spends a reconcile worker on
// a call; once the executor returns, each run is taken over and each side effect happens once.
// An unrelated Application deploys at its usual speed while the executor is stopped (SIGSTOP).
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import {
  readApp, Replica, replicaDefaults, sleep, startCountingTarget, stepRunsOf, workflowEnded, type AppState, type CountingTarget,
} from "../../bench/runs-lib.js";
import { closedPort } from "../fixtures/target.js";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { application, applyYaml, kubectl, vela } from "./harness.js";

/** Seconds the executor stays down (env OUTAGE_SECONDS; issue 15 asks for 10 minutes, CI runs 150 s: past KubeVela's ~52 s error-retry budget). */
const OUTAGE_MS = Number(process.env.OUTAGE_SECONDS ?? "150") * 1000;
/** Applications per waiting kind (env OUTAGE_APPS_PER_KIND; CI 5, i.e. 10 Applications). */
const PER_KIND = Number(process.env.OUTAGE_APPS_PER_KIND ?? "5");

async function waitFor<T>(what: string, f: () => Promise<T | false | undefined>, limitMs: number): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe("e2e: the executor down or hung while steps wait (issue 15)", function () {
  this.timeout(1_200_000);
  let replica: Replica;
  let target: CountingTarget;
  let ns: string;
  let deleteNs: () => Promise<void>;

  before(async () => {
    const token = randomBytes(24).toString("hex");
    // One replica, called directly: when it is down, KubeVela's calls are refused, as with a
    // Service without ready endpoints (no balancer answering 503 in between).
    replica = new Replica("outage", await closedPort(), token, replicaDefaults);
    await replica.start();
    target = await startCountingTarget(() => 0);
    const out = await vela("addon", "enable", "dist/step-executor", `executorURL=${replica.url}`, `token=${token}`, "-y");
    expect(out).to.match(/enabled success/i);
    const n = await tempNamespace("e2e-outage");
    ns = n.name;
    deleteNs = n.delete;
  });
  after(async () => {
    if (replica?.child?.signalCode === null) replica.child.kill("SIGCONT");
    if (ns) await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ns, "--wait=true", "--timeout=120s"]).catch(() => undefined);
    await replica?.stop("SIGTERM");
    await target?.close();
    await deleteNs?.();
  });

  /** Each kind that waits, followed by a side effect that runs once the wait ends. */
  function apps() {
    const effect = (app: string) => ({ name: "notify", type: "http-request", properties: { url: `${target.url}/effect?app=${app}`, method: "POST", body: { app }, retries: 0 } });
    const list: { name: string; steps: unknown[] }[] = [];
    for (let i = 0; i < PER_KIND; i++) {
      const name = `read-${i}`;
      list.push({ name, steps: [{ name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: `flag-${name}`, condition: "object.data.on == 'yes'", timeout: "30m" } }, effect(name)] });
    }
    for (let i = 0; i < PER_KIND; i++) {
      const name = `apply-${i}`;
      list.push({ name, steps: [{ name: "wait", type: "apply-and-wait", properties: {
        value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `applied-${name}` }, data: { v: "1" } },
        condition: "has(object.metadata.labels) && object.metadata.labels['ready'] == 'yes'", timeout: "30m",
      } }, effect(name)] });
    }
    return list;
  }

  /** Step phases and messages that must never appear while the executor is away. */
  function badSteps(s: AppState | undefined): string[] {
    return (s?.status?.workflow?.steps ?? [])
      .filter((st) => st.phase === "failed" || /function call error|X-Step-Executor-Signature|executor\.exchange/.test(st.message ?? ""))
      .map((st) => `${st.name}: ${st.phase}: ${(st.message ?? "").slice(0, 200)}`);
  }

  it(`every executor SIGKILLed and kept down while Applications wait at each kind's step: no step error, no failed workflow; after it returns each finishes and each side effect runs once`, async () => {
    const list = apps();
    for (const a of list) await applyYaml(application(ns, a.name, a.steps));
    // Each wait is held by the executor and acknowledged by KubeVela's second poll: from then on
    // the step answers from its StepRun.
    await waitFor("every wait held and acknowledged", async () => {
      for (const a of list) {
        const runs = (await stepRunsOf(ns, a.name)).filter((r) => r.spec.step === "wait" && r.status?.phase === "running" && r.status.holder && r.status.acknowledged);
        if (runs.length !== 1) return false;
      }
      return true;
    }, 180_000);

    await replica.stop("SIGKILL");
    const downAt = Date.now();
    const seen: string[] = [];
    let conditionsSet = false;
    while (Date.now() - downAt < OUTAGE_MS) {
      for (const a of list) for (const b of badSteps(await readApp(ns, a.name))) seen.push(`${a.name}/${b}`);
      expect(seen, "steps failed or showed a call error while the executor was down").to.deep.equal([]);
      if (!conditionsSet && Date.now() - downAt > OUTAGE_MS / 3) {
        // Halfway through: the conditions hold now, and every Application is written (a reconcile
        // evaluates each waiting step at once): nothing may fail, nothing can finish yet.
        conditionsSet = true;
        for (const a of list) {
          if (a.name.startsWith("read-")) await kubeClients().core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `flag-${a.name}` }, data: { on: "yes" } } });
          else await kubectl(["label", "configmap", `applied-${a.name}`, "-n", ns, "ready=yes"]);
          await kubectl(["annotate", "applications.core.oam.dev", a.name, "-n", ns, "--overwrite", `e2e/poke=${Date.now()}`]);
        }
      }
      await sleep(2_000);
    }
    for (const a of list) expect(target.deliveries(a.name), `${a.name}: no side effect while the executor is down`).to.equal(0);

    await replica.start();
    const upAt = Date.now();
    const ended = await Promise.all(list.map((a) => waitFor(`${a.name} to end`, async () => {
      const s = await readApp(ns, a.name);
      return workflowEnded(s) && { app: a.name, s, at: Date.now() - upAt };
    }, 180_000)));
    const slowest = Math.max(...ended.map((e) => e.at));
    console.log(`      outage ${Math.round(OUTAGE_MS / 1000)} s with ${list.length} Applications waiting; after the executor returned every workflow ended within ${(slowest / 1000).toFixed(1)} s (median ${(median(ended.map((e) => e.at)) / 1000).toFixed(1)} s)`);
    // Every Application checked before any verdict, so that a failure names all that went wrong.
    const problems: string[] = [];
    for (const e of ended) {
      if (e.s?.status?.status !== "running") problems.push(`${e.app}: ended ${e.s?.status?.status}: ${JSON.stringify(e.s?.status?.workflow?.steps)}`);
      problems.push(...badSteps(e.s).map((b) => `${e.app}/${b}`));
    }
    for (const a of list) {
      if (target.deliveries(a.name) !== 1 || target.effects(a.name) !== 1) problems.push(`${a.name}: ${target.deliveries(a.name)} deliveries, ${target.effects(a.name)} effects`);
      const waits = (await stepRunsOf(ns, a.name)).filter((r) => r.spec.step === "wait");
      // One run of the wait, taken over once by the executor that came back.
      if (waits.length !== 1 || waits[0]!.status?.phase !== "succeeded" || waits[0]!.status?.attempts !== 2) {
        problems.push(`${a.name}: wait runs ${JSON.stringify(waits.map((r) => r.status))}\n  executor log:\n${replica.logs().split("\n").filter((l) => l.includes(`/${a.name}/wait/`)).join("\n").slice(-4000)}`);
      }
    }
    expect(problems.join("\n")).to.equal("");
    // KubeVela's wait backoff caps at 60 s; the wake-up after the takeover makes it much less.
    expect(slowest).to.be.below(70_000);
  });

  it("a hung executor (SIGSTOP) with Applications waiting at our steps does not slow an unrelated Application's deploy", async () => {
    if (!replica.alive) await replica.start(); // the test before failed with the executor down
    const waiting = 12;
    for (let i = 0; i < waiting; i++) {
      await applyYaml(application(ns, `hung-${i}`, [{ name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: "never-there", timeout: "30m" } }]));
    }
    await waitFor("every wait held and acknowledged", async () => {
      for (let i = 0; i < waiting; i++) {
        const runs = (await stepRunsOf(ns, `hung-${i}`)).filter((r) => r.status?.phase === "running" && r.status.holder && r.status.acknowledged);
        if (runs.length !== 1) return false;
      }
      return true;
    }, 180_000);

    /** Time from creating an Application without our steps until its workflow is running (ended). */
    let k = 0;
    const deploy = async () => {
      const name = `plain-${k++}`;
      const t0 = Date.now();
      await applyYaml(application(ns, name, []));
      const s = await waitFor(`${name} running`, async () => { const x = await readApp(ns, name); return workflowEnded(x) && x; }, 120_000);
      expect(s.status?.status).to.equal("running");
      return Date.now() - t0;
    };
    const samples = 7;
    const baseline: number[] = [];
    for (let i = 0; i < samples; i++) baseline.push(await deploy());

    replica.child!.kill("SIGSTOP");
    const hung: number[] = [];
    try {
      // Every waiting Application is written: each reconcile evaluates its waiting step now.
      for (let i = 0; i < waiting; i++) await kubectl(["annotate", "applications.core.oam.dev", `hung-${i}`, "-n", ns, "--overwrite", `e2e/poke=${Date.now()}`]);
      for (let i = 0; i < samples; i++) hung.push(await deploy());
      for (let i = 0; i < waiting; i++) expect(badSteps(await readApp(ns, `hung-${i}`)), `hung-${i}`).to.deep.equal([]);
    } finally {
      replica.child!.kill("SIGCONT");
    }
    const [b, h] = [median(baseline), median(hung)];
    console.log(`      unrelated Application to running: median ${b} ms before, ${h} ms with the executor stopped and ${waiting} Applications waiting (ratio ${(h / b).toFixed(2)})`);
    // Issue 15: within 2× the baseline. One second of slack for this shared 2-core machine (the
    // hang used to cost 10 s per evaluation of a waiting step).
    expect(h).to.be.at.most(Math.max(2 * b, b + 1_000));
  });
});
