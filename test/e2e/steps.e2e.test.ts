// The addon as users meet it: `vela addon enable`, Application workflows on the real KubeVela
// controller, `vela status`, `vela show`, `vela addon disable`.
import { expect } from "chai";
import { schemas } from "../../steps/generated/index.js";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { application, applyYaml, finished, kubectl, startExecutorProcess, step, vela, waitForApp, type ExecutorProcess } from "./harness.js";

// Every step kind the addon ships (one JSON Schema each, generated from its CUE parameter).
const STEPS = Object.keys(schemas);

describe("e2e: the addon on the real KubeVela controller", function () {
  this.timeout(300_000);
  let executor: ExecutorProcess;
  let target: Target;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  const purges: string[] = [];

  before(async () => {
    executor = await startExecutorProcess();
    target = await startTarget((r, res) => {
      if (r.path.startsWith("/purge")) { purges.push(r.body); return reply(res, 200, { purged: JSON.parse(r.body || "{}").paths ?? [], id: `purge-${purges.length}` }); }
      if (r.path.startsWith("/notify")) return reply(res, 202, { ok: true });
      if (r.path.startsWith("/reject")) return reply(res, 400, { error: "paths must not be empty" });
      if (r.path.startsWith("/echo-auth")) return reply(res, 401, { error: "bad token", got: r.headers.authorization });
      return reply(res, 404, { error: "no such path" });
    });
    ns = await tempNamespace("e2e");
    const out = await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
    expect(out).to.match(/enabled success/i);
  });

  after(async () => {
    await ns?.delete();
    await target?.close();
    await executor?.stop();
  });

  it("is listed as enabled, and its steps are installed and documented", async () => {
    expect(await vela("addon", "status", "step-executor")).to.match(/enabled/i);
    const defs = await vela("def", "list", "-n", "vela-system");
    expect(STEPS).to.have.members(["http-request", "read-object-and-wait", "apply-and-wait", "github-actions"]);
    for (const s of STEPS) expect(defs).to.contain(s);
    for (const kind of STEPS) {
      const show = await vela("show", kind);
      const properties = Object.keys((schemas as Record<string, { properties?: Record<string, unknown> }>)[kind]!.properties ?? {});
      expect(properties.length, kind).to.be.greaterThan(2);
      for (const p of properties) expect(show, `vela show ${kind} lists ${p}`).to.match(new RegExp(`\\b${p}\\b`));
    }
  });

  it("runs http-request after the component deploys and passes its outputs to the next step", async () => {
    const name = "purge-and-notify";
    await applyYaml(application(ns.name, name, [
      {
        name: "purge-cdn", type: "http-request",
        properties: { url: `${target.url}/purge`, method: "POST", body: { paths: ["/index.html"] }, outputs: { purgeId: "response.body.id" } },
        outputs: [{ name: "purge-id", valueFrom: "outputs.purgeId" }],
      },
      {
        name: "notify", type: "http-request",
        inputs: [{ from: "purge-id", parameterKey: "body.purgeId" }],
        properties: { url: `${target.url}/notify`, method: "POST", body: { text: "deployed" } },
      },
    ]));
    const s = await waitForApp(ns.name, name, finished);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    expect(step(s, "purge-cdn").phase).to.equal("succeeded");
    const notify = target.requests.filter((r) => r.path === "/notify");
    expect(notify).to.have.length(1);
    expect(JSON.parse(notify[0]!.body)).to.deep.equal({ text: "deployed", purgeId: "purge-1" });
    const status = await vela("status", name, "-n", ns.name);
    expect(status).to.match(/purge-cdn/);
  });

  it("fails the workflow on a 400, with the executor's message in vela status", async () => {
    const name = "rejected";
    await applyYaml(application(ns.name, name, [{ name: "purge", type: "http-request", properties: { url: `${target.url}/reject`, method: "POST", body: { paths: [] } } }]));
    const s = await waitForApp(ns.name, name, (x) => step0(x, "purge")?.phase === "failed" && finished(x));
    expect(step(s, "purge").message).to.equal(`POST ${target.url}/reject answered 400 Bad Request: {"error":"paths must not be empty"}`);
    const status = await vela("status", name, "-n", ns.name);
    expect(status).to.contain("paths must not be empty");
  });

  it("never shows a Secret's value: not in the Application, its events, the run context or the executor's logs", async () => {
    const name = "secret-leak";
    const secretValue = "Bearer e2e-very-secret-4f1c9a";
    await kubeClients().core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "cdn-token" }, stringData: { authorization: secretValue } } });
    await applyYaml(application(ns.name, name, [{
      name: "purge", type: "http-request",
      properties: { url: `${target.url}/echo-auth`, method: "POST", body: { paths: ["/"] }, secretHeaders: { Authorization: { name: "cdn-token", key: "authorization" } }, outputs: { echoed: "response.body.got" } },
    }]));
    const s = await waitForApp(ns.name, name, (x) => step0(x, "purge")?.phase === "failed" && finished(x));
    expect(target.requests.find((r) => r.path === "/echo-auth")!.headers.authorization).to.equal(secretValue);
    // The 401's body echoes the header: a step with secretHeaders does not quote it (--body-excerpt-with-secrets).
    expect(step(s, "purge").message).to.contain("(response body withheld: the request carried secretHeaders;");
    const everything = [
      await kubectl(["get", "applications.core.oam.dev", name, "-n", ns.name, "-o", "json"]),
      await kubectl(["get", "events", "-n", ns.name, "-o", "json"]),
      await kubectl(["get", "configmaps", "-n", ns.name, "-o", "json"]),
      await vela("status", name, "-n", ns.name),
      executor.logs(),
    ].join("\n");
    expect(everything).not.to.contain("e2e-very-secret-4f1c9a");
  });

  it("a tenant's Application in namespace A cannot use a Secret of namespace B: its steps fail with a clear message and B's value appears nowhere", async () => {
    const b = await tempNamespace("e2e-tenant-b");
    try {
      const value = "tenant-b-secret-9d2e71";
      await kubeClients().core.createNamespacedSecret({ namespace: b.name, body: { metadata: { name: "b-token" }, stringData: { token: value } } });
      const name = "cross-ns";
      await applyYaml(application(ns.name, name, [
        // A Secret reference has no namespace: naming one is refused; by name, it is looked up in A.
        { name: "by-namespace", type: "http-request", properties: { url: `${target.url}/notify`, retries: 0, secretHeaders: { Authorization: { name: "b-token", key: "token", namespace: b.name } } } },
      ]));
      const s = await waitForApp(ns.name, name, (x) => step0(x, "by-namespace")?.phase === "failed" && finished(x));
      expect(step(s, "by-namespace").message).to.equal('parameter.secretHeaders.Authorization: unknown field "namespace"');
      const read = "cross-ns-read";
      await applyYaml(application(ns.name, read, [
        { name: "read-b", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "Secret", name: "b-token", namespace: b.name } },
      ]));
      const r = await waitForApp(ns.name, read, (x) => step0(x, "read-b")?.phase === "failed" && finished(x));
      expect(step(r, "read-b").message).to.match(/not the Application's namespace|steps do not read Secrets/);
      const everything = [
        await kubectl(["get", "applications.core.oam.dev", name, read, "-n", ns.name, "-o", "json"]),
        await kubectl(["get", "events", "-n", ns.name, "-o", "json"]),
        await vela("status", name, "-n", ns.name),
        executor.logs(),
      ].join("\n");
      expect(everything).not.to.contain(value);
      expect(everything).not.to.contain(Buffer.from(value).toString("base64"));
    } finally {
      await b.delete();
    }
  });

  it("fails on an invalid parameter with a message naming the field", async () => {
    const name = "bad-param";
    await applyYaml(application(ns.name, name, [{ name: "call", type: "http-request", properties: { url: `${target.url}/notify`, successCondition: "response.status ==" } }]));
    const s = await waitForApp(ns.name, name, (x) => step0(x, "call")?.phase === "failed" && finished(x));
    expect(step(s, "call").message).to.match(/^successCondition: invalid CEL expression `response.status ==`/);
  });

  it("read-object-and-wait shows progress while waiting and succeeds when the condition holds", async () => {
    const name = "wait-flag";
    await applyYaml(application(ns.name, name, [{
      name: "wait", type: "read-object-and-wait",
      properties: { apiVersion: "v1", kind: "ConfigMap", name: "feature-flag", condition: "object.data.enabled == 'true'", timeout: "2m", outputs: { owner: "object.data.owner" } },
      outputs: [{ name: "owner", valueFrom: "outputs.owner" }],
    }]));
    const waiting = await waitForApp(ns.name, name, (x) => /waiting for ConfigMap .*feature-flag to exist/.test(step0(x, "wait")?.message ?? ""));
    expect(step(waiting, "wait").phase).to.equal("running");
    expect(await vela("status", name, "-n", ns.name)).to.match(/wait/);
    await applyYaml({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "feature-flag", namespace: ns.name }, data: { enabled: "true", owner: "team-a" } });
    const s = await waitForApp(ns.name, name, finished);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    expect(step(s, "wait").phase).to.equal("succeeded");
  });

  it("read-object-and-wait fails when the condition never holds within its timeout", async () => {
    const name = "wait-timeout";
    await applyYaml(application(ns.name, name, [{ name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: "never", timeout: "3s" } }]));
    const s = await waitForApp(ns.name, name, (x) => step0(x, "wait")?.phase === "failed" && finished(x));
    expect(step(s, "wait").message).to.equal(`timed out after 3s: still waiting for ConfigMap ${ns.name}/never to exist`);
  });

  it("apply-and-wait creates an object that is garbage-collected with the Application", async () => {
    const name = "apply-wait";
    await applyYaml(application(ns.name, name, [{
      name: "create", type: "apply-and-wait",
      properties: { value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "post-deploy" }, data: { phase: "done" } }, condition: "object.data.phase == 'done'" },
    }]));
    const s = await waitForApp(ns.name, name, finished);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    const { core } = kubeClients();
    const cm = await core.readNamespacedConfigMap({ name: "post-deploy", namespace: ns.name });
    expect(cm.data).to.deep.equal({ phase: "done" });
    await kubectl(["delete", "applications.core.oam.dev", name, "-n", ns.name, "--wait=true", "--timeout=120s"]);
    const end = Date.now() + 60_000;
    for (;;) {
      const gone = await core.readNamespacedConfigMap({ name: "post-deploy", namespace: ns.name }).then(() => false, () => true);
      if (gone) break;
      if (Date.now() > end) throw new Error("the ConfigMap created by apply-and-wait outlived its Application");
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  it("apply-and-wait fails when its condition never holds", async () => {
    const name = "apply-timeout";
    await applyYaml(application(ns.name, name, [{
      name: "create", type: "apply-and-wait",
      properties: { value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "half-done" }, data: { phase: "starting" } }, condition: "object.data.phase == 'done'", timeout: "3s" },
    }]));
    const s = await waitForApp(ns.name, name, (x) => step0(x, "create")?.phase === "failed" && finished(x));
    expect(step(s, "create").message).to.equal(`timed out after 3s: still waiting for ConfigMap ${ns.name}/half-done: condition \`object.data.phase == 'done'\` is false`);
  });

  it("performs the side effect once per workflow run, and once more after a restart", async () => {
    const name = "once";
    const body = { paths: ["/once"] };
    const count = () => purges.filter((p) => p.includes("/once")).length;
    const app = (v: string) => application(ns.name, name, [{ name: "purge", type: "http-request", properties: { url: `${target.url}/purge`, method: "POST", body } }], { "app.oam.dev/publishVersion": v });
    await applyYaml(app("v1"));
    await waitForApp(ns.name, name, finished);
    // Re-reconciles without a restart (an annotation patch triggers one at once) must not repeat it.
    for (let i = 0; i < 3; i++) {
      await kubectl(["annotate", "applications.core.oam.dev", name, "-n", ns.name, `e2e/poke=${i}`, "--overwrite"]);
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(count()).to.equal(1);
    await applyYaml(app("v2"));
    await waitForApp(ns.name, name, (x) => finished(x) && count() >= 2);
    await new Promise((r) => setTimeout(r, 3000));
    expect(count()).to.equal(2);
  });

  it("vela addon disable removes the addon and its definitions", async () => {
    // Applications that use the steps block a disable (as KubeVela intends); remove them first.
    await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ns.name, "--wait=true", "--timeout=120s"]);
    await vela("addon", "disable", "step-executor");
    const end = Date.now() + 90_000;
    for (;;) {
      const defs = await vela("def", "list", "-n", "vela-system");
      if (!STEPS.some((s) => defs.includes(s))) break;
      if (Date.now() > end) throw new Error(`definitions still installed after disable:\n${defs}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  });
});

function step0(s: { workflow?: { steps?: { name: string; phase: string; message?: string }[] } }, name: string) {
  return s.workflow?.steps?.find((x) => x.name === name);
}
