import { expect } from "chai";
import { generateKeyPairSync } from "node:crypto";
import { GithubHub, type GithubOptions } from "../../steps/github-actions/github-client.js";
import { createGithubActionsStep, type GithubActionsOptions } from "../../steps/github-actions/step.js";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { closedPort } from "../fixtures/target.js";
import { newRun, startExecutorWith } from "../github-server/harness.js";
import { FakeGitHub, faults, type FakeGitHubOptions, type FakeRepo } from "../github-server/server.js";

const PAT = "ghp_test0123456789abcdefABCDEF0123456789";
const KIND = "github-actions";
const { privateKey: APP_KEY, publicKey: APP_PUBLIC } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const APP_PEM = APP_KEY.export({ type: "pkcs1", format: "pem" }).toString();
const APP_ID = 424242;
const INSTALLATION = 7654321;

const tracked = `Deploy [\${{ inputs.distinct_id }}]`;
function repos(): FakeRepo[] {
  return [{
    owner: "acme",
    name: "app",
    branches: ["main", "release"],
    workflows: [
      { id: 101, file: "deploy.yaml", name: "Deploy", inputs: { env: {}, distinct_id: {} }, runName: tracked, script: { queuedMs: 100, runningMs: 300 } },
      { id: 102, file: "fail.yaml", name: "Fail", inputs: { distinct_id: {} }, runName: tracked, script: { runningMs: 200, conclusion: "failure" } },
      { id: 103, file: "slow.yaml", name: "Slow", inputs: { distinct_id: {} }, runName: tracked, script: { runningMs: 60_000 } },
      { id: 104, file: "plain.yaml", name: "Plain", inputs: { env: {} }, script: { runningMs: 200 } },
      { id: 105, file: "push-only.yaml", name: "Push only", on: [] },
      { id: 106, file: "required.yaml", name: "Required", inputs: { version: { required: true }, distinct_id: {} } },
      { id: 107, file: "on-event.yaml", name: "On event", on: ["repository_dispatch"], types: ["deploy-done"], runName: "Event [${{ github.event.client_payload.distinct_id }}]", script: { appearAfterMs: 200, runningMs: 300 } },
      { id: 108, file: "ghes.yaml", name: "GHES", inputs: { env: {}, distinct_id: {} }, runName: tracked, script: { appearAfterMs: 300, runningMs: 300 } },
      { id: 109, file: "medium.yaml", name: "Medium", inputs: { distinct_id: {} }, runName: tracked, script: { runningMs: 1_500 } },
      { id: 111, file: "long.yaml", name: "Long", inputs: { distinct_id: {} }, runName: tracked, script: { runningMs: 4_000 } },
      { id: 110, file: "untitled.yaml", name: "Untitled", inputs: { distinct_id: {} }, script: { runningMs: 200 } },
    ],
  }];
}

/** Short intervals for tests; the defaults are 10 s polls and real Retry-After waits. */
// The local GitHub runs on 127.0.0.1, which the executor refuses unless allowed.
const fastHub: Partial<GithubOptions> = { outbound: { allow: ["127.0.0.1"] }, pollIntervalMs: 100, searchIntervalMs: 50, retryBaseMs: 10, maxPollIntervalMs: 1_000, rateLimitReserve: 10 };
const fastStep: Partial<GithubActionsOptions> = { correlationTimeoutMs: 2_000, dispatchBackoff: { initialMs: 50, maxMs: 200 } };

describe("github-actions", function () {
  this.timeout(30_000);
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let env: Awaited<ReturnType<typeof setup>> | undefined;

  before(async () => {
    ns = await tempNamespace("gha");
    const { core } = kubeClients();
    const secret = (name: string, stringData: Record<string, string>) => core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name }, stringData } });
    await secret("gh-token", { token: PAT + "\n" });
    await secret("gh-wrong", { token: "ghp_wrongwrongwrongwrong000000000000000000" });
    await secret("gh-app", { appId: String(APP_ID), privateKey: APP_PEM, installationId: String(INSTALLATION) });
    await secret("gh-app-other-install", { appId: String(APP_ID), privateKey: APP_PEM, installationId: "1111" });
    const { privateKey: otherKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await secret("gh-app-wrong-key", { appId: String(APP_ID), privateKey: otherKey.export({ type: "pkcs8", format: "pem" }).toString(), installationId: String(INSTALLATION) });
    await secret("gh-app-garbage-key", { appId: String(APP_ID), privateKey: "not a key", installationId: String(INSTALLATION) });
  });
  after(async () => { await ns.delete(); });

  async function setup(opts: { fake?: Partial<FakeGitHubOptions>; hub?: Partial<GithubOptions>; step?: Partial<GithubActionsOptions> } = {}) {
    const fake = await new FakeGitHub({
      repos: repos(), tokens: [PAT], rateLimit: { limit: 1_000_000, windowMs: 60 * 60_000 },
      apps: [{ appId: APP_ID, publicKey: APP_PUBLIC.export({ type: "spki", format: "pem" }).toString(), installations: [INSTALLATION] }],
      ...opts.fake,
    }).start();
    const hub = new GithubHub({ ...fastHub, ...opts.hub });
    const step = createGithubActionsStep({ ...fastStep, ...opts.step, hub });
    const executor = await startExecutorWith([step]);
    const base = { owner: "acme", repo: "app", apiURL: fake.url, credentials: { token: { name: "gh-token" } } };
    return {
      fake, hub, executor, base,
      run: (parameter: Record<string, unknown>, limitMs?: number) => executor.pollUntilDone(KIND, { ...base, ...parameter }, newRun(ns.name), limitMs),
      async close() { await executor.close(); await hub.close(); await fake.close(); },
    };
  }

  afterEach(async () => {
    if (!env) return;
    const { fake } = env;
    await env.close();
    env = undefined;
    // The fake must not drift from GitHub's published description, and every REST call pins the version.
    expect(fake.validationErrors, fake.validationErrors.join("\n")).to.deep.equal([]);
    expect(fake.unversioned).to.deep.equal([]);
  });

  const dispatches = (fake: FakeGitHub) => fake.calls("POST", /\/dispatches$/);

  it("dispatches a workflow, follows its run to success and outputs runId, runUrl, conclusion and status", async () => {
    env = await setup();
    const { answer, messages } = await env.run({ workflow: "deploy.yaml", ref: "main", inputs: { env: "prod" } });
    const run = env.fake.runs[0]!;
    const url = `${env.fake.url}/acme/app/actions/runs/${run.id}`;
    expect(answer.body).to.deep.equal({
      phase: "succeeded",
      message: `acme/app deploy.yaml: run ${run.id} concluded success — ${url}`,
      outputs: { runId: run.id, runUrl: url, conclusion: "success", status: "completed" },
    });
    expect(messages).to.include(`dispatched acme/app deploy.yaml: run ${run.id} queued — ${url}`);
    const [post] = dispatches(env.fake);
    const body = JSON.parse(post!.body);
    expect(body).to.deep.include({ ref: "main", return_run_details: true });
    expect(body.inputs.env).to.equal("prod");
    expect(body.inputs.distinct_id).to.match(/^se-[0-9a-f]{16}$/);
    expect(post!.headers["x-github-api-version"]).to.equal("2022-11-28");
    expect(post!.headers.authorization).to.equal(`token ${PAT}`); // the Secret's trailing newline is trimmed
    expect(env.fake.runs).to.have.length(1);
  });

  it("fails with the conclusion and the run's URL when the run does not succeed", async () => {
    env = await setup();
    const { answer } = await env.run({ workflow: 102, ref: "main" });
    const run = env.fake.runs[0]!;
    expect(answer.body.phase).to.equal("failed");
    expect(answer.body.message).to.equal(`acme/app 102: run ${run.id} concluded failure — ${env.fake.url}/acme/app/actions/runs/${run.id}`);
  });

  it("with wait: false, dispatches and succeeds at once with the run GitHub named", async () => {
    env = await setup();
    const { answer } = await env.run({ workflow: "slow.yaml", ref: "main", wait: false });
    const run = env.fake.runs[0]!;
    expect(answer.body.phase).to.equal("succeeded");
    expect(answer.body.outputs).to.deep.equal({ runId: run.id, runUrl: `${env.fake.url}/acme/app/actions/runs/${run.id}`, status: "queued", conclusion: "" });
    expect(env.fake.calls("GET", /actions\/runs/)).to.have.length(0);
  });

  it("an apiURL the outbound policy forbids (loopback, no allow-list) fails at once, saying how to allow it; nothing reaches the server", async () => {
    env = await setup({ hub: { outbound: {} } });
    const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main" });
    expect(answer.body.phase).to.equal("failed");
    expect(answer.body.message).to.equal(`cannot dispatch acme/app deploy.yaml: 127.0.0.1 is a loopback address, which the executor refuses by default; to allow it, add "127.0.0.1" to ` +
      "the executor's outbound allow-list (addon parameter outboundAllow, executor flag --outbound-allow or env STEP_EXECUTOR_OUTBOUND_ALLOW). Nothing was dispatched");
    expect(env.fake.calls("POST", /./)).to.have.length(0);
    expect(env.fake.calls("GET", /./)).to.have.length(0);
  });

  describe("GitHub refuses the dispatch", () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ["401: bad credentials, naming the Secret and never the token", { workflow: "deploy.yaml", ref: "main", credentials: { token: { name: "gh-wrong" } } },
        "GitHub rejected the credentials in Secret gh-wrong/token (401 Bad credentials)"],
      ["404: unknown workflow, naming owner, repo and workflow", { workflow: "nope.yaml", ref: "main" },
        "GitHub found no workflow nope.yaml in acme/app (404 Not Found); check owner, repo and workflow, and that the credentials in Secret gh-token/token can see the repository"],
      ["404: unknown repository", { repo: "nothing", workflow: "deploy.yaml", ref: "main" },
        "GitHub found no workflow deploy.yaml in acme/nothing (404 Not Found); check owner, repo and workflow, and that the credentials in Secret gh-token/token can see the repository"],
      ["422: an input the workflow does not declare, with GitHub's message", { workflow: "deploy.yaml", ref: "main", inputs: { colour: "blue" } },
        'GitHub rejected the dispatch of acme/app deploy.yaml: Unexpected inputs provided: ["colour"]'],
      ["422: a required input missing", { workflow: "required.yaml", ref: "main" },
        "GitHub rejected the dispatch of acme/app required.yaml: Required input 'version' not provided"],
      ["422: no workflow_dispatch trigger", { workflow: "push-only.yaml", ref: "main" },
        "GitHub rejected the dispatch of acme/app push-only.yaml: Workflow does not have 'workflow_dispatch' trigger"],
      ["422: unknown ref", { workflow: "deploy.yaml", ref: "nope" },
        "GitHub rejected the dispatch of acme/app deploy.yaml: No ref found for: nope"],
      ["404 on repository_dispatch", { repo: "nothing", event: "deploy-done" },
        "GitHub found no repository acme/nothing (404 Not Found); check owner and repo, and that the credentials in Secret gh-token/token can see it"],
    ];
    for (const [name, parameter, message] of cases) {
      it(name, async () => {
        env = await setup();
        const { answer } = await env.run(parameter);
        expect(answer.body).to.deep.equal({ phase: "failed", message, outputs: {} });
        expect(JSON.stringify(answer.body)).not.to.contain("ghp_");
        expect(env.fake.runs).to.have.length(0);
      });
    }
  });

  it("403 without a rate limit: fails naming the Secret and the permission it lacks, without retrying", async () => {
    env = await setup();
    env.fake.fail({ method: "POST", path: /\/dispatches$/, status: 403, body: { message: "Resource not accessible by integration", documentation_url: "https://docs.github.com/rest" } });
    const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main" });
    expect(answer.body.message).to.equal("GitHub refused to dispatch acme/app deploy.yaml with the credentials in Secret gh-token/token (403 Resource not accessible by integration); they need the Actions: write permission");
    expect(dispatches(env.fake)).to.have.length(1);
  });

  it("credentials revoked while waiting: fails naming the Secret", async () => {
    env = await setup();
    env.fake.fail({ method: "GET", path: /\/actions\/runs\/\d+$/, status: 401, body: { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" } });
    const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main" });
    expect(answer.body).to.deep.equal({ phase: "failed", message: "GitHub rejected the credentials in Secret gh-token/token (401 Bad credentials)", outputs: {} });
  });

  describe("bad input fails before anything is sent", () => {
    const big = "x".repeat(70_000);
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["neither workflow nor event", {}, /^parameter: set either workflow .* or event/],
      ["both workflow and event", { workflow: "deploy.yaml", ref: "main", event: "x" }, /, not both$/],
      ["a workflow without ref", { workflow: "deploy.yaml" }, /^ref: a workflow_dispatch needs the branch or tag/],
      ["a workflow path instead of a file name", { workflow: ".github/workflows/deploy.yaml", ref: "main" }, /^workflow: ".github\/workflows\/deploy.yaml" is a path; give the file name \(e.g. "deploy.yaml"\)/],
      ["inputs too large", { workflow: "deploy.yaml", ref: "main", inputs: { env: big } }, /^inputs: the payload is 70010 characters; GitHub accepts at most 65535, so nothing was sent$/],
      ["too many inputs", { workflow: "deploy.yaml", ref: "main", inputs: Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`i${i}`, "v"])) }, /^inputs: 26 inputs given; GitHub accepts at most 25$/],
      ["the reserved input distinct_id", { workflow: "deploy.yaml", ref: "main", inputs: { distinct_id: "mine" } }, /^inputs.distinct_id: the name is reserved/],
      ["a clientPayload too large", { event: "deploy-done", clientPayload: { blob: big } }, /^clientPayload: the payload is \d+ bytes; GitHub accepts less than 65536 \(64 KB\), so nothing was sent$/],
      ["a clientPayload with 10 keys", { event: "deploy-done", clientPayload: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])) }, /^clientPayload: 10 top-level keys given; GitHub accepts 10 and the step adds distinct_id, so at most 9/],
      ["an event type longer than 100 characters", { event: "e".repeat(101) }, /^event: the event type must be 1 to 100 characters long, got 101$/],
      ["inputs with a repository_dispatch", { event: "deploy-done", inputs: { a: "b" } }, /^inputs: a repository_dispatch \(event\) runs on the default branch/],
      ["both token and app credentials", { workflow: "deploy.yaml", ref: "main", credentials: { token: { name: "a" }, app: { name: "b" } } }, /^parameter.credentials: set exactly one of token or app$/],
      ["a non-string input value", { workflow: "deploy.yaml", ref: "main", inputs: { n: 1 } }, /^parameter.inputs.n: must be a string/],
      ["a bad timeout", { workflow: "deploy.yaml", ref: "main", timeout: "soon" }, /^timeout: "soon" is not a duration/],
      ["the web site as apiURL", { workflow: "deploy.yaml", ref: "main", apiURL: "https://github.com" }, /^apiURL: "https:\/\/github.com" is the web site; the API is https:\/\/api.github.com$/],
      ["a link-local apiURL", { workflow: "deploy.yaml", ref: "main", apiURL: "http://169.254.169.254/api/v3" }, /^apiURL: 169.254.169.254 is a link-local address/],
      ["a plain http apiURL that is not loopback", { workflow: "deploy.yaml", ref: "main", apiURL: "http://github.example.com/api/v3" }, /^apiURL: "http:\/\/github.example.com\/api\/v3" would send the GitHub token unencrypted; use https:\/\//],
      ["an unknown field", { workflow: "deploy.yaml", ref: "main", wiat: true }, /^parameter: unknown field "wiat"$/],
    ];
    beforeEach(async () => { env = await setup(); });
    for (const [name, parameter, message] of cases) {
      it(`answers 422 for ${name}`, async () => {
        const a = await env!.executor.poll(KIND, { ...env!.base, ...parameter }, newRun(ns.name));
        expect(a.status, a.body.message).to.equal(422);
        expect(a.body.message).to.match(message);
        expect(env!.fake.exchanges).to.have.length(0);
      });
    }
  });

  it("dispatches once however often and concurrently the run is polled", async () => {
    env = await setup();
    const run = newRun(ns.name);
    const parameter = { ...env.base, workflow: "deploy.yaml", ref: "main" };
    const answers = await Promise.all(Array.from({ length: 20 }, () => env!.executor.poll(KIND, parameter, run)));
    expect(answers.every((a) => a.status === 200)).to.equal(true);
    const { answer } = await env.executor.pollUntilDone(KIND, parameter, run);
    expect(answer.body.phase).to.equal("succeeded");
    for (let i = 0; i < 5; i++) await env.executor.poll(KIND, parameter, run);
    expect(dispatches(env.fake)).to.have.length(1);
    // A restarted workflow (new session) is a new run: it dispatches once more.
    await env.executor.pollUntilDone(KIND, parameter, { ...run, session: "restarted" });
    expect(dispatches(env.fake)).to.have.length(2);
  });

  describe("transient trouble", () => {
    it("rides out 502s while following the run (plugin-retry), without dispatching again", async () => {
      env = await setup();
      env.fake.fail(faults.badGateway("GET", /\/actions\/runs\/\d+$/, { times: 5 }));
      const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main" });
      expect(answer.body.phase).to.equal("succeeded");
      expect(env.fake.calls("GET", /\/actions\/runs\/\d+$/).filter((e) => e.status === 502)).to.have.length(5);
      expect(dispatches(env.fake)).to.have.length(1);
    });

    it("after a lost answer to the dispatch (502 after GitHub ran it), finds the run by distinct_id and never dispatches again", async () => {
      env = await setup();
      env.fake.fail(faults.badGateway("POST", /\/dispatches$/, { after: true }));
      const { answer, messages } = await env.run({ workflow: "deploy.yaml", ref: "main" });
      expect(answer.body.phase, answer.body.message).to.equal("succeeded");
      expect(answer.body.outputs.runId).to.equal(env.fake.runs[0]!.id);
      expect(dispatches(env.fake)).to.have.length(1);
      expect(env.fake.runs).to.have.length(1);
      // It looked for the run (a list of recent runs) instead of dispatching again.
      expect(env.fake.calls("GET", /\/actions\/runs$/).length).to.be.at.least(1);
      void messages;
    });

    it("after a 502 with no run appearing, fails instead of dispatching blind", async () => {
      env = await setup({ step: { correlationTimeoutMs: 800 } });
      env.fake.fail(faults.badGateway("POST", /\/dispatches$/));
      const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main" });
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.match(/^the dispatch of acme\/app deploy.yaml got no clear answer \(GitHub answered 502 Server Error\) and no run carrying distinct_id se-[0-9a-f]{16} appeared within 800ms; not dispatching again, to avoid a duplicate run — check http:\/\/127.0.0.1:\d+\/acme\/app\/actions and restart the step if nothing ran$/);
      expect(dispatches(env.fake)).to.have.length(1);
      expect(env.fake.runs).to.have.length(0);
    });

    it("after a lost answer for a workflow without a distinct_id input, fails without dispatching again", async () => {
      env = await setup();
      // First POST (with distinct_id) → 422 unexpected input; the second, without it, loses its answer.
      env.fake.fail(faults.badGateway("POST", /\/dispatches$/, { skip: 1, after: true }));
      const { answer } = await env.run({ workflow: "plain.yaml", ref: "main", inputs: { env: "prod" } });
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.match(/^the dispatch of acme\/app plain.yaml got no clear answer \(GitHub answered 502 Server Error\); it may or may not have started a run, and without a "distinct_id" input the step cannot tell, so it does not dispatch again — check /);
      expect(dispatches(env.fake).map((e) => e.status)).to.deep.equal([422, 502]);
      expect(env.fake.runs).to.have.length(1);
    });

    it("remembers that a workflow takes no distinct_id: the next dispatch sends one request", async () => {
      env = await setup();
      const first = await env.run({ workflow: "plain.yaml", ref: "main", inputs: { env: "a" } });
      const second = await env.run({ workflow: "plain.yaml", ref: "main", inputs: { env: "b" } });
      expect([first.answer.body.phase, second.answer.body.phase]).to.deep.equal(["succeeded", "succeeded"]);
      expect(dispatches(env.fake).map((e) => e.status)).to.deep.equal([422, 200, 200]);
    });

    for (const status of [403, 429]) {
      it(`honours a ${status} secondary rate limit on the dispatch: waits Retry-After, then sends it once more`, async () => {
        env = await setup();
        env.fake.fail({ ...faults.secondaryRateLimit("POST", /\/dispatches$/, 1), status });
        const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main" });
        expect(answer.body.phase, answer.body.message).to.equal("succeeded");
        const posts = dispatches(env.fake);
        expect(posts.map((e) => e.status)).to.deep.equal([status, 200]);
        expect(posts[1]!.at - posts[0]!.at).to.be.at.least(950);
        expect(env.fake.runs).to.have.length(1);
      });
    }

    it("waits for the primary rate-limit reset when the credential has no requests left", async () => {
      env = await setup();
      const bucket = env.fake.bucket(`token:${PAT.slice(0, 8)}`);
      bucket.used = bucket.limit;
      bucket.resetAt = Date.now() + 1_000;
      const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main" });
      expect(answer.body.phase, answer.body.message).to.equal("succeeded");
      const posts = dispatches(env.fake);
      expect(posts.map((e) => e.status)).to.deep.equal([403, 200]);
      expect(posts[0]!.responseHeaders["x-ratelimit-remaining"]).to.equal("0");
      expect(posts[1]!.at - posts[0]!.at).to.be.at.least(1_000);
    });

    it("stretches the poll interval to what the remaining rate limit allows until the reset", async () => {
      env = await setup();
      const bucket = env.fake.bucket(`token:${PAT.slice(0, 8)}`);
      bucket.used = bucket.limit - 12; // reserve 10: after the dispatch and one GET nothing is left to spend
      bucket.resetAt = Date.now() + 1_500;
      const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main" });
      expect(answer.body.phase).to.equal("succeeded");
      const gets = env.fake.calls("GET", /\/actions\/runs\/\d+$/);
      expect(gets.length).to.be.at.most(3);
      expect(gets[1]!.at - gets[0]!.at).to.be.at.least(900);
    });

    it("retries a dispatch that never reached GitHub (connection refused) until the timeout", async () => {
      env = await setup();
      const port = await closedPort();
      const { answer, messages } = await env.run({ workflow: "deploy.yaml", ref: "main", apiURL: `http://127.0.0.1:${port}`, timeout: "1s" });
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.match(new RegExp(`^timed out after 1s dispatching acme/app deploy.yaml; last error: no answer from http://127.0.0.1:${port}: .*ECONNREFUSED`));
      expect(messages.some((m) => /retrying in \d+ms \(nothing was dispatched\)$/.test(m))).to.equal(true);
    });
  });

  describe("conditional requests and the shared poller", () => {
    it("polls a waiting run with ETags: unchanged answers are 304 and cost no rate limit", async () => {
      env = await setup();
      const bucket = env.fake.bucket(`token:${PAT.slice(0, 8)}`);
      const { answer } = await env.run({ workflow: "medium.yaml", ref: "main" });
      expect(answer.body.phase).to.equal("succeeded");
      const gets = env.fake.calls("GET", /\/actions\/runs\/\d+$/);
      const notModified = gets.filter((e) => e.status === 304);
      expect(notModified.length).to.be.at.least(5);
      expect(notModified.every((e) => String(e.headers["if-none-match"]).startsWith('W/"'))).to.equal(true);
      // One dispatch plus the GETs that returned a body; 304s are free.
      expect(bucket.used).to.equal(1 + gets.length - notModified.length);
    });

    it("the ETag cache keeps one answer per resource, as the callers project it: a list asked for with a new page size replaces the older page", async () => {
      const fake = await new FakeGitHub({ repos: repos(), tokens: [PAT] }).start();
      const hub = new GithubHub(fastHub);
      try {
        const client = await hub.client(fake.url, { kind: "token", token: PAT });
        const list = (perPage: number) => client.getCached("GET /repos/{owner}/{repo}/actions/runs", { owner: "acme", repo: "app", per_page: perPage },
          (page) => ({ count: (page as { total_count: number }).total_count }));
        const conditional = () => fake.calls("GET", /\/repos\/acme\/app\/actions\/runs($|\?)/).map((e) => e.headers["if-none-match"] !== undefined);
        expect(await list(21)).to.deep.equal({ count: 0 });
        expect(await list(21), "a 304 answers with the projection kept, not GitHub's body").to.deep.equal({ count: 0 });
        await list(22);
        await list(21);
        expect(conditional(), "21 → 21 (conditional) → 22 → 21: the page of 21 was replaced by the page of 22").to.deep.equal([false, true, false, false]);
        expect(fake.calls("GET", /\/repos\/acme\/app\/actions\/runs($|\?)/).map((e) => e.status)).to.deep.equal([200, 304, 200, 200]);
      } finally {
        await hub.close();
        await fake.close();
      }
    });

    it("one waiting step costs one request per poll interval", async () => {
      env = await setup({ hub: { pollIntervalMs: 200, jitter: 0 } });
      const { answer } = await env.run({ workflow: "medium.yaml", ref: "main" });
      expect(answer.body.phase).to.equal("succeeded");
      const gets = env.fake.calls("GET", /\/actions\/runs\/\d+$/).map((e) => e.at);
      expect(gets.length, "the run was followed by polls").to.be.at.least(3);
      // One-sided, so a loaded machine (later timers) cannot fail it: no two polls closer than the
      // interval (a little under it for clock granularity); at the default 10 s that is ≤ 6 a minute.
      const gaps = gets.slice(1).map((at, i) => at - gets[i]!);
      expect(Math.min(...gaps), `gaps between polls (ms): ${gaps.join(", ")}`).to.be.at.least(190);
    });

    it("many steps waiting on one repository share one poller: one list request per tick, not one GET each", async () => {
      env = await setup({ hub: { pollIntervalMs: 150, jitter: 0 } });
      const started = Date.now();
      // Dispatches are 1 s apart (plugin-throttling spaces writes per credential), so the runs overlap for a few seconds.
      const results = await Promise.all(Array.from({ length: 5 }, () => env!.run({ workflow: "long.yaml", ref: "main" })));
      const waited = Date.now() - started;
      expect(results.map((r) => r.answer.body.phase)).to.deep.equal(Array(5).fill("succeeded"));
      expect(new Set(results.map((r) => r.answer.body.outputs.runId)).size).to.equal(5);
      const gets = env.fake.calls("GET", /\/actions\//);
      const ticks = Math.ceil(waited / 150) + 2;
      expect(gets.length, `${gets.length} GETs in ${waited} ms`).to.be.at.most(ticks * 1.5);
      // One loop per step would have cost about one GET per step per interval while it waited.
      const separate = env.fake.runs.reduce((n, r) => n + (r.endAt - r.createdAt) / 150, 0);
      expect(gets.length, `${gets.length} GETs; separate loops: ~${Math.round(separate)}`).to.be.below(separate * 0.6);
      expect(env.fake.calls("GET", /\/actions\/runs$/).length).to.be.at.least(5);
    });
  });

  describe("finding a run GitHub did not name", () => {
    it("204 without run details (a server that ignores return_run_details): finds its own run by distinct_id, not the newest run", async () => {
      env = await setup({ fake: { runDetails: "ignored" } });
      const pending = env.run({ workflow: "ghes.yaml", ref: "main", inputs: { env: "prod" } });
      // Someone else dispatches the same workflow right after: a newer run that is not ours.
      await new Promise((r) => setTimeout(r, 100));
      await fetch(`${env.fake.url}/repos/acme/app/actions/workflows/ghes.yaml/dispatches`, {
        method: "POST", headers: { authorization: `token ${PAT}`, "content-type": "application/json", "x-github-api-version": "2022-11-28" },
        body: JSON.stringify({ ref: "main", inputs: { env: "other", distinct_id: "someone-else" } }),
      });
      const { answer, messages } = await pending;
      expect(answer.body.phase, answer.body.message).to.equal("succeeded");
      const ours = env.fake.runs.find((r) => /\[se-/.test(r.displayTitle))!;
      const theirs = env.fake.runs.find((r) => r.displayTitle.includes("someone-else"))!;
      expect(theirs.createdAt).to.be.at.least(ours.createdAt);
      expect(answer.body.outputs.runId).to.equal(ours.id);
      expect(messages.some((m) => /^dispatched acme\/app ghes.yaml; looking for its run by input distinct_id se-[0-9a-f]{16}/.test(m)), messages.join("\n")).to.equal(true);
    });

    for (const status of [400, 422]) {
      it(`GHES ≤ 3.20 refuses return_run_details (${status}): sends once more without it and finds the run`, async () => {
        env = await setup({ fake: { runDetails: "rejected", rejectStatus: status } });
        const { answer } = await env.run({ workflow: "ghes.yaml", ref: "main" });
        expect(answer.body.phase, answer.body.message).to.equal("succeeded");
        const posts = dispatches(env.fake);
        expect(posts.map((e) => e.status)).to.deep.equal([status, 204]);
        expect(JSON.parse(posts[1]!.body)).not.to.have.property("return_run_details");
        expect(env.fake.runs).to.have.length(1);
      });
    }

    it("GHES ≤ 3.20 and a workflow without a distinct_id input: refuses to wait for a run it cannot find, before dispatching", async () => {
      env = await setup({ fake: { runDetails: "rejected" } });
      const { answer } = await env.run({ workflow: "plain.yaml", ref: "main" });
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.match(/^cannot follow the run of acme\/app plain.yaml: this GitHub does not return run details .* Nothing was dispatched$/);
      expect(env.fake.runs).to.have.length(0);
    });

    it("GHES ≤ 3.20, a workflow without distinct_id and wait: false: dispatches without following", async () => {
      env = await setup({ fake: { runDetails: "rejected" } });
      const { answer } = await env.run({ workflow: "plain.yaml", ref: "main", wait: false });
      expect(answer.body).to.deep.include({ phase: "succeeded", message: "dispatched acme/app plain.yaml" });
      expect(answer.body.outputs).to.deep.equal({ runId: 0, runUrl: "", status: "dispatched", conclusion: "" });
      expect(env.fake.runs).to.have.length(1);
    });

    it("a workflow that does not show distinct_id in its run-name: fails after the search window, explaining the fix", async () => {
      env = await setup({ fake: { runDetails: "ignored" }, step: { correlationTimeoutMs: 600 } });
      const { answer } = await env.run({ workflow: "untitled.yaml", ref: "main" });
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.match(/^dispatched acme\/app untitled.yaml, but no run carrying input distinct_id se-[0-9a-f]{16} appeared within 600ms; the workflow must declare an optional input "distinct_id" and show it in its run-name, e.g. run-name: "Deploy \[\$\{\{ inputs.distinct_id \}\}\]" — check /);
      expect(env.fake.runs).to.have.length(1);
    });

    it("repository_dispatch: sends the event with distinct_id in client_payload, finds the run and follows it", async () => {
      env = await setup();
      const { answer } = await env.run({ event: "deploy-done", clientPayload: { version: "1.2.3", nested: { a: 1 } } });
      expect(answer.body.phase, answer.body.message).to.equal("succeeded");
      const run = env.fake.runs[0]!;
      expect(answer.body.outputs).to.deep.equal({ runId: run.id, runUrl: `${env.fake.url}/acme/app/actions/runs/${run.id}`, conclusion: "success", status: "completed" });
      const body = JSON.parse(dispatches(env.fake)[0]!.body);
      expect(body.event_type).to.equal("deploy-done");
      expect(body.client_payload).to.deep.include({ version: "1.2.3", nested: { a: 1 } });
      expect(body.client_payload.distinct_id).to.match(/^se-/);
    });

    it("repository_dispatch with wait: false succeeds once GitHub accepted the event", async () => {
      env = await setup();
      const { answer } = await env.run({ event: "deploy-done", wait: false });
      expect(answer.body).to.deep.equal({ phase: "succeeded", message: "dispatched acme/app repository_dispatch deploy-done", outputs: { runId: 0, runUrl: "", status: "dispatched", conclusion: "" } });
    });

    it("repository_dispatch that starts no run it can find: fails naming the distinct_id and the run-name fix", async () => {
      env = await setup({ step: { correlationTimeoutMs: 500 } });
      const { answer } = await env.run({ event: "unknown-type" });
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.match(/^dispatched acme\/app repository_dispatch unknown-type, but no run carrying client_payload.distinct_id se-[0-9a-f]{16} appeared within 500ms; the workflow must show it in its run-name, e.g. run-name: "Deploy \[\$\{\{ github.event.client_payload.distinct_id \}\}\]" — check /);
    });
  });

  describe("timeouts", () => {
    it("cancels the run on timeout when cancelOnTimeout is set", async () => {
      env = await setup();
      const { answer } = await env.run({ workflow: "slow.yaml", ref: "main", timeout: "1s", cancelOnTimeout: true });
      const run = env.fake.runs[0]!;
      expect(answer.body.phase).to.equal("failed");
      expect(answer.body.message).to.equal(`timed out after 1s waiting for acme/app slow.yaml run ${run.id} (in_progress) — ${env.fake.url}/acme/app/actions/runs/${run.id}; cancelled it`);
      expect(env.fake.calls("POST", /\/cancel$/).map((e) => e.status)).to.deep.equal([202]);
      expect(run.conclusion).to.equal("cancelled");
    });

    it("leaves the run alone on timeout by default", async () => {
      env = await setup();
      const { answer } = await env.run({ workflow: "slow.yaml", ref: "main", timeout: "1s" });
      expect(answer.body.message).to.match(/^timed out after 1s waiting for acme\/app slow.yaml run \d+ \(in_progress\) — .*; it keeps running \(set cancelOnTimeout: true to cancel it\)$/);
      expect(env.fake.calls("POST", /\/cancel$/)).to.have.length(0);
    });
  });

  describe("GitHub App credentials", () => {
    it("mints an installation token with a signed JWT and refreshes it before it expires", async () => {
      env = await setup({ fake: { tokenLifetimeMs: 1_500 }, hub: { tokenRefreshMarginMs: 700 } });
      const { answer } = await env.run({ workflow: "medium.yaml", ref: "main", credentials: { app: { name: "gh-app" } } }, 20_000);
      expect(answer.body.phase, answer.body.message).to.equal("succeeded");
      const mints = env.fake.calls("POST", /\/app\/installations\/\d+\/access_tokens$/);
      expect(mints.length).to.be.at.least(2);
      expect(mints.every((e) => e.status === 201 && /^bearer [\w-]+\.[\w-]+\.[\w-]+$/i.test(String(e.headers.authorization)))).to.equal(true);
      expect(env.fake.exchanges.filter((e) => e.status === 401)).to.have.length(0);
      const used = new Set(env.fake.exchanges.filter((e) => !e.path.startsWith("/app/")).map((e) => e.headers.authorization));
      expect(used.size).to.equal(mints.length);
    });

    const cases: [string, string, RegExp][] = [
      ["a private key GitHub does not know", "gh-app-wrong-key", /^GitHub rejected the credentials in Secret gh-app-wrong-key\/privateKey \(the app id from key appId and its private key\) \(401 A JSON web token could not be decoded\)$/],
      ["an installation id GitHub does not know", "gh-app-other-install", /^GitHub found no installation of the app with the id in Secret gh-app-other-install\/installationId \(404 Not Found\)$/],
      ["a private key that is not PEM", "gh-app-garbage-key", /^the value of key "privateKey" in Secret gh-app-garbage-key is not a PEM private key \(.*\); store the .pem file GitHub generated for the app$/],
    ];
    for (const [name, secret, message] of cases) {
      it(`fails on ${name}, naming the Secret and key`, async () => {
        env = await setup();
        const { answer } = await env.run({ workflow: "deploy.yaml", ref: "main", credentials: { app: { name: secret } } });
        expect(answer.body.phase).to.equal("failed");
        expect(answer.body.message).to.match(message);
        expect(answer.body.message).not.to.contain("PRIVATE KEY");
      });
    }
  });

  it("waits for a missing credentials Secret, then fails naming it", async () => {
    env = await setup();
    const { answer, messages } = await env.run({ workflow: "deploy.yaml", ref: "main", credentials: { token: { name: "absent" } } });
    expect(messages).to.include(`waiting for Secret ${ns.name}/absent not found (credentials.token); create it or fix credentials.token`);
    expect(answer.body).to.include({ phase: "failed", message: `Secret ${ns.name}/absent not found, needed for credentials.token; gave up after 1s` });
    expect(env.fake.exchanges).to.have.length(0);
  });
});

describe("github-actions poll interval (steps/github-actions/github-client.ts)", () => {
  const T = 1_700_000_000_000;
  let hub: GithubHub;
  beforeEach(() => { hub = new GithubHub({ jitter: 0, now: () => T }); });
  afterEach(async () => { await hub.close(); });
  const poller = async () => {
    const client = await hub.client("https://api.github.com", { kind: "token", token: "ghp_unit" });
    return { client, poller: client.poller("acme", "app") };
  };

  it("at the default interval one waiting step (or several on one repository) costs 6 requests a minute", async () => {
    const { client, poller: p } = await poller();
    client.rate.remaining = 4_000;
    client.rate.resetAt = T + 30 * 60_000;
    expect(p.nextDelay()).to.equal(10_000);
    expect(60_000 / p.nextDelay()).to.equal(6);
  });

  it("spreads the remaining primary budget over the pollers until the reset", async () => {
    const { client, poller: p } = await poller();
    Object.assign(client.rate, { remaining: 150, resetAt: T + 10 * 60_000 }); // 50 above the reserve of 100
    expect(p.nextDelay()).to.equal(12_000);
  });

  it("waits for the reset when only the reserve is left", async () => {
    const { client, poller: p } = await poller();
    Object.assign(client.rate, { remaining: 90, resetAt: T + 5 * 60_000 });
    expect(p.nextDelay()).to.equal(5 * 60_000 + 1_000);
  });

  it("holds off as long as a secondary rate limit asked", async () => {
    const { client, poller: p } = await poller();
    client.rate.holdUntil = T + 90_000;
    expect(p.nextDelay()).to.equal(90_000);
  });
});
