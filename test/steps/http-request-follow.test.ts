// http-request's `follow` against local servers that behave like the real asynchronous APIs: a
// Jenkins-style job trigger (201 + Location of a queue item, which later names the build, whose
// result ends as SUCCESS or FAILURE) and an Akamai Fast Purge-style purge (a purge id and a
// progress URI, polled until Done). Through the engine (memory store), so journal and takeover
// are the executor's own.
import { expect } from "chai";
import { InputError } from "../../server/shared/errors.js";
import { runKey } from "../../server/runs/store.js";
import { httpRequest } from "../../steps/http-request/step.js";
import type { StepKind } from "../../server/contract/step.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { memoryEngine, newRun } from "../server/engine-fixture.js";

const kind = httpRequest as unknown as StepKind;

/** Jenkins: a build queues for `queuedPolls` looks of its queue item, then runs for `buildingPolls` looks. */
async function startJenkins(result: "SUCCESS" | "FAILURE", queuedPolls = 2, buildingPolls = 1) {
  const seen = { queue: 0, build: 0, triggers: 0 };
  const jenkins: Target = await startTarget((r, res) => {
    const base = jenkins.url;
    if (r.method === "POST" && r.path === "/job/deploy/buildWithParameters?release=2026.12") {
      seen.triggers++;
      return reply(res, 201, "", { Location: `${base}/queue/item/42/` });
    }
    if (r.path === "/queue/item/42/api/json") {
      return reply(res, 200, ++seen.queue <= queuedPolls
        ? { id: 42, why: "Waiting for next available executor", executable: null }
        : { id: 42, why: null, executable: { number: 7, url: `${base}/job/deploy/7/` } });
    }
    if (r.path === "/job/deploy/7/api/json") {
      return reply(res, 200, ++seen.build <= buildingPolls ? { number: 7, building: true, result: null } : { number: 7, building: false, result, url: `${base}/job/deploy/7/` });
    }
    return reply(res, 404, { error: "not found" });
  });
  return { jenkins, seen };
}

const jenkinsStep = (url: string, extra: Record<string, unknown> = {}) => ({
  url: `${url}/job/deploy/buildWithParameters?release=2026.12`, method: "POST", timeout: "5s", retries: 2, backoff: "10ms", maxBackoff: "10ms",
  follow: {
    urlFrom: "response.headers['location'] + 'api/json'",
    nextUrlFrom: "has(response.body.executable) && response.body.executable != null ? response.body.executable.url + 'api/json' : ''",
    successCondition: "has(response.body.result) && response.body.result == 'SUCCESS'",
    failureCondition: "has(response.body.result) && response.body.result in ['FAILURE', 'ABORTED', 'UNSTABLE']",
    progress: "has(response.body.building) ? (response.body.building ? 'building' : string(response.body.result)) : 'queued'",
    interval: "1s", timeout: "1m",
  },
  outputs: { build: "response.body.number", buildUrl: "response.body.url", queued: "call.headers['location']" },
  ...extra,
});

describe("http-request with follow", function () {
  this.timeout(60_000);
  let env: ReturnType<typeof memoryEngine>;
  beforeEach(() => { env = memoryEngine(); });
  afterEach(() => env.close());

  it("Jenkins: triggers the job once, follows the queue item to the build, succeeds on SUCCESS with outputs of the call and the last status", async () => {
    const { jenkins, seen } = await startJenkins("SUCCESS");
    try {
      const progress: string[] = [];
      const run = newRun();
      let view;
      for (const end = Date.now() + 30_000; Date.now() < end;) {
        view = await env.engine.poll(kind, run, jenkinsStep(jenkins.url));
        if (view.phase !== "running") break;
        if (progress.at(-1) !== view.message) progress.push(view.message);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(view!.phase, view!.message).to.equal("succeeded");
      expect(view!.message).to.equal(`POST ${jenkins.url}/job/deploy/buildWithParameters answered 201; following ${jenkins.url}/job/deploy/7/api/json: done (SUCCESS)`);
      expect(view!.outputs).to.deep.equal({ status: 201, build: 7, buildUrl: `${jenkins.url}/job/deploy/7/`, queued: `${jenkins.url}/queue/item/42/` });
      expect(seen.triggers, "the job was triggered once").to.equal(1);
      // The call carries the run's Idempotency-Key; the status polls are plain GETs.
      expect(jenkins.requests.find((r) => r.method === "POST")!.headers["idempotency-key"]).to.match(/^[0-9a-f]{32}$/);
      expect(jenkins.requests.filter((r) => r.method === "GET").every((r) => r.headers["idempotency-key"] === undefined)).to.equal(true);
      expect(seen.queue).to.equal(3);
      expect(seen.build).to.equal(2);
      expect(progress).to.include(`POST ${jenkins.url}/job/deploy/buildWithParameters answered 201; following ${jenkins.url}/queue/item/42/api/json: queued`);
      expect(progress).to.include(`POST ${jenkins.url}/job/deploy/buildWithParameters answered 201; following ${jenkins.url}/job/deploy/7/api/json: building`);
    } finally {
      await jenkins.close();
    }
  });

  it("Jenkins: a FAILURE result fails the step with the failureCondition and the status", async () => {
    const { jenkins, seen } = await startJenkins("FAILURE", 1, 0);
    try {
      const { view } = await env.runToEnd(kind, jenkinsStep(jenkins.url));
      expect(view.phase).to.equal("failed");
      expect(view.message).to.match(new RegExp(`^following ${jenkins.url}/job/deploy/7/api/json: follow.failureCondition \`.+\` is true; the status answered 200 OK: .*"result":"FAILURE"`));
      expect(seen.triggers).to.equal(1);
    } finally {
      await jenkins.close();
    }
  });

  it("Akamai Fast Purge: follows the progressUri of the answer, honouring Retry-After, until Done", async () => {
    let polls = 0;
    const ccu = await startTarget((r, res) => {
      if (r.method === "POST" && r.path === "/ccu/v3/delete/url/production") {
        return reply(res, 201, { httpStatus: 201, detail: "Request accepted", estimatedSeconds: 5, purgeId: "e535071c-26b2-11e7-94d7-276f2f54d938", progressUri: "/ccu/v2/purges/e535071c-26b2-11e7-94d7-276f2f54d938", pingAfterSeconds: 1, supportId: "17PY1492793544958045-219026624" });
      }
      if (r.path === "/ccu/v2/purges/e535071c-26b2-11e7-94d7-276f2f54d938") {
        return reply(res, 200, { purgeId: "e535071c-26b2-11e7-94d7-276f2f54d938", purgeStatus: ++polls < 3 ? "In-Progress" : "Done", pingAfterSeconds: 1 }, { "Retry-After": "1" });
      }
      return reply(res, 404, {});
    });
    try {
      const { view } = await env.runToEnd(kind, {
        url: `${ccu.url}/ccu/v3/delete/url/production`, method: "POST", timeout: "5s", retries: 2, backoff: "10ms", maxBackoff: "10ms",
        body: { objects: ["https://shop.example.com/index.html"] },
        follow: { urlFrom: "response.body.progressUri", successCondition: "response.body.purgeStatus == 'Done'", progress: "response.body.purgeStatus", interval: "30s", timeout: "1m" },
        outputs: { purgeId: "call.body.purgeId" },
      });
      expect(view.phase, view.message).to.equal("succeeded");
      expect(view.outputs).to.deep.equal({ status: 201, purgeId: "e535071c-26b2-11e7-94d7-276f2f54d938" });
      // Retry-After: 1 beat the 30 s interval: three looks within a few seconds.
      expect(polls).to.equal(3);
      const looks = ccu.requests.filter((r) => r.method === "GET").map((r) => r.at);
      expect(looks[1]! - looks[0]!).to.be.at.least(950);
    } finally {
      await ccu.close();
    }
  });

  it("an executor that takes the run over goes on following and never sends the call again", async () => {
    const { jenkins, seen } = await startJenkins("SUCCESS", 0, 0);
    try {
      const run = newRun();
      const call = { status: 201, headers: { location: `${jenkins.url}/queue/item/42/` }, body: "" };
      // What the first executor journaled after the call succeeded, then it stopped (handed over).
      await env.store.create({
        key: runKey(run), kind: "http-request", run, phase: "running", message: "http-request: started", outputs: {}, createdAt: Date.now(), holder: "", attempts: 1,
        checkpoint: { attempt: 1, following: { url: `${jenkins.url}/queue/item/42/api/json`, call, since: Date.now() } },
      } as never);
      const { view } = await env.runToEnd(kind, jenkinsStep(jenkins.url), run);
      expect(view.phase, view.message).to.equal("succeeded");
      expect(seen.triggers, "the call is not sent again").to.equal(0);
      expect(view.outputs).to.deep.include({ status: 201, queued: `${jenkins.url}/queue/item/42/` });
    } finally {
      await jenkins.close();
    }
  });

  it("fails clearly: no status URL, a status URL on another host, a status that never ends within follow.timeout", async () => {
    const other = await startTarget((_r, res) => reply(res, 200, { state: "running" }));
    const api = await startTarget((r, res) => {
      if (r.path === "/no-location") return reply(res, 202, {});
      if (r.path === "/elsewhere") return reply(res, 202, { status: `${other.url}/jobs/1` });
      if (r.path === "/slow") return reply(res, 202, {}, { Location: "/jobs/1" });
      return reply(res, 200, { state: "running" });
    });
    try {
      const base = { method: "POST", timeout: "5s", retries: 0, backoff: "10ms", maxBackoff: "10ms" };
      const none = await env.runToEnd(kind, { ...base, url: `${api.url}/no-location`, follow: { successCondition: "response.body.state == 'done'", interval: "1s", timeout: "1m" } });
      expect(none.view.message).to.equal(`POST ${api.url}/no-location answered 202, but gave no status URL to follow (no Location header; set follow.urlFrom or follow.url)`);
      const away = await env.runToEnd(kind, { ...base, url: `${api.url}/elsewhere`, follow: { urlFrom: "response.body.status", successCondition: "response.body.state == 'done'", interval: "1s", timeout: "1m" } });
      expect(away.view.message).to.equal(`POST ${api.url}/elsewhere answered 202, but its status URL ${other.url}/jobs/1 is on another host than the call; the step sends its credentials only to ${api.url} (set follow.url if that host is meant)`);
      expect(other.requests).to.have.length(0);
      const slow = await env.runToEnd(kind, { ...base, url: `${api.url}/slow`, follow: { successCondition: "response.body.state == 'done'", progress: "response.body.state", interval: "1s", timeout: "2s" } });
      expect(slow.view.message).to.match(new RegExp(`^following ${api.url}/jobs/1: not done after 2s \\(follow.timeout\\); the status answered 200 OK: \\{"state":"running"\\}$`));
    } finally {
      await api.close();
      await other.close();
    }
  });

  it("refuses bad follow parameters before anything is sent", async () => {
    const base = { url: "https://api.example.com/jobs", method: "POST", timeout: "5s", retries: 0, backoff: "1s", maxBackoff: "1s" };
    const cases: [Record<string, unknown>, string][] = [
      [{ successCondition: "response.body.x == 1", interval: "100ms", timeout: "1m" }, `follow.interval: must be at least 1s, got "100ms"`],
      [{ successCondition: "response.body.x == 1", interval: "10s", timeout: "48h" }, `follow.timeout: must be between 1ms and 24h, got "48h"`],
      [{ url: "https://api.example.com/s", urlFrom: "response.body.s", successCondition: "true", interval: "10s", timeout: "1m" }, "follow: set url or urlFrom, not both"],
      [{ url: "ftp://api.example.com/s", successCondition: "true", interval: "10s", timeout: "1m" }, `follow.url: scheme "ftp" is not supported; the status URL must be http:// or https://`],
      [{ urlFrom: "call.body.s", successCondition: "true", interval: "10s", timeout: "1m" }, "follow.urlFrom: invalid CEL expression `call.body.s`: "],
    ];
    for (const [follow, message] of cases) {
      let err: unknown;
      try { await env.engine.poll(kind, newRun(), { ...base, follow }); } catch (x) { err = x; }
      expect(err, message).to.be.instanceOf(InputError);
      // Exact, except CEL's own wording after the field and expression (the urlFrom case: `call` is not a variable there).
      if (message.endsWith(": ")) expect((err as Error).message).to.match(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\`]/g, "\\$&")}.*call`));
      else expect((err as Error).message).to.equal(message);
    }
  });
});
