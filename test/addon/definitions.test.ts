// The assembled step definitions: checked by the real vela CLI, then run by KubeVela's own step
// runner (test/addon/harness: the workflow task runner with KubeVela's CUE providers, an
// in-memory Kubernetes API) against a stub executor on 127.0.0.1, one case per row of the
// protocol's answer table (docs/protocol.md).
import { expect } from "chai";
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildAddon, dummyKubeconfig, harnessOrFail, kinds, removeDir, sh, tempDir, velaBin, type Kind } from "./fixture.js";
import { schemas } from "../../steps/generated/index.js";
import { namespaceKey } from "../../server/http/auth.js";
import { recordName } from "../../server/runs/kube-store.js";

const TOKEN = "addon-test-token-0123456789";

describe("addon: step definitions (vela def vet)", function () {
  this.timeout(120_000);
  let addon: string;
  let dir: string;
  before(async () => {
    addon = await buildAddon();
    dir = tempDir("vet");
  });
  after(() => removeDir(dir));

  for (const kind of kinds) {
    it(`${kind}: passes vela def vet`, async function () {
      const vela = velaBin();
      if (!vela) throw new Error("the vela CLI is not built: run `bash scripts/build-control-plane.sh kubevela` (npm test does)");
      const file = join(addon, "definitions", `${kind}.cue`);
      const { stdout } = await sh(vela!, ["def", "vet", file], { env: { ...process.env, KUBECONFIG: dummyKubeconfig(dir) } });
      expect(stdout).to.contain(`Validation ${file} succeed.`);
    });

    it(`${kind}: is one complete vela def file (header, one template, imports merged at the top)`, () => {
      const src = readFileSync(join(addon, "definitions", `${kind}.cue`), "utf8");
      expect(src).to.match(new RegExp(`^"${kind}": \\{\\n\\ttype: "workflow-step"`, "m"));
      expect(src.match(/^import \(/gm)).to.have.length(1);
      expect(src.indexOf("import (")).to.be.lessThan(src.indexOf(`"${kind}": {`));
      expect(src).not.to.match(/"vela\/op"/);
    });
  }
});

// ---- the stub executor -------------------------------------------------------------------------

interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  signatureValid: boolean;
}
type Reply = { status: number; body: string; contentType?: string };

class StubExecutor {
  readonly seen: Seen[] = [];
  replies: Reply[] = [];
  private server!: Server;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const expected = "sha256=" + createHmac("sha256", namespaceKey(TOKEN, "demo")).update(body).digest("hex");
        this.seen.push({ path: req.url ?? "", headers: req.headers, body, signatureValid: req.headers["x-step-executor-signature"] === expected });
        const reply = this.replies.length > 1 ? this.replies.shift()! : this.replies[0] ?? { status: 500, body: "no reply configured" };
        res.writeHead(reply.status, { "Content-Type": reply.contentType ?? "application/json" });
        res.end(reply.body);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(...replies: Reply[]): void {
    this.seen.length = 0;
    this.replies = replies;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const answer = (phase: string, message: string, outputs: Record<string, unknown> = {}, status = 200): Reply =>
  ({ status, body: JSON.stringify({ phase, message, outputs }) });

// ---- the harness ------------------------------------------------------------------------------

interface Poll {
  phase: string;
  reason: string;
  message: string;
  waiting: boolean;
  terminated: boolean;
  failedAfterRetries: boolean;
}
interface Result {
  polls: Poll[];
  outputs: Record<string, unknown>;
  objects: { kind: string; metadata: { name: string; namespace: string }; data?: Record<string, string> }[];
}
interface Scenario {
  kind: Kind;
  app?: string;
  stepName?: string;
  properties: Record<string, unknown>;
  objects?: object[];
  outputs?: { name: string; valueFrom: string }[];
  polls?: number;
}

/** Secret `step-executor` of the Application's namespace ("demo"), as the executor writes it (server/http/namespace-keys.ts). */
function addonObjects(url: string | null, token: string | null = TOKEN, namespace = "demo"): object[] {
  const metadata = { name: "step-executor", namespace, annotations: url === null ? {} : { "step-executor.oam.dev/url": url } };
  return [{ apiVersion: "v1", kind: "Secret", metadata, data: token === null ? {} : { key: Buffer.from(namespaceKey(token, namespace)).toString("base64") } }];
}

describe("addon: step definitions run by KubeVela's step runner", function () {
  this.timeout(600_000);
  let harness: string | undefined;
  let addon: string;
  const executor = new StubExecutor();

  before(async function () {
    harness = await harnessOrFail();
    addon = await buildAddon();
    await executor.start();
  });
  after(async () => {
    if (harness) await executor.stop();
  });

  for (const kind of kinds) {
    it(`${kind}: KubeVela's controller can make its parameter schema, and it agrees with steps/generated`, async () => {
      // What the definition controller stores in ConfigMap workflowstep-schema-<name> (VelaUX forms).
      const { stdout } = await sh(harness!, ["schema", join(addon, "definitions", `${kind}.cue`)]);
      type S = { properties?: Record<string, S>; required?: string[]; default?: unknown; description?: string; type?: string };
      const vela = JSON.parse(stdout) as S;
      const ours = schemas[kind] as unknown as S;
      expect(Object.keys(vela.properties ?? {}).sort()).to.deep.equal(Object.keys(ours.properties ?? {}).sort());
      for (const [name, p] of Object.entries(vela.properties ?? {})) {
        const o = ours.properties![name]!;
        expect(p.description, `${name}: description`).to.equal(o.description);
        expect(p.default, `${name}: default`).to.deep.equal(o.default);
        // KubeVela calls every non-optional field required; we do not require fields with defaults.
        expect(vela.required?.includes(name), `${name}: required`).to.equal(ours.required?.includes(name) || "default" in o);
      }
    });
  }

  async function step(s: Scenario): Promise<Result> {
    const input = {
      definition: join(addon, "definitions", `${s.kind}.cue`),
      namespace: "demo",
      app: s.app ?? "web",
      step: s.stepName ?? "the-step",
      session: "session-1",
      properties: s.properties,
      objects: s.objects ?? addonObjects(executor.url),
      outputs: s.outputs ?? [],
      polls: s.polls ?? 1,
    };
    const { stdout } = await sh(harness!, [], { input: JSON.stringify(input) });
    return JSON.parse(stdout) as Result;
  }

  const last = (r: Result) => r.polls[r.polls.length - 1]!;

  it("sends the signed run identity and the resolved parameter to POST {url}/v1/steps/{kind}", async () => {
    executor.reset(answer("succeeded", "done"));
    await step({ kind: "http-request", properties: { url: "https://example.com/hook", body: { a: 1 } } });
    expect(executor.seen).to.have.length(1);
    const req = executor.seen[0]!;
    expect(req.path).to.equal("/v1/steps/http-request");
    expect(req.headers["content-type"]).to.equal("application/json");
    expect(req.signatureValid, "HMAC-SHA256 of the body with the token").to.equal(true);
    expect(req.headers.authorization).to.equal(undefined);
    expect(JSON.parse(req.body)).to.deep.equal({
      run: { namespace: "demo", application: "web", step: "the-step", session: "session-1", revision: "web-v1" },
      parameter: { url: "https://example.com/hook", method: "GET", body: { a: 1 }, timeout: "10s", retries: 3, backoff: "1s", maxBackoff: "30s" },
    });
  });

  it("tolerates a trailing slash in the URL", async () => {
    executor.reset(answer("succeeded", "done"));
    await step({ kind: "read-object-and-wait", properties: { apiVersion: "v1", kind: "Pod", name: "p" }, objects: addonObjects(executor.url + "/") });
    expect(executor.seen[0]?.path).to.equal("/v1/steps/read-object-and-wait");
  });

  it("200 running → waits with the executor's message; then 200 succeeded → outputs for later steps", async () => {
    executor.reset(answer("running", "calling https://example.com/hook (attempt 1)"), answer("succeeded", "HTTP 201", { status: 201, id: "abc" }));
    const r = await step({
      kind: "http-request",
      properties: { url: "https://example.com/hook", outputs: { id: "response.body.id" } },
      outputs: [{ name: "id", valueFrom: "outputs.id" }, { name: "code", valueFrom: "outputs.status" }],
      polls: 5,
    });
    expect(r.polls.map((p) => [p.phase, p.reason, p.message, p.waiting])).to.deep.equal([
      ["running", "Wait", "calling https://example.com/hook (attempt 1)", true],
      ["succeeded", "", "HTTP 201", false],
    ]);
    expect(r.outputs).to.deep.equal({ id: "abc", code: 201 });
    expect(executor.seen.map((s) => JSON.parse(s.body).run.session)).to.deep.equal(["session-1", "session-1"]);
  });

  it("200 failed → fails the step (terminal) with the executor's message, keeping declared outputs null", async () => {
    executor.reset(answer("failed", "failureCondition is true: response.status == 409"));
    const r = await step({
      kind: "http-request",
      properties: { url: "https://example.com/hook", outputs: { id: "response.body.id" } },
      outputs: [{ name: "id", valueFrom: "outputs.id" }, { name: "code", valueFrom: "outputs.status" }],
    });
    expect(last(r)).to.include({ phase: "failed", reason: "Action", message: "failureCondition is true: response.status == 409", terminated: true, waiting: false });
    expect(r.outputs).to.deep.equal({ id: null, code: null });
  });

  const failing: [string, Reply, string][] = [
    ["401", { status: 401, body: JSON.stringify({ phase: "failed", message: "unauthenticated" }) },
      "step executor rejected the request signature made with Secret demo/step-executor"],
    ["404 with the executor's message", { status: 404, body: JSON.stringify({ phase: "failed", message: "unknown step kind nope; known: http-request" }) },
      "unknown step kind nope; known: http-request"],
    ["404 that is not JSON", { status: 404, body: "<html>Not Found</html>", contentType: "text/html" }, "<html>Not Found</html>"],
    ["413", { status: 413, body: JSON.stringify({ phase: "failed", message: "request body larger than 1048576 bytes" }) }, "request body larger than 1048576 bytes"],
    ["422", { status: 422, body: JSON.stringify({ phase: "failed", message: "parameter.retries: must be <= 10" }) }, "parameter.retries: must be <= 10"],
    ["another 4xx", { status: 403, body: "forbidden", contentType: "text/plain" }, "step executor answered HTTP 403"],
  ];
  for (const [name, reply, message] of failing) {
    it(`${name} → fails the step (terminal)`, async () => {
      executor.reset(reply);
      const r = await step({ kind: "http-request", properties: { url: "https://example.com" } });
      expect(last(r)).to.include({ phase: "failed", reason: "Action", terminated: true });
      expect(last(r).message).to.contain(message);
    });
  }

  const waiting: [string, Reply, RegExp][] = [
    ["503", { status: 503, body: JSON.stringify({ phase: "running", message: "shutting down" }) }, /^step executor unavailable \(HTTP 503 from http:\/\/127\.0\.0\.1:\d+\/v1\/steps\/http-request\): shutting down$/],
    ["500 that is not JSON", { status: 500, body: "Internal Server Error", contentType: "text/plain" }, /^step executor unavailable \(HTTP 500 .*\): Internal Server Error$/],
    ["200 that is not JSON", { status: 200, body: "<html>proxy login</html>", contentType: "text/html" }, /^step executor answered HTTP 200 with an unexpected body: <html>proxy login<\/html>$/],
    ["200 JSON without a known phase", { status: 200, body: JSON.stringify({ phase: "done" }) }, /unexpected body: \{"phase":"done"\}$/],
    ["429", { status: 429, body: "" }, /^step executor unavailable \(HTTP 429 .*\): \(empty body\)$/],
  ];
  for (const [name, reply, message] of waiting) {
    it(`${name} → waits (KubeVela retries on its backoff) with a message naming the status`, async () => {
      executor.reset(reply);
      const r = await step({ kind: "http-request", properties: { url: "https://example.com" } });
      expect(last(r)).to.include({ phase: "running", reason: "Wait", waiting: true, terminated: false });
      expect(last(r).message).to.match(message);
    });
  }

  it("cuts a long unexpected body in the message", async () => {
    executor.reset({ status: 502, body: "x".repeat(5000), contentType: "text/plain" });
    const r = await step({ kind: "http-request", properties: { url: "https://example.com" } });
    expect(last(r).message).to.match(/: x{300}…$/);
  });

  const notYet: [string, object[]][] = [
    ["no Secret in the namespace", []],
    ["the Secret of another namespace only", addonObjects("http://127.0.0.1:1", TOKEN, "other")],
    ["a Secret without the URL", addonObjects(null)],
    ["a Secret without the key", addonObjects("http://127.0.0.1:1", null)],
  ];
  for (const [name, objects] of notYet) {
    it(`${name} → waits for the executor to write it, without calling anything`, async () => {
      executor.reset(answer("succeeded", "must not be called"));
      const r = await step({ kind: "http-request", properties: { url: "https://example.com" }, objects });
      expect(last(r)).to.include({ phase: "running", reason: "Wait", waiting: true, terminated: false });
      expect(last(r).message).to.equal("waiting for the step executor to write Secret demo/step-executor (it does so for every namespace with an Application; is the step-executor addon enabled and its executor running?)");
      expect(executor.seen).to.have.length(0);
    });
  }

  it("an executor that does not answer → KubeVela's own retry (not terminal); the token never shows", async () => {
    const r = await step({ kind: "http-request", properties: { url: "https://example.com" }, objects: addonObjects("http://127.0.0.1:1") });
    expect(last(r)).to.include({ phase: "failed", reason: "Execute", waiting: true, terminated: false });
    expect(last(r).message).to.contain("connection refused");
    // The step message embeds the call's $params (KubeVela behaviour): the signature, not the key.
    expect(last(r).message).to.contain("X-Step-Executor-Signature");
    expect(last(r).message).not.to.contain(TOKEN);
    expect(last(r).message).not.to.contain(Buffer.from(TOKEN).toString("base64"));
  });

  const approved = (phase: string, message: string, outputs: Record<string, unknown> = {}): Reply =>
    ({ status: 200, body: JSON.stringify({ phase, message, outputs, approved: true }) });

  it("apply-and-wait asks the executor first, applies the object once admitted (namespace defaulted), and waits only after the apply", async () => {
    executor.reset(approved("running", "waiting for ConfigMap demo/settings"), approved("succeeded", "ready", { v: "1" }));
    const value = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" }, data: { v: "1" } };
    const r = await step({ kind: "apply-and-wait", properties: { value, outputs: { v: "object.data.v" } }, outputs: [{ name: "v", valueFrom: "outputs.v" }], polls: 3 });
    expect(r.polls.map((p) => p.phase)).to.deep.equal(["running", "succeeded"]);
    expect(r.outputs).to.deep.equal({ v: "1" });
    const applied = r.objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "settings");
    expect(applied?.metadata.namespace).to.equal("demo");
    expect(applied?.data).to.deep.equal({ v: "1" });
    expect(executor.seen).to.have.length(2);
    expect(executor.seen[0]!.path).to.equal("/v1/steps/apply-and-wait");
    expect(JSON.parse(executor.seen[0]!.body).parameter).to.deep.equal({ value, outputs: { v: "object.data.v" }, timeout: "5m" });
  });

  it("apply-and-wait applies nothing the executor refuses (a cluster-scoped or power-granting kind)", async () => {
    executor.reset({ status: 422, body: JSON.stringify({ phase: "failed", message: "value.kind: ClusterRoleBinding is cluster-scoped; apply-and-wait applies only namespaced objects, in the Application's namespace" }) });
    const value = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "escalate" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" }, subjects: [] };
    const r = await step({ kind: "apply-and-wait", properties: { value } });
    expect(last(r)).to.include({ phase: "failed", reason: "Action", terminated: true });
    expect(last(r).message).to.match(/^value.kind: ClusterRoleBinding is cluster-scoped/);
    expect(r.objects.find((o) => o.metadata.name === "escalate")).to.equal(undefined);
  });

  it("apply-and-wait applies nothing while the executor has not admitted the object (an answer without approved)", async () => {
    executor.reset(answer("running", "waiting"));
    const value = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "unapproved" }, data: {} };
    const r = await step({ kind: "apply-and-wait", properties: { value }, polls: 2 });
    expect(last(r)).to.include({ phase: "running", waiting: true });
    expect(r.objects.find((o) => o.metadata.name === "unapproved")).to.equal(undefined);
  });

  it("apply-and-wait accepts the Application's own namespace spelled out", async () => {
    executor.reset(approved("succeeded", "ready"));
    const r0 = await step({ kind: "apply-and-wait", properties: { value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "probe" }, data: {} } } });
    const own = r0.objects.find((o) => o.metadata.name === "probe")!.metadata.namespace;
    executor.reset(approved("succeeded", "ready"));
    const value = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "explicit", namespace: own }, data: {} };
    const r = await step({ kind: "apply-and-wait", properties: { value } });
    expect(r.objects.find((o) => o.metadata.name === "explicit")?.metadata.namespace).to.equal(own);
    expect(last(r)).to.include({ phase: "succeeded" });
  });

  it("apply-and-wait refuses another namespace without applying or calling the executor", async () => {
    executor.reset(answer("succeeded", "must not be called"));
    const value = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "elsewhere", namespace: "other" }, data: {} };
    const r = await step({ kind: "apply-and-wait", properties: { value } });
    expect(last(r)).to.include({ phase: "failed", reason: "Action" });
    expect(last(r).message).to.match(/value.metadata.namespace: "other" is not the Application's namespace/);
    expect(r.objects.find((o) => o.metadata.name === "elsewhere")).to.equal(undefined);
    expect(executor.seen).to.have.length(0);
  });

  it("apply-and-wait applies nothing when the namespace has no key to the executor yet", async () => {
    executor.reset(approved("succeeded", "must not be called"));
    const value = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" }, data: {} };
    const r = await step({ kind: "apply-and-wait", properties: { value }, objects: [] });
    expect(last(r)).to.include({ phase: "running", reason: "Wait" });
    expect(r.objects.find((o) => o.metadata.name === "settings")).to.equal(undefined);
    expect(executor.seen).to.have.length(0);
  });

  it("read-object-and-wait sends its parameter with the timeout default", async () => {
    executor.reset(answer("succeeded", "Deployment demo/web is ready", { replicas: 3 }));
    const r = await step({
      kind: "read-object-and-wait",
      properties: { apiVersion: "apps/v1", kind: "Deployment", name: "web", outputs: { replicas: "object.status.readyReplicas" } },
      outputs: [{ name: "replicas", valueFrom: "outputs.replicas" }],
    });
    expect(last(r)).to.include({ phase: "succeeded", message: "Deployment demo/web is ready" });
    expect(r.outputs).to.deep.equal({ replicas: 3 });
    expect(JSON.parse(executor.seen[0]!.body).parameter).to.deep.equal({
      apiVersion: "apps/v1", kind: "Deployment", name: "web", timeout: "5m", outputs: { replicas: "object.status.readyReplicas" },
    });
  });
  // ---- answers from the run's record (docs/runs.md, "Outages") ----------------------------------
  /** The StepRun the executor keeps for run demo/<app>/<step>/session-1, as server/runs/kube-store.ts writes it. */
  const stepRun = (status: Record<string, unknown>, o: { app?: string; step?: string; session?: string; kind?: string; name?: string } = {}) => {
    const run = { namespace: "demo", application: o.app ?? "web", step: o.step ?? "the-step", session: o.session ?? "session-1" };
    return {
      apiVersion: "step-executor.oam.dev/v1alpha1", kind: "StepRun",
      metadata: { name: o.name ?? recordName(run), namespace: "demo" },
      spec: { application: run.application, step: run.step, session: run.session, kind: o.kind ?? "http-request" },
      status: { attempts: 1, outputs: {}, ...status },
    };
  };
  const held = { phase: "running", holder: "executor-a", acknowledged: true };

  it("a run the executor holds and KubeVela acknowledged → waits with the record's message, without calling the executor", async () => {
    executor.reset(answer("failed", "must not be called"));
    const r = await step({ kind: "http-request", properties: { url: "https://example.com" }, objects: [...addonObjects(executor.url), stepRun({ ...held, message: "calling https://example.com (attempt 2)" })] });
    expect(last(r)).to.include({ phase: "running", reason: "Wait", waiting: true, terminated: false, message: "calling https://example.com (attempt 2)" });
    expect(executor.seen).to.have.length(0);
  });

  it("a run that succeeded → the step succeeds from its record, outputs included, without calling the executor", async () => {
    executor.reset(answer("failed", "must not be called"));
    const r = await step({
      kind: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: "c", outputs: { v: "object.data.v" } },
      objects: [...addonObjects(executor.url), stepRun({ phase: "succeeded", message: "ConfigMap demo/c is ready", outputs: { v: "1" }, holder: "executor-a" }, { kind: "read-object-and-wait" })],
      outputs: [{ name: "v", valueFrom: "outputs.v" }],
    });
    expect(last(r)).to.include({ phase: "succeeded", message: "ConfigMap demo/c is ready" });
    expect(r.outputs).to.deep.equal({ v: "1" });
    expect(executor.seen).to.have.length(0);
  });

  it("a run that failed → the step fails (terminal) with the record's message, declared outputs null, without calling the executor", async () => {
    executor.reset(answer("succeeded", "must not be called"));
    const r = await step({
      kind: "http-request", properties: { url: "https://example.com", outputs: { id: "response.body.id" } },
      objects: [...addonObjects(executor.url), stepRun({ phase: "failed", message: "POST https://example.com answered 409" })],
      outputs: [{ name: "id", valueFrom: "outputs.id" }],
    });
    expect(last(r)).to.include({ phase: "failed", reason: "Action", terminated: true, message: "POST https://example.com answered 409" });
    expect(r.outputs).to.deep.equal({ id: null });
    expect(executor.seen).to.have.length(0);
  });

  const callsAnyway: [string, object][] = [
    ["a first poll's record (not acknowledged yet)", stepRun({ phase: "running", holder: "executor-a", acknowledged: false })],
    ["a pending record (no holder yet)", stepRun({ phase: "running", holder: "", attempts: 0 })],
    ["a released record (handed over: no holder)", stepRun({ ...held, holder: "" })],
    ["another session's record under the name", stepRun({ phase: "succeeded", message: "other session" }, { session: "session-0", name: recordName({ namespace: "demo", application: "web", step: "the-step", session: "session-1" }) })],
    ["a record of another kind under the name", stepRun({ phase: "succeeded", message: "other kind" }, { kind: "github-actions" })],
  ];
  for (const [name, record] of callsAnyway) {
    it(`${name} → asks the executor`, async () => {
      executor.reset(answer("running", "from the executor"));
      const r = await step({ kind: "http-request", properties: { url: "https://example.com" }, objects: [...addonObjects(executor.url), record] });
      expect(executor.seen).to.have.length(1);
      expect(last(r)).to.include({ phase: "running", message: "from the executor" });
    });
  }

  it("finds the record under the executor's name for it however the Application and step are spelled (case, dots, unicode, length)", async () => {
    const app = "shop.web-" + "a".repeat(120);
    const stepName = "Purge CDN.ünïcode_" + "B".repeat(70);
    executor.reset(answer("failed", "must not be called"));
    const r = await step({ kind: "http-request", app, stepName, properties: { url: "https://example.com" }, objects: [...addonObjects(executor.url), stepRun({ ...held, message: "held" }, { app, step: stepName })] });
    expect(executor.seen).to.have.length(0);
    expect(last(r)).to.include({ phase: "running", message: "held" });
  });

  it("apply-and-wait answered from its record applies nothing (only an executor's answer admits the object)", async () => {
    executor.reset(answer("failed", "must not be called"));
    const value = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" }, data: { v: "1" } };
    const r = await step({ kind: "apply-and-wait", properties: { value }, objects: [...addonObjects(executor.url), stepRun({ ...held, message: "waiting for ConfigMap demo/settings" }, { kind: "apply-and-wait" })] });
    expect(last(r)).to.include({ phase: "running", waiting: true, message: "waiting for ConfigMap demo/settings" });
    expect(r.objects.find((o) => o.kind === "ConfigMap")).to.equal(undefined);
    expect(executor.seen).to.have.length(0);
  });
  // ---- in the cluster: a call only while a replica behind the executor's Service is ready ------
  /** The namespace's Secret naming the executor's Service (in-cluster mode), and its EndpointSlice with these endpoints. */
  const inCluster = (endpoints: object[] | null) => {
    const secret = addonObjects(executor.url)[0] as { metadata: { annotations: Record<string, string> } };
    secret.metadata.annotations["step-executor.oam.dev/service"] = "vela-system/step-executor";
    const slice = {
      apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", addressType: "IPv4",
      metadata: { name: "step-executor-x1", namespace: "vela-system", labels: { "kubernetes.io/service-name": "step-executor" } },
      endpoints,
    };
    const other = { ...slice, metadata: { name: "other-x1", namespace: "vela-system", labels: { "kubernetes.io/service-name": "other" } }, endpoints: [{ addresses: ["10.0.0.9"], conditions: { ready: true } }] };
    if ((endpoints as unknown) === "null") return [secret, { ...slice, endpoints: null }, other];
    return endpoints === null ? [secret, other] : [secret, slice, other];
  };
  const gated: [string, object[] | null, boolean][] = [
    ["a ready replica", [{ addresses: ["10.0.0.1"], conditions: { ready: false } }, { addresses: ["10.0.0.2"], conditions: { ready: true } }], true],
    ["an endpoint without conditions (ready, as the EndpointSlice API says)", [{ addresses: ["10.0.0.1"] }], true],
    ["no ready replica (crashed, restarting, or hung past its readiness probe)", [{ addresses: ["10.0.0.1"], conditions: { ready: false } }], false],
    ["no endpoints at all", [], false],
    // What the EndpointSlice controller writes for a Service whose pods are all gone.
    ["a slice with endpoints: null", "null" as unknown as object[], false],
    ["no EndpointSlice for the Service (another Service's ready endpoint does not count)", null, false],
  ];
  for (const [name, endpoints, calls] of gated) {
    it(`in the cluster, ${name} → ${calls ? "calls the executor" : "waits saying the executor is unavailable, without calling it"}`, async () => {
      executor.reset(answer("running", "from the executor"));
      const r = await step({ kind: "http-request", properties: { url: "https://example.com" }, objects: inCluster(endpoints) });
      if (calls) {
        expect(executor.seen).to.have.length(1);
        expect(last(r)).to.include({ phase: "running", message: "from the executor" });
      } else {
        expect(executor.seen).to.have.length(0);
        expect(last(r)).to.include({ phase: "running", reason: "Wait", waiting: true, terminated: false, message: "step executor unavailable (no ready replica behind Service vela-system/step-executor); waiting" });
      }
    });
  }
});
