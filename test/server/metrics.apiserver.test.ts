import { expect } from "chai";
import { githubResource, hostClass } from "../../server/observe/metrics.js";
import { startExecutor, type Executor } from "../fixtures/executor.js";
import { reply, sequence, startTarget, type Target } from "../fixtures/target.js";

describe("metrics", () => {
  let executor: Executor;
  let target: Target;
  before(async () => {
    executor = await startExecutor();
    target = await startTarget((_r, res) => reply(res, 200, { ok: true }));
  });
  after(async () => { await executor.close(); await target.close(); });

  it("counts polls by kind, status and phase, and times them, on /metrics", async () => {
    await executor.pollUntilDone("http-request", { url: `${target.url}/secret-path?token=abc` });
    await executor.poll("http-request", { url: "not a url" });
    await executor.post("/v1/steps/nope", "{}", { authorization: "Bearer wrong" });
    const text = await (await fetch(`${executor.url}/metrics`)).text();
    expect(text).to.match(/^step_executor_polls_total\{kind="http-request",status="200",phase="succeeded"\} [1-9]/m);
    expect(text).to.match(/^step_executor_polls_total\{kind="http-request",status="422",phase="failed"\} 1$/m);
    expect(text).to.match(/^step_executor_polls_total\{kind="unknown",status="401",phase="failed"\} 1$/m);
    expect(text).to.match(/^step_executor_poll_duration_seconds_count\{kind="http-request"\} [1-9]/m);
    expect(text).to.match(/^step_executor_process_resident_memory_bytes /m);
    expect(text).to.match(/^step_executor_outbound_requests_total\{host_class="loopback",status="200"\} [1-9]/m);
    // Nothing a user typed reaches the labels.
    expect(text).not.to.contain("secret-path");
    expect(text).not.to.contain("token=abc");
  });

  it("counts runs started and finished by kind and outcome, their durations and retries; none left running", async () => {
    const flaky = await startTarget(sequence((res) => reply(res, 503, "busy"), (res) => reply(res, 200, { ok: true })));
    const failing = await startTarget((_r, res) => reply(res, 404, "no"));
    try {
      const ok = await executor.pollUntilDone("http-request", { url: `${flaky.url}/x`, method: "POST", retries: 2, backoff: "10ms" });
      expect(ok.answer.body.phase).to.equal("succeeded");
      const bad = await executor.pollUntilDone("http-request", { url: `${failing.url}/y` });
      expect(bad.answer.body.phase).to.equal("failed");
    } finally {
      await flaky.close();
      await failing.close();
    }
    const text = await (await fetch(`${executor.url}/metrics`)).text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, "m").exec(text)?.[1]);
    expect(value(`step_executor_runs_started_total{kind="http-request"}`)).to.be.at.least(3);
    expect(value(`step_executor_runs_finished_total{kind="http-request",outcome="failed"}`)).to.equal(1);
    expect(value(`step_executor_runs_finished_total{kind="http-request",outcome="succeeded"}`)).to.be.at.least(2);
    expect(value(`step_executor_run_duration_seconds_count{kind="http-request",outcome="failed"}`)).to.equal(1);
    expect(value(`step_executor_step_retries_total{kind="http-request"}`)).to.equal(1);
    expect(value(`step_executor_runs_running{kind="http-request"}`)).to.equal(0);
  });

  it("keeps GitHub's rate-limit resource names and nothing else in labels", () => {
    expect(githubResource("core")).to.equal("core");
    expect(githubResource("code_search")).to.equal("code_search");
    expect(githubResource(null)).to.equal("core");
    expect(githubResource("ghp_secret-Token/1")).to.equal("other");
  });

  const classes: [string, string][] = [
    ["127.0.0.1", "loopback"], ["localhost", "loopback"], ["[::1]", "loopback"], ["10.1.2.3", "private"], ["192.168.0.1", "private"],
    ["169.254.169.254", "link-local"], ["8.8.8.8", "public-ip"], ["step-executor.vela-system.svc", "cluster"], ["web", "cluster"],
    ["api.github.com", "external"],
  ];
  for (const [host, cls] of classes) it(`classes ${host} as ${cls}`, () => expect(hostClass(host)).to.equal(cls));
});
