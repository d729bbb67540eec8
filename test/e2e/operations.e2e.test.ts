// Operating the executor, seen from outside after real steps on the real KubeVela controller:
// its /metrics (names, labels, no user text) and the Kubernetes Events on the Application
// (start, retries, end; never a Secret's value).
import { expect } from "chai";
import { writeFileSync } from "node:fs";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { application, applyYaml, finished, kubectl, startExecutorProcess, step, vela, waitForApp, type ExecutorProcess } from "./harness.js";

const SECRET = "e2e-ops-secret-7d2b91";

interface Ev { reason: string; type: string; message: string; count: number; involvedObject: { kind: string; name: string; uid?: string }; source?: { component?: string } }

describe("e2e: metrics and Events after real steps", function () {
  this.timeout(300_000);
  let executor: ExecutorProcess;
  let target: Target;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let flaky = 0;

  before(async () => {
    executor = await startExecutorProcess();
    target = await startTarget((r, res) => {
      // Busy twice, echoing the credential it got (a server bug the step must not spread), then fine.
      if (r.path.startsWith("/flaky")) return ++flaky <= 2 ? reply(res, 503, { error: "busy", got: r.headers.authorization }) : reply(res, 200, { id: "job-1" });
      return reply(res, 404, { error: "no such path" });
    });
    ns = await tempNamespace("e2e-ops");
    await kubeClients().core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "api-token" }, stringData: { authorization: `Bearer ${SECRET}` } } });
    await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
    await applyYaml(application(ns.name, "ops-ok", [
      {
        name: "call", type: "http-request",
        properties: { url: `${target.url}/flaky`, method: "POST", body: { go: true }, retries: 3, backoff: "200ms", secretHeaders: { Authorization: { name: "api-token", key: "authorization" } } },
      },
      { name: "wait-config", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: "ops-ok-config", condition: "object.data.deployedBy == 'kubevela'" } },
    ]));
    await applyYaml(application(ns.name, "ops-fail", [{ name: "missing", type: "http-request", properties: { url: `${target.url}/missing` } }]));
    const ok = await waitForApp(ns.name, "ops-ok", finished);
    expect(ok.status, JSON.stringify(ok.workflow)).to.equal("running");
    expect(step(ok, "call").phase).to.equal("succeeded");
    const failed = await waitForApp(ns.name, "ops-fail", finished);
    expect(step(failed, "missing").phase).to.equal("failed");
  });

  after(async () => {
    await ns?.delete();
    await target?.close();
    await executor?.stop();
  });

  /** The executor's Events on the Application, once `done` holds (or after 20 s). */
  async function eventsOf(app: string, done: (list: Ev[]) => boolean): Promise<Ev[]> {
    // Events are written in the background after the answer that ends the step, and repeats are
    // aggregated into their Event at most every 5 s.
    const end = Date.now() + 20_000;
    for (;;) {
      const all = JSON.parse(await kubectl(["get", "events", "-n", ns.name, "--field-selector", `involvedObject.name=${app}`, "-o", "json"])).items as Ev[];
      const list = all.filter((e) => e.source?.component === "step-executor");
      if (done(list) || Date.now() > end) return list;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  it("Events on the Application: each step's start and end, its retries aggregated into one Event, no Secret value", async () => {
    const uid = JSON.parse(await kubectl(["get", "applications.core.oam.dev", "ops-ok", "-n", ns.name, "-o", "json"])).metadata.uid;
    const list = await eventsOf("ops-ok", (l) => l.length >= 5 && l.some((e) => e.reason === "StepRetrying" && e.count >= 2));
    // (Counts of start and end may exceed 1 when KubeVela drops a session of the wait: the
    // repeat is aggregated into the same Event, docs/runs.md §3.)
    const summary = list.map((e) => `${e.type} ${e.reason} ${e.message.split(" ")[1]}`).sort();
    expect(summary).to.deep.equal([
      "Normal StepStarted call",
      "Normal StepStarted wait-config",
      "Normal StepSucceeded call",
      "Normal StepSucceeded wait-config",
      "Warning StepRetrying call",
    ]);
    for (const e of list) expect(e.involvedObject).to.deep.include({ kind: "Application", name: "ops-ok", uid });
    const retry = list.find((e) => e.reason === "StepRetrying")!;
    expect(retry.count).to.equal(2);
    // The step sends secretHeaders, so the answer's body (which echoes one) is withheld.
    expect(retry.message).to.match(/^step call \(http-request\): attempt 2\/4: POST http:\/\/127\.0\.0\.1:\d+\/flaky: 503 Service Unavailable \(response body withheld: the request carried secretHeaders; .*\); retrying in /);
    expect(list.find((e) => e.reason === "StepSucceeded" && e.message.startsWith("step call "))!.message).to.match(/succeeded: POST .*\/flaky answered 200 OK$/);
    const all = await kubectl(["get", "events", "-n", ns.name, "-o", "json"]);
    expect(all).not.to.contain(SECRET);
  });

  it("a failed step: a Warning StepFailed Event with the step's message", async () => {
    const list = await eventsOf("ops-fail", (l) => l.some((e) => e.reason === "StepFailed"));
    const failed = list.find((e) => e.reason === "StepFailed");
    expect(failed, JSON.stringify(list)).to.deep.include({ type: "Warning", count: 1 });
    expect(failed!.message).to.match(/^step missing \(http-request\) failed: GET http:\/\/127\.0\.0\.1:\d+\/missing answered 404 Not Found/);
  });

  it("/metrics: runs by kind and outcome, durations, retries, running steps, polls, outbound requests and Events, no user text in labels", async () => {
    const text = await (await fetch(`${executor.url}/metrics`)).text();
    if (process.env.STEP_EXECUTOR_METRICS_SAMPLE) writeFileSync(process.env.STEP_EXECUTOR_METRICS_SAMPLE, text);
    const series = (name: string, labels: string) => new RegExp(`^${name}\\{${labels}\\} ([0-9.e+-]+)$`, "m").exec(text)?.[1];
    const num = (name: string, labels: string) => Number(series(name, labels));
    expect(num("step_executor_runs_started_total", `kind="http-request"`)).to.equal(2);
    expect(num("step_executor_runs_started_total", `kind="read-object-and-wait"`)).to.be.at.least(1);
    expect(num("step_executor_runs_finished_total", `kind="http-request",outcome="succeeded"`)).to.equal(1);
    expect(num("step_executor_runs_finished_total", `kind="http-request",outcome="failed"`)).to.equal(1);
    expect(num("step_executor_runs_finished_total", `kind="read-object-and-wait",outcome="succeeded"`)).to.be.at.least(1);
    expect(num("step_executor_run_duration_seconds_count", `kind="http-request",outcome="succeeded"`)).to.equal(1);
    // Two 503s, then backoffs of 200 ms and 400 ms less jitter (at most half): at least 0.3 s.
    expect(num("step_executor_run_duration_seconds_sum", `kind="http-request",outcome="succeeded"`)).to.be.at.least(0.3);
    expect(num("step_executor_step_retries_total", `kind="http-request"`)).to.equal(2);
    expect(num("step_executor_runs_running", `kind="http-request"`)).to.equal(0);
    expect(num("step_executor_outbound_requests_total", `host_class="loopback",status="503"`)).to.equal(2);
    expect(num("step_executor_outbound_requests_total", `host_class="loopback",status="200"`)).to.equal(1);
    expect(num("step_executor_outbound_requests_total", `host_class="loopback",status="404"`)).to.equal(1);
    // The end of a run the executor held is usually read from its StepRun by the definition, not
    // polled (docs/runs.md §12): a failed run's end may reach the executor through a poll or not.
    expect(num("step_executor_polls_total", `kind="http-request",status="200",phase="running"`)).to.be.at.least(1);
    expect(num("step_executor_poll_duration_seconds_count", `kind="read-object-and-wait"`)).to.be.at.least(1);
    expect(num("step_executor_events_total", `reason="StepRetrying",result="created"`)).to.equal(1);
    expect(num("step_executor_events_total", `reason="StepRetrying",result="aggregated"`)).to.equal(1);
    expect(num("step_executor_events_total", `reason="StepFailed",result="created"`)).to.equal(1);
    // Every label value is a kind, an outcome, a status, a class or a reason: nothing a user named.
    for (const user of [ns.name, "ops-ok", "ops-fail", "wait-config", "/flaky", "api-token", SECRET]) {
      expect(text, user).not.to.contain(user);
    }
    const own = text.split("\n").filter((l) => l.startsWith("step_executor_") && !/^step_executor_(process|nodejs)_/.test(l)).join("\n");
    const labelValues = new Set([...own.matchAll(/[a-z_]+="([^"]*)"/g)].map((m) => m[1]!));
    const allowed = /^(http-request|read-object-and-wait|apply-and-wait|github-actions|unknown|running|succeeded|failed|handed-over|lost|loopback|private|link-local|public-ip|cluster|external|error|refused|Step[A-Za-z]+|created|aggregated|dropped|core|other|watch|poll|\d{3}|[0-9.]+|\+Inf)$/;
    for (const v of labelValues) expect(v, `label value ${v}`).to.match(allowed);
  });
});
