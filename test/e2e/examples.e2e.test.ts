// Every example under examples/ applied the way a user applies it — its top-level *.yaml files,
// `${NAME}` placeholders substituted (here with servers on 127.0.0.1), `kubectl apply -n <ns>` —
// on the real KubeVela controller, with the executor running on loopback and the addon enabled.
// Each case asserts that the workflow succeeded and what the servers standing in for the outside
// world (service, chat webhook, CDN API, GitHub API) received.
import { expect } from "chai";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { EXAMPLES, objectsOf, placeholders, render } from "../fixtures/examples.js";
import { FakeGitHub, type FakeWorkflow } from "../github-server/server.js";
import { OpenApiValidator } from "../github-server/openapi.js";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { makePki } from "../fixtures/pki.js";
import { reply, startTarget, type Recorded, type Target } from "../fixtures/target.js";
import { finished, kubectl, startExecutorProcess, step, vela, waitForApp, type AppStatus, type ExecutorProcess } from "./harness.js";

/** Applies an example into a fresh namespace and waits until the Application's workflow ends. */
async function runExample(dir: string, values: Record<string, string>, app = "shop", limitMs = 90_000): Promise<{ ns: string; status: AppStatus; ms: number }> {
  const ns = await tempNamespace(`ex-${dir.slice(0, 20)}`);
  namespaces.push(ns);
  const t0 = Date.now();
  await kubectl(["apply", "-n", ns.name, "-f", "-"], render(dir, values));
  const status = await waitForApp(ns.name, app, finished, limitMs);
  return { ns: ns.name, status, ms: Date.now() - t0 };
}

/** Every step (and sub-step) succeeded and the Application runs. */
function expectSucceeded(s: AppStatus) {
  const steps = (s.workflow?.steps ?? []).map((x) => `${x.name}: ${x.phase}${x.message ? ` (${x.message})` : ""}`);
  expect(s.status, steps.join("\n")).to.equal("running");
  expect(steps.every((x) => /: succeeded/.test(x)), steps.join("\n")).to.equal(true);
}

const namespaces: Awaited<ReturnType<typeof tempNamespace>>[] = [];
const json = (r: Recorded) => JSON.parse(r.body) as Record<string, unknown>;
const timings: string[] = [];

describe("e2e: examples/ on the real KubeVela controller", function () {
  this.timeout(180_000);
  let executor: ExecutorProcess;

  before(async () => {
    executor = await startExecutorProcess();
    await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
  });

  after(async () => {
    await Promise.all(namespaces.map((ns) => ns.delete()));
    await executor?.stop();
    if (timings.length > 0) console.log(`      example timings (apply → workflow finished): ${timings.join(", ")}`);
  });

  // argocd/ is applied, with a real Argo CD syncing it from Git, by test/e2e/argocd.e2e.test.ts;
  // multi-cluster-rollout/ with a managed cluster, by test/e2e/multicluster.e2e.test.ts.
  const tested = new Set<string>(["argocd", "multi-cluster-rollout"]);
  const example = (dir: string, title: string, fn: () => Promise<void>) => {
    tested.add(dir);
    it(`${dir}: ${title}`, fn);
  };

  it("every example directory has a README.md and a KubeVela Application, and is applied below", function () {
    const dirs = readdirSync(EXAMPLES).filter((d) => statSync(join(EXAMPLES, d)).isDirectory()).sort();
    expect(dirs).to.deep.equal([...tested].sort());
    for (const d of dirs) {
      expect(readdirSync(join(EXAMPLES, d)), d).to.include("README.md");
      // argocd/: its top level is Argo CD's Application; the KubeVela one is in the Git content
      const at = d === "argocd" ? "argocd/deploy/web" : d;
      const objs = objectsOf(render(at, Object.fromEntries(placeholders(at).map((n) => [n, "x"]))));
      expect(objs.map((o) => `${o.apiVersion} ${o.kind}`), d).to.include("core.oam.dev/v1beta1 Application");
    }
  });

  example("create-after-deploy", "applies the worker after the component and waits for its rollout", async () => {
    const { ns, status, ms } = await runExample("create-after-deploy", {});
    timings.push(`create-after-deploy ${ms} ms`);
    expectSucceeded(status);
    expect(step(status, "create-worker").message).to.equal(`Deployment ${ns}/shop-worker: ready (0 of 0 replicas available)`);
    const { objects } = kubeClients();
    const read = () => objects.read({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "shop-worker", namespace: ns } }) as Promise<{
      metadata: { labels?: Record<string, string>; generation?: number };
      spec: { template: { spec: { containers: { envFrom?: { configMapRef?: { name: string } }[] }[] } } };
      status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
    }>;
    const worker = await read();
    // applied by KubeVela for the Application (tracked, garbage-collected with it)
    expect(worker.metadata.labels).to.include({ "app.oam.dev/name": "shop" });
    expect(worker.spec.template.spec.containers[0]!.envFrom).to.deep.equal([{ configMapRef: { name: "shop-config" } }]);
    // the real Deployment controller rolled it out
    const end = Date.now() + 10_000;
    for (let w = worker; ; w = await read()) {
      if (w.status?.observedGeneration === w.metadata.generation && w.status?.conditions?.some((c) => c.type === "Available" && c.status === "True")) break;
      if (Date.now() > end) throw new Error(`the Deployment controller did not roll out shop-worker: ${JSON.stringify(w.status)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  example("smoke-test-and-notify", "retries the smoke test while the service warms up, then notifies with its outputs", async () => {
    const shop = await startTarget((r, res, i) => {
      if (r.path !== "/healthz") return reply(res, 404, { error: "not found" });
      if (i === 0) return reply(res, 503, { status: "starting" });
      return reply(res, 200, { status: "ok", release: "2026.11", checks: [{ name: "db", status: "ok" }, { name: "queue", status: "ok" }] });
    });
    const chat = await startTarget((_r, res) => reply(res, 200, "ok"));
    try {
      const { status, ms } = await runExample("smoke-test-and-notify", { SHOP_URL: shop.url, CHAT_WEBHOOK_URL: `${chat.url}/hooks/T000/B000` });
      timings.push(`smoke-test-and-notify ${ms} ms`);
      expectSucceeded(status);
      expect(step(status, "smoke-test").message).to.equal(`GET ${shop.url}/healthz answered 200 OK`);
      expect(shop.requests.map((r) => `${r.method} ${r.path}`)).to.deep.equal(["GET /healthz", "GET /healthz"]);
      expect(chat.requests).to.have.length(1);
      expect(chat.requests[0]!.path).to.equal("/hooks/T000/B000");
      expect(json(chat.requests[0]!)).to.deep.equal({ text: "shop deployed and smoke-tested", release: "2026.11", checks: "db=ok, queue=ok" });
    } finally {
      await shop.close();
      await chat.close();
    }
  });

  example("purge-cdn-cache", "purges with the token from the Secret, retrying the CDN's 503s", async () => {
    const token = `cf-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    const purgePath = "/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/purge_cache";
    const cdn = await startTarget((r, res, i) => {
      if (r.method !== "POST" || r.path !== purgePath) return reply(res, 404, { success: false, errors: [{ code: 7003, message: "No route for that URI" }] });
      if (r.headers.authorization !== `Bearer ${token}`) return reply(res, 403, { success: false, errors: [{ code: 10000, message: "Authentication error" }] });
      if (i < 2) return reply(res, 503, { success: false, errors: [{ code: 10001, message: "service temporarily unavailable" }] }, { "Retry-After": "1" });
      return reply(res, 200, { success: true, errors: [], messages: [], result: { id: "purge-9a7b" } });
    });
    try {
      const { ns, status, ms } = await runExample("purge-cdn-cache", { CDN_API_URL: cdn.url, CDN_API_TOKEN: token });
      timings.push(`purge-cdn-cache ${ms} ms`);
      expectSucceeded(status);
      expect(step(status, "purge-cdn").message).to.equal(`POST ${cdn.url}${purgePath} answered 200 OK`);
      expect(cdn.requests).to.have.length(3);
      for (const r of cdn.requests) {
        expect(r.headers.authorization).to.equal(`Bearer ${token}`);
        expect(r.headers["content-type"]).to.equal("application/json");
        expect(json(r)).to.deep.equal({ files: ["https://shop.example.com/index.html", "https://shop.example.com/assets/app.js"] });
      }
      // Retry-After: 1 was honoured, not the 2s backoff
      expect(cdn.requests[1]!.at - cdn.requests[0]!.at).to.be.within(900, 1900);
      // the token is in the Secret only: not in the Application, its status, or the executor's log
      const app = await kubectl(["get", "applications.core.oam.dev", "shop", "-n", ns, "-o", "json"]);
      expect(app).to.not.contain(token);
      expect(executor.logs()).to.not.contain(token);
    } finally {
      await cdn.close();
    }
  });

  example("signed-webhook", "records the release with a request the receiver verifies (HMAC of time and body, key from the Secret)", async () => {
    const key = `whsec-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    const releases = await startTarget((r, res) => {
      // What a receiver does (the example's README): recompute, compare in constant time, check the time.
      const time = String(r.headers["x-signature-timestamp"] ?? "");
      const want = Buffer.from("sha256=" + createHmac("sha256", key).update(`${time}.${r.body}`).digest("hex"));
      const got = Buffer.from(String(r.headers["x-signature-256"] ?? ""));
      const fresh = Math.abs(Date.now() / 1000 - Number(time)) < 300;
      if (got.length !== want.length || !timingSafeEqual(got, want) || !fresh) return reply(res, 401, { error: "signature does not verify" });
      return reply(res, 201, { id: "rel-42" });
    });
    try {
      const { ns, status, ms } = await runExample("signed-webhook", { RELEASES_URL: `${releases.url}/hooks/kubevela`, RELEASES_SIGNING_KEY: key });
      timings.push(`signed-webhook ${ms} ms`);
      expectSucceeded(status);
      expect(step(status, "record-release").message).to.equal(`POST ${releases.url}/hooks/kubevela answered 201 Created`);
      expect(releases.requests).to.have.length(1);
      expect(json(releases.requests[0]!)).to.deep.equal({ service: "shop", release: "2026.12", event: "deployed" });
      const app = await kubectl(["get", "applications.core.oam.dev", "shop", "-n", ns, "-o", "json"]);
      expect(app).to.not.contain(key);
      expect(executor.logs()).to.not.contain(key);
      expect(JSON.stringify(releases.requests[0]!.headers)).to.not.contain(key);
      const runs = JSON.parse(await kubectl(["get", "stepruns", "-n", ns, "-o", "json"])) as { items: { spec: { step: string }; status?: { outputs?: Record<string, unknown> } }[] };
      expect(runs.items.find((r) => r.spec.step === "record-release")?.status?.outputs).to.deep.include({ releaseId: "rel-42" });
    } finally {
      await releases.close();
    }
  });

  example("internal-api-mtls", "calls an HTTPS API signed by a private CA, presenting a client certificate (mutual TLS)", async () => {
    const pki = makePki();
    const seen: { method: string; client: string; body: string }[] = [];
    const api = createHttpsServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, async (req, res) => {
      let body = "";
      for await (const c of req) body += c;
      seen.push({ method: req.method ?? "", client: String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? ""), body });
      res.statusCode = 200;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ registered: true }));
    });
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
    const url = `https://127.0.0.1:${(api.address() as AddressInfo).port}`;
    const b64 = (pem: string) => Buffer.from(pem).toString("base64");
    try {
      const { ns, status, ms } = await runExample("internal-api-mtls", { INVENTORY_URL: url, INTERNAL_CA_CRT: b64(pki.ca), CLIENT_TLS_CRT: b64(pki.clientCert), CLIENT_TLS_KEY: b64(pki.clientKey) });
      timings.push(`internal-api-mtls ${ms} ms`);
      expectSucceeded(status);
      expect(step(status, "register").message).to.equal(`PUT ${url}/v1/deployments answered 200 OK`);
      expect(seen).to.have.length(1);
      expect(seen[0]).to.deep.include({ method: "PUT", client: "client" });
      expect(JSON.parse(seen[0]!.body)).to.deep.equal({ service: "shop", release: "2026.12" });
      const keyLine = pki.clientKey.split("\n")[1]!;
      const app = await kubectl(["get", "applications.core.oam.dev", "shop", "-n", ns, "-o", "json"]);
      expect(app).to.not.contain(keyLine);
      expect(executor.logs()).to.not.contain(keyLine);
    } finally {
      api.closeAllConnections();
      await new Promise((r) => api.close(r));
    }
  });

  example("oauth2-api", "gets a client-credentials token and opens the change record with it", async () => {
    const secret = `cs-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    const issued: string[] = [];
    const idp = await startTarget((r, res) => {
      const f = Object.fromEntries(new URLSearchParams(r.body));
      const basic = Buffer.from(String(r.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString();
      if (f.grant_type !== "client_credentials" || basic !== `kubevela-deployer:${secret}` || f.scope !== "changes.write") return reply(res, 401, { error: "invalid_client" });
      issued.push(`at-${Math.random().toString(36).slice(2)}`);
      return reply(res, 200, { access_token: issued.at(-1), token_type: "Bearer", expires_in: 3600 });
    });
    const changes = await startTarget((r, res) => {
      if (r.headers.authorization !== `Bearer ${issued.at(-1)}`) return reply(res, 401, { error: "invalid_token" });
      return reply(res, 201, { number: "CHG0042" });
    });
    try {
      const { ns, status, ms } = await runExample("oauth2-api", { CHANGES_API_URL: changes.url, TOKEN_URL: `${idp.url}/oauth2/token`, CLIENT_SECRET: secret });
      timings.push(`oauth2-api ${ms} ms`);
      expectSucceeded(status);
      expect(step(status, "change-record").message).to.equal(`POST ${changes.url}/api/v1/changes answered 201 Created`);
      expect(idp.requests).to.have.length(1);
      expect(changes.requests).to.have.length(1);
      expect(json(changes.requests[0]!)).to.deep.equal({ service: "shop", release: "2026.12", state: "implemented" });
      const runs = JSON.parse(await kubectl(["get", "stepruns", "-n", ns, "-o", "json"])) as { items: { spec: { step: string }; status?: { outputs?: Record<string, unknown> } }[] };
      expect(runs.items.find((r) => r.spec.step === "change-record")?.status?.outputs).to.deep.include({ change: "CHG0042" });
      const app = await kubectl(["get", "applications.core.oam.dev", "shop", "-n", ns, "-o", "json"]);
      for (const s of [secret, issued[0]!]) {
        expect(app).to.not.contain(s);
        expect(executor.logs()).to.not.contain(s);
      }
    } finally {
      await idp.close();
      await changes.close();
    }
  });

  example("jenkins-job", "triggers the job once and follows the queue item to the build's SUCCESS", async () => {
    const auth = Buffer.from("deployer:11f0e2d4c3b2a1").toString("base64");
    const seen = { triggers: 0, queue: 0, build: 0 };
    const jenkins: Target = await startTarget((r, res) => {
      if (r.headers.authorization !== `Basic ${auth}`) return reply(res, 401, "<html>Authentication required</html>");
      if (r.method === "POST" && r.path === "/job/shop-e2e/buildWithParameters?RELEASE=2026.12") {
        seen.triggers++;
        return reply(res, 201, "", { Location: `${jenkins.url}/queue/item/42/` });
      }
      if (r.path === "/queue/item/42/api/json") {
        return reply(res, 200, ++seen.queue <= 2
          ? { id: 42, why: "Waiting for next available executor", executable: null }
          : { id: 42, why: null, executable: { number: 7, url: `${jenkins.url}/job/shop-e2e/7/` } });
      }
      if (r.path === "/job/shop-e2e/7/api/json") {
        return reply(res, 200, ++seen.build <= 1 ? { number: 7, building: true, result: null } : { number: 7, building: false, result: "SUCCESS", url: `${jenkins.url}/job/shop-e2e/7/` });
      }
      return reply(res, 404, "<html>Not found</html>");
    });
    try {
      const { ns, status, ms } = await runExample("jenkins-job", { JENKINS_URL: jenkins.url, JENKINS_BASIC_CREDENTIALS: auth }, "shop", 150_000);
      timings.push(`jenkins-job ${ms} ms`);
      expectSucceeded(status);
      expect(step(status, "e2e-tests").message).to.equal(`POST ${jenkins.url}/job/shop-e2e/buildWithParameters answered 201; following ${jenkins.url}/job/shop-e2e/7/api/json: done (SUCCESS)`);
      expect(seen.triggers).to.equal(1);
      const runs = JSON.parse(await kubectl(["get", "stepruns", "-n", ns, "-o", "json"])) as { items: { spec: { step: string }; status?: { outputs?: Record<string, unknown> } }[] };
      expect(runs.items.find((r) => r.spec.step === "e2e-tests")?.status?.outputs).to.deep.include({ build: 7, buildUrl: `${jenkins.url}/job/shop-e2e/7/` });
    } finally {
      await jenkins.close();
    }
  });

  example("akamai-purge", "purges once and follows the progressUri until Done", async () => {
    const token = `purge-${Math.random().toString(36).slice(2)}`;
    let purges = 0;
    let polls = 0;
    const ccu = await startTarget((r, res) => {
      if (r.headers.authorization !== `Bearer ${token}`) return reply(res, 401, { title: "Unauthorized" });
      if (r.method === "POST" && r.path === "/ccu/v3/delete/url/production") {
        purges++;
        return reply(res, 201, { httpStatus: 201, detail: "Request accepted", estimatedSeconds: 5, purgeId: "e535071c-26b2-11e7-94d7-276f2f54d938", progressUri: "/ccu/v2/purges/e535071c-26b2-11e7-94d7-276f2f54d938", pingAfterSeconds: 1, supportId: "17PY1492793544958045-219026624" });
      }
      if (r.path === "/ccu/v2/purges/e535071c-26b2-11e7-94d7-276f2f54d938") {
        return reply(res, 200, { purgeId: "e535071c-26b2-11e7-94d7-276f2f54d938", purgeStatus: ++polls < 3 ? "In-Progress" : "Done" }, { "Retry-After": "1" });
      }
      return reply(res, 404, {});
    });
    try {
      const { ns, status, ms } = await runExample("akamai-purge", { CCU_API_URL: ccu.url, PURGE_API_TOKEN: token });
      timings.push(`akamai-purge ${ms} ms`);
      expectSucceeded(status);
      expect(purges).to.equal(1);
      expect(polls).to.equal(3);
      expect(json(ccu.requests[0]!)).to.deep.equal({ objects: ["https://shop.example.com/index.html", "https://shop.example.com/assets/app.js"] });
      const runs = JSON.parse(await kubectl(["get", "stepruns", "-n", ns, "-o", "json"])) as { items: { spec: { step: string }; status?: { outputs?: Record<string, unknown> } }[] };
      expect(runs.items.find((r) => r.spec.step === "purge")?.status?.outputs).to.deep.include({ purgeId: "e535071c-26b2-11e7-94d7-276f2f54d938", estimatedSeconds: 5 });
    } finally {
      await ccu.close();
    }
  });

  example("github-actions", "dispatches the repository's e2e workflow once, waits for success, and notifies with the run's URL", async () => {
    // The workflow GitHub would run is the one shipped with the example: its inputs and run-name.
    const wf = parse(readFileSync(join(EXAMPLES, "github-actions/repo/.github/workflows/e2e.yaml"), "utf8")) as {
      name: string; "run-name": string; on: { workflow_dispatch: { inputs: Record<string, { required?: boolean }> } };
    };
    const token = "ghp_examplesExamplesExamplesExample0000";
    const workflow: FakeWorkflow = { id: 301, file: "e2e.yaml", name: wf.name, inputs: wf.on.workflow_dispatch.inputs, runName: wf["run-name"], script: { queuedMs: 200, runningMs: 1000 } };
    const github = await new FakeGitHub({ tokens: [token], repos: [{ owner: "acme", name: "shop", branches: ["main"], workflows: [workflow] }] }).start();
    const chat = await startTarget((_r, res) => reply(res, 200, "ok"));
    try {
      const { status, ms } = await runExample("github-actions", { GITHUB_API_URL: github.url, GITHUB_TOKEN: token, CHAT_WEBHOOK_URL: `${chat.url}/hooks/deploys` });
      timings.push(`github-actions ${ms} ms`);
      expectSucceeded(status);
      const dispatches = github.exchanges.filter((x) => x.method === "POST" && x.path.endsWith("/dispatches"));
      expect(dispatches).to.have.length(1);
      expect(JSON.parse(dispatches[0]!.body)).to.deep.include({ ref: "main" });
      expect(JSON.parse(dispatches[0]!.body).inputs).to.include({ environment: "staging", release: "2026.11" }).and.have.property("distinct_id");
      expect(github.runs).to.have.length(1);
      const run = github.runs[0]!;
      expect(run.conclusion).to.equal("success");
      expect(run.displayTitle).to.match(/^e2e staging 2026\.11 \[se-[0-9a-f]{16}\]$/);
      expect(chat.requests).to.have.length(1);
      expect(json(chat.requests[0]!)).to.deep.equal({ text: "shop 2026.11 passed its end-to-end tests", runUrl: `${github.url}/acme/shop/actions/runs/${run.id}` });
      expect(github.validationErrors).to.deep.equal([]);
    } finally {
      await chat.close();
      await github.close();
    }
  });

  example("chain-outputs", "passes the deployed commit to a GitHub deployment and marks it deployed at the URL GitHub answered", async () => {
    const token = "ghp_chainChainChainChainChainChain000000";
    const openapi = new OpenApiValidator([
      ["POST", "/repos/{owner}/{repo}/deployments"],
      ["POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"],
    ]);
    const problems: string[] = [];
    let base = "";
    const api = await startTarget((r, res) => {
      const url = new URL(r.path, base);
      const { matched, errors } = openapi.validateRequest(r.method, url, r.headers, r.body);
      problems.push(...errors);
      if (r.headers.authorization !== `Bearer ${token}`) return reply(res, 401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" });
      if (!matched) return reply(res, 404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });
      const body = json(r);
      const answer = matched.operation.template.endsWith("/statuses") ? deploymentStatus(base, body) : deployment(base, body);
      problems.push(...openapi.validateResponse(matched, 201, JSON.stringify(answer)).errors);
      return reply(res, 201, answer);
    });
    base = api.url;
    try {
      const { status, ms } = await runExample("chain-outputs", { GITHUB_API_URL: api.url, GITHUB_TOKEN: token });
      timings.push(`chain-outputs ${ms} ms`);
      expectSucceeded(status);
      expect(api.requests.map((r) => `${r.method} ${r.path}`)).to.deep.equal(["POST /repos/acme/shop/deployments", "POST /repos/acme/shop/deployments/42/statuses"]);
      expect(json(api.requests[0]!)).to.deep.equal({
        ref: "9f2c1e4b7a3d5c6e8f0a1b2c3d4e5f60718293a4", description: "shop 2026.11 deployed by KubeVela",
        environment: "production", auto_merge: false, required_contexts: [],
      });
      expect(json(api.requests[1]!)).to.deep.equal({ state: "success", environment_url: "https://shop.example.com" });
      for (const r of api.requests) expect(r.headers).to.include({ accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28" });
      expect(problems).to.deep.equal([]);
    } finally {
      await api.close();
    }
  });

});

/** A GitHub deployment as the REST API answers POST /repos/{owner}/{repo}/deployments. */
function deployment(base: string, req: Record<string, unknown>) {
  const now = new Date().toISOString();
  const url = `${base}/repos/acme/shop/deployments/42`;
  return {
    url, id: 42, node_id: "DE_kwDOexample42", sha: String(req.ref), ref: String(req.ref), task: "deploy", payload: {},
    original_environment: String(req.environment), environment: String(req.environment), description: (req.description as string | undefined) ?? null,
    creator: null, created_at: now, updated_at: now, statuses_url: `${url}/statuses`, repository_url: `${base}/repos/acme/shop`,
    transient_environment: false, production_environment: true,
  };
}

/** A deployment status as the REST API answers POST …/deployments/{id}/statuses. */
function deploymentStatus(base: string, req: Record<string, unknown>) {
  const now = new Date().toISOString();
  return {
    url: `${base}/repos/acme/shop/deployments/42/statuses/1`, id: 1, node_id: "DES_kwDOexample1", state: String(req.state),
    creator: null, description: "", environment: "production", created_at: now, updated_at: now,
    deployment_url: `${base}/repos/acme/shop/deployments/42`, repository_url: `${base}/repos/acme/shop`,
    environment_url: String(req.environment_url ?? ""), log_url: `${base}/acme/shop/deployments`, target_url: `${base}/acme/shop/deployments`,
  };
}
