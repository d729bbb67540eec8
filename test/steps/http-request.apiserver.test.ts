import { expect } from "chai";
import { closedPort, reply, sequence, startTarget, type Target } from "../fixtures/target.js";
import { newRun, startExecutor, type Executor } from "../fixtures/executor.js";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { NESTED_ALL } from "../fixtures/cel.js";

const fast = { backoff: "10ms", maxBackoff: "50ms" };

describe("http-request", function () {
  let executor: Executor;
  let target: Target | undefined;
  before(async () => { executor = await startExecutor(); });
  after(async () => { await executor.close(); });
  afterEach(async () => { await target?.close(); target = undefined; });

  it("GETs a URL, succeeds on 2xx and exposes status and CEL outputs", async () => {
    target = await startTarget((_r, res) => reply(res, 200, { id: 42, tags: ["a", "b"] }, { etag: '"v1"' }));
    const { answer } = await executor.pollUntilDone("http-request", {
      url: `${target.url}/purge?token=abc`,
      outputs: { id: "response.body.id", etag: "response.headers['etag']", n: "size(response.body.tags)" },
    });
    expect(answer.body).to.deep.equal({ phase: "succeeded", message: `GET ${target.url}/purge answered 200 OK`, outputs: { status: 200, id: 42, etag: '"v1"', n: 2 } });
    expect(target.requests).to.have.length(1);
    expect(target.requests[0]!.path).to.equal("/purge?token=abc");
  });

  it("an output of a JSON body over 1 MiB fails saying the body was cut and is no longer JSON", async () => {
    const big = JSON.stringify({ x: 1, pad: "p".repeat(1 << 20) });
    target = await startTarget((_r, res) => reply(res, 200, big, { "content-type": "application/json" }));
    const { answer } = await executor.pollUntilDone("http-request", { url: `${target.url}/big`, outputs: { x: "response.body.x" } });
    const body = answer.body as { phase: string; message: string };
    expect(body.phase).to.equal("failed");
    expect(body.message).to.match(/^GET http:\/\/127\.0\.0\.1:\d+\/big answered 200, but .*; the response body is larger than 1 MiB and was cut there, so it is text, not JSON$/);
  });

  it("sends an object body as JSON and a string body as is", async () => {
    target = await startTarget((_r, res) => reply(res, 204));
    await executor.pollUntilDone("http-request", { url: target.url, method: "POST", body: { paths: ["/*"] }, headers: { "X-Trace": "t1" } });
    await executor.pollUntilDone("http-request", { url: target.url, method: "PUT", body: "plain text", headers: { "content-type": "text/plain" } });
    const [a, b] = target.requests;
    expect(a!.method).to.equal("POST");
    expect(a!.headers["content-type"]).to.equal("application/json");
    expect(a!.headers["x-trace"]).to.equal("t1");
    expect(JSON.parse(a!.body)).to.deep.equal({ paths: ["/*"] });
    expect(b!.method).to.equal("PUT");
    expect(b!.headers["content-type"]).to.equal("text/plain");
    expect(b!.body).to.equal("plain text");
  });

  it("fails at once on a 4xx, quoting the answer, without retrying", async () => {
    target = await startTarget((_r, res) => reply(res, 400, { error: "bad path" }));
    const { answer } = await executor.pollUntilDone("http-request", { url: target.url, ...fast });
    expect(answer.body.phase).to.equal("failed");
    expect(answer.body.message).to.equal(`GET ${target.url}/ answered 400 Bad Request: {"error":"bad path"}`);
    expect(target.requests).to.have.length(1);
  });

  it("retries 5xx with backoff and shows each attempt while it runs", async () => {
    target = await startTarget(sequence(
      (res) => reply(res, 503, "busy"),
      (res) => reply(res, 502, "gateway"),
      (res) => reply(res, 200, { ok: true }),
    ));
    const { answer, messages } = await executor.pollUntilDone("http-request", { url: target.url, retries: 4, backoff: "300ms", maxBackoff: "300ms" });
    expect(answer.body.phase).to.equal("succeeded");
    expect(target.requests).to.have.length(3);
    expect(messages.some((m) => /^attempt 1\/5: GET .* 503 Service Unavailable: busy; retrying in \d+ms$/.test(m)), messages.join("\n")).to.equal(true);
  });

  it("honours Retry-After on 429", async () => {
    target = await startTarget(sequence((res) => reply(res, 429, "slow down", { "retry-after": "1" }), (res) => reply(res, 200)));
    const { answer } = await executor.pollUntilDone("http-request", { url: target.url, ...fast });
    expect(answer.body.phase).to.equal("succeeded");
    const gap = target.requests[1]!.at - target.requests[0]!.at;
    expect(gap).to.be.at.least(900);
  });

  it("gives up after the last retry, naming the attempts and the last error", async () => {
    target = await startTarget((_r, res) => reply(res, 500, "boom"));
    const { answer } = await executor.pollUntilDone("http-request", { url: target.url, retries: 2, ...fast });
    expect(answer.body).to.include({ phase: "failed", message: `GET ${target.url}/ failed after 3 attempts; last error: 500 Internal Server Error: boom` });
    expect(target.requests).to.have.length(3);
  });

  it("retries network errors and names the host and the error", async () => {
    const port = await closedPort();
    const { answer } = await executor.pollUntilDone("http-request", { url: `http://127.0.0.1:${port}/hook`, retries: 1, ...fast });
    expect(answer.body.phase).to.equal("failed");
    expect(answer.body.message).to.match(new RegExp(`^GET http://127.0.0.1:${port}/hook failed after 2 attempts; last error: .*ECONNREFUSED`));
  });

  it("times out an attempt that gets no answer", async () => {
    target = await startTarget(async (_r, res) => { await new Promise((r) => setTimeout(r, 3000)); reply(res, 200); });
    const { answer } = await executor.pollUntilDone("http-request", { url: target.url, timeout: "200ms", retries: 0 });
    expect(answer.body).to.include({ phase: "failed", message: `GET ${target.url}/ failed after 1 attempt; last error: no answer within 200ms (timeout)` });
  });

  it("judges with successCondition and lets failureCondition win", async () => {
    target = await startTarget((r, res) => reply(res, 200, { state: r.path === "/done" ? "done" : "error" }));
    const cond = { successCondition: "response.body.state == 'done'", failureCondition: "response.body.state == 'error'" };
    const ok = await executor.pollUntilDone("http-request", { url: `${target.url}/done`, ...cond });
    const bad = await executor.pollUntilDone("http-request", { url: `${target.url}/other`, ...cond });
    expect(ok.answer.body.phase).to.equal("succeeded");
    expect(bad.answer.body.phase).to.equal("failed");
    expect(bad.answer.body.message).to.contain("failureCondition `response.body.state == 'error'` is true");
  });

  it("fails the step when a condition is too expensive for the answer; the executor keeps answering polls", async () => {
    // Within the compile-time limits (two levels), but the server sends 100,000 elements: 10^10 steps.
    target = await startTarget((_r, res) => reply(res, 200, Array.from({ length: 100_000 }, (_, i) => i)));
    const cond = "response.body.all(x, response.body.all(y, x >= 0))";
    const run = newRun();
    const param = { url: `${target.url}/big`, successCondition: cond, retries: 0 };
    const slowest = { ms: 0 };
    const t0 = performance.now();
    for (;;) {
      const t = performance.now();
      const a = await executor.poll("http-request", param, run);
      slowest.ms = Math.max(slowest.ms, performance.now() - t);
      if (a.body.phase !== "running") {
        expect(a.body).to.deep.equal({ phase: "failed", message: `GET ${target.url}/big answered 200, but successCondition \`${cond}\`: evaluation exceeded 1s (the executor's limit); simplify the expression`, outputs: {} });
        break;
      }
      expect(performance.now() - t0).to.be.below(10_000);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(slowest.ms, "slowest poll answer while the condition ran (ms)").to.be.below(600);
    expect(target.requests).to.have.length(1);
  });

  it("performs the side effect once however often and concurrently the run is polled", async () => {
    target = await startTarget(async (_r, res) => { await new Promise((r) => setTimeout(r, 200)); reply(res, 200); });
    const run = newRun();
    const answers = await Promise.all(Array.from({ length: 20 }, () => executor.poll("http-request", { url: target!.url, method: "POST" }, run)));
    expect(answers.every((a) => a.status === 200)).to.equal(true);
    await executor.pollUntilDone("http-request", { url: target.url, method: "POST" }, run);
    for (let i = 0; i < 5; i++) await executor.poll("http-request", { url: target.url, method: "POST" }, run);
    expect(target.requests).to.have.length(1);
    // A new session (a restarted workflow) is a new run: the side effect happens once more.
    await executor.pollUntilDone("http-request", { url: target.url, method: "POST" }, { ...run, session: "restarted" });
    expect(target.requests).to.have.length(2);
  });

  it("refuses link-local (cloud metadata) targets without sending anything", async () => {
    const { answer } = await executor.pollUntilDone("http-request", { url: "http://169.254.169.254/latest/meta-data/" });
    expect(answer.body.phase).to.equal("failed");
    expect(answer.body.message).to.equal("GET http://169.254.169.254/latest/meta-data/: 169.254.169.254 is a link-local address (cloud metadata service), which the executor always refuses; " +
      "an operator can lift this only with the executor flag --allow-link-local (env STEP_EXECUTOR_ALLOW_LINK_LOCAL)");
  });

  describe("under the default outbound policy (no allow-list)", () => {
    let strict: Executor;
    before(async () => { strict = await startExecutor({ http: { allow: [] } }); });
    after(async () => { await strict.close(); });

    it("fails on a loopback target at once, naming the addon parameter that allows it; nothing is sent", async () => {
      target = await startTarget((_r, res) => reply(res, 200, "ok"));
      const { answer } = await strict.pollUntilDone("http-request", { url: `${target.url}/hook`, method: "POST", ...fast });
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.equal(`POST ${target.url}/hook: 127.0.0.1 is a loopback address, which the executor refuses by default; to allow it, add "127.0.0.1" to ` +
        "the executor's outbound allow-list (addon parameter outboundAllow, executor flag --outbound-allow or env STEP_EXECUTOR_OUTBOUND_ALLOW)");
      expect(target.requests).to.have.length(0);
    });

    it("fails on localhost and on a cluster Service name", async () => {
      target = await startTarget((_r, res) => reply(res, 200, "ok"));
      const local = await strict.pollUntilDone("http-request", { url: `http://localhost:${new URL(target.url).port}/`, ...fast });
      expect(local.answer.body.message).to.match(/: localhost resolves to (127\.0\.0\.1|::1), which is a loopback address, which the executor refuses by default/);
      const svc = await strict.pollUntilDone("http-request", { url: "http://step-executor.vela-system.svc:8080/v1/steps/http-request", ...fast });
      expect(svc.answer.body.message).to.match(/step-executor\.vela-system\.svc is a cluster-internal name, which the executor refuses by default; to allow it, add "step-executor\.vela-system\.svc" \(or "\*\.svc"\) to .*outboundAllow/);
      expect(target.requests).to.have.length(0);
    });
  });

  it("a request refused by the per-host queue is not sent; the step retries it with a clear message", async () => {
    const busy = await startExecutor({ http: { hostConcurrency: 1, hostQueue: 0 } });
    try {
      let release: (() => void) | undefined;
      const held = new Promise<void>((r) => { release = r; });
      target = await startTarget(async (req, res) => {
        if (req.path === "/slow") await held;
        reply(res, 200, "ok");
      });
      const slow = busy.pollUntilDone("http-request", { url: `${target.url}/slow`, timeout: "10s" });
      while (target.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
      const quickRun = newRun();
      const quickParam = { url: `${target.url}/quick`, retries: 5, backoff: "200ms", maxBackoff: "200ms" };
      const quick = busy.pollUntilDone("http-request", quickParam, quickRun);
      // release the slow one only once the quick one was refused (not after a fixed time)
      const end = Date.now() + 10_000;
      while (!/this one was not sent/.test((await busy.poll("http-request", quickParam, quickRun)).body.message as string)) {
        if (Date.now() > end) throw new Error("the quick request was never refused by the per-host queue");
        await new Promise((r) => setTimeout(r, 20));
      }
      release!();
      const [s, q] = await Promise.all([slow, quick]);
      expect(s.answer.body.phase).to.equal("succeeded");
      expect(q.answer.body.phase).to.equal("succeeded");
      expect(q.messages.some((m) => /^attempt 1\/6: GET .*\/quick: 1 requests to 127\.0\.0\.1:\d+ are in flight and 0 more are waiting, the executor's limit per host \(flags --outbound-host-concurrency, --outbound-host-queue\); this one was not sent; retrying in \d+ms$/.test(m)), q.messages.join("\n")).to.equal(true);
      expect(target.requests.map((r) => r.path)).to.deep.equal(["/slow", "/quick"]);
    } finally {
      await busy.close();
    }
  });

  describe("with Secrets", () => {
    let ns: Awaited<ReturnType<typeof tempNamespace>>;
    const secretValue = "Bearer very-secret-value-123";
    before(async () => { ns = await tempNamespace("http-secrets"); });
    after(async () => { await ns.delete(); });

    it("takes a header from a Secret and never shows its value", async () => {
      await kubeClients().core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "cdn" }, stringData: { auth: secretValue } } });
      target = await startTarget((r, res) => reply(res, 401, { echo: r.headers.authorization }));
      const { answer } = await executor.pollUntilDone("http-request", {
        url: target.url, secretHeaders: { Authorization: { name: "cdn", key: "auth" } },
      }, newRun(ns.name));
      expect(target.requests[0]!.headers.authorization).to.equal(secretValue);
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.contain("(response body withheld: the request carried secretHeaders;");
      expect(JSON.stringify(answer.body)).not.to.contain("very-secret-value");
    });

    it("waits for a missing Secret, naming it, and goes on once it exists", async () => {
      target = await startTarget((_r, res) => reply(res, 200));
      const run = newRun(ns.name);
      const param = { url: target.url, secretHeaders: { "X-Key": { name: "late", key: "k" } } };
      const first = await executor.poll("http-request", param, run);
      expect(first.body.phase).to.equal("running");
      await new Promise((r) => setTimeout(r, 300));
      const waiting = await executor.poll("http-request", param, run);
      expect(waiting.body.message).to.equal(`waiting for Secret ${ns.name}/late not found (header X-Key); create it or fix secretHeaders.X-Key`);
      await kubeClients().core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "late" }, stringData: { k: "late-secret-value" } } });
      const { answer } = await executor.pollUntilDone("http-request", param, run);
      expect(answer.body.phase).to.equal("succeeded");
      expect(target.requests[0]!.headers["x-key"]).to.equal("late-secret-value");
    });

    it("fails when the Secret never appears, after the secret wait", async () => {
      const { answer } = await executor.pollUntilDone("http-request", {
        url: "http://127.0.0.1:9/", secretHeaders: { "X-Key": { name: "never", key: "k" } },
      }, newRun(ns.name));
      expect(answer.body).to.include({ phase: "failed", message: `Secret ${ns.name}/never not found, needed for header X-Key; gave up after 2s` });
    });
  });

  describe("bad input", () => {
    const cases: [string, unknown, RegExp][] = [
      ["an invalid URL", { url: "not a url" }, /^url: "not a url" is not a valid URL/],
      ["a non-http scheme", { url: "file:///etc/passwd" }, /^url: scheme "file" is not supported/],
      ["an invalid CEL condition", { url: "http://127.0.0.1:9", successCondition: "response.status ==" }, /^successCondition: invalid CEL expression `response.status ==`: at 1:/],
      ["an unknown CEL variable", { url: "http://127.0.0.1:9", outputs: { x: "resp.body" } }, /^outputs.x: invalid CEL expression `resp.body`: unknown variable "resp"/],
      ["comprehensions nested too deep (the review's 8 nested all)", { url: "http://127.0.0.1:9", successCondition: NESTED_ALL }, /^successCondition: invalid CEL expression `.*`: comprehensions \(all, exists, exists_one, map, filter\) are nested 8 deep; at most 2 are allowed$/],
      ["a bad duration", { url: "http://127.0.0.1:9", timeout: "10" }, /^timeout: "10" is not a duration/],
      ["a GET with a body", { url: "http://127.0.0.1:9", body: "x" }, /^body: a GET request cannot have a body/],
      ["an unknown field", { url: "http://127.0.0.1:9", retry: 3 }, /^parameter: unknown field "retry"/],
      ["a wrong type", { url: "http://127.0.0.1:9", retries: "3" }, /^parameter.retries: must be an integer/],
      ["a missing url", {}, /^parameter.url: required field is missing/],
      ["a bad method", { url: "http://127.0.0.1:9", method: "TRACE" }, /^parameter.method: must be one of "GET"/],
    ];
    for (const [name, parameter, message] of cases) {
      it(`answers 422 for ${name}`, async () => {
        const a = await executor.poll("http-request", parameter);
        expect(a.status).to.equal(422);
        expect(a.body.phase).to.equal("failed");
        expect(a.body.message).to.match(message);
      });
    }
  });
});
