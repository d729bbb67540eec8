// A hostile tenant on the real controller, in both of KubeVela's modes: the default one, and
// AuthenticateApplication (vela-core restarted with the feature gate; each tenant's Applications
// name a ServiceAccount with namespace-scoped RBAC). Tenant A may create Applications in its own
// namespace only; tenant B's Secret marker must appear nowhere, nothing cluster-scoped or
// power-granting may be applied, and requests claiming tenant B's namespace are refused.
// Every step kind must keep working for the tenant in both modes.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { namespaceKey, sign } from "../../server/http/auth.js";
import { FakeGitHub } from "../github-server/server.js";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { application, applyYaml, finished, kubectl, startExecutorProcess, step, vela, waitForApp, type AppStatus, type ExecutorProcess } from "./harness.js";

const exec = promisify(execFile);
const PAT = "ghp_tenantTENANTtenantTENANTtenant0000";

async function restartVelaCore(...flags: string[]): Promise<void> {
  await exec("bash", ["scripts/control-plane", "vela-core", "restart", ...flags], { env: process.env, timeout: 180_000 });
}

const failedOrDone = (s: AppStatus) => finished(s) || (s.workflow?.steps ?? []).some((x) => x.phase === "failed");

for (const mode of ["default", "AuthenticateApplication"] as const) {
  describe(`e2e: a hostile tenant, KubeVela ${mode} mode`, function () {
    this.timeout(600_000);
    const isolated = mode === "AuthenticateApplication";
    let executor: ExecutorProcess;
    let target: Target;
    let github: FakeGitHub;
    let a: Awaited<ReturnType<typeof tempNamespace>>;
    let b: Awaited<ReturnType<typeof tempNamespace>>;
    const marker = `tenant-b-marker-${Math.random().toString(36).slice(2)}`;
    const hookToken = `tenant-a-hook-${Math.random().toString(36).slice(2)}`;
    // In isolated mode every Application of tenant A names its ServiceAccount.
    const identity = (): Record<string, string> => (isolated ? { "app.oam.dev/service-account-name": "tenant" } : {});

    before(async () => {
      executor = await startExecutorProcess(isolated ? ["--authenticate-application", "on"] : []);
      target = await startTarget((r, res) => r.path === "/big"
        ? reply(res, 200, { pad: "x".repeat(1_200_000) })
        : reply(res, 200, { ok: true, got: r.headers.authorization ?? null }));  // /echo and /hook echo the Authorization header
      github = await new FakeGitHub({
        tokens: [PAT],
        repos: [{ owner: "acme", name: "shop", branches: ["main"], workflows: [
          { id: 301, file: "e2e.yaml", name: "E2E", inputs: { distinct_id: {} }, runName: "E2E [${{ inputs.distinct_id }}]", script: { queuedMs: 100, runningMs: 300 } },
        ] }],
      }).start();
      a = await tempNamespace("tenant-a");
      b = await tempNamespace("tenant-b");
      const { core } = kubeClients();
      await core.createNamespacedSecret({ namespace: b.name, body: { metadata: { name: "marker" }, stringData: { value: marker } } });
      await core.createNamespacedSecret({ namespace: a.name, body: { metadata: { name: "hook" }, stringData: { token: hookToken } } });
      await core.createNamespacedSecret({ namespace: a.name, body: { metadata: { name: "github-token" }, stringData: { token: PAT } } });
      // Tenant A's ServiceAccount: the built-in `admin` ClusterRole, bound in its own namespace only.
      await core.createNamespacedServiceAccount({ namespace: a.name, body: { metadata: { name: "tenant" } } });
      await kubeClients().kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({ namespace: a.name, body: {
        metadata: { name: "tenant-admin" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
        subjects: [{ kind: "ServiceAccount", name: "tenant", namespace: a.name }],
      } });
      // Enabled by the operator before isolation is switched on: without KubeVela's webhook (which
      // records who applied an Application), vela-core would act for the addon's own Application as nobody.
      const out = await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
      expect(out).to.match(/enabled success/i);
      if (isolated) await restartVelaCore("--feature-gates=AuthenticateApplication=true");
    });

    after(async () => {
      // Back to the default mode first: KubeVela finalizes the tenant's Applications as their identity otherwise.
      if (isolated) await restartVelaCore();
      for (const ns of [a, b]) {
        if (!ns) continue;
        await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ns.name, "--wait=true", "--timeout=120s"]).catch(() => undefined);
        await ns.delete();
      }
      await target?.close();
      await github?.close();
      await executor?.stop();
    });

    /** Tenant B's Secret must appear in none of: the Application's status, its workflow context, the executor's logs. */
    async function expectNoMarker(app: string) {
      const json = await kubectl(["get", "applications.core.oam.dev", app, "-n", a.name, "-o", "json"]);
      const contexts = await kubectl(["get", "configmaps", "-n", a.name, "-o", "json"]);
      for (const text of [json, contexts, executor.logs()]) {
        expect(text).not.to.contain(marker);
        expect(text).not.to.contain(Buffer.from(marker).toString("base64"));
      }
    }

    async function runSteps(name: string, steps: unknown[]): Promise<AppStatus> {
      await applyYaml(application(a.name, name, steps, identity()));
      return waitForApp(a.name, name, failedOrDone, 180_000);
    }

    it("the tenant may read its StepRuns (view/edit/admin aggregate step-executor:stepruns-view), never write them, nor read another tenant's", async () => {
      // What lets a step evaluated as the tenant answer from its run's record (docs/runs.md §12),
      // and what makes that record trustworthy: only executors write it.
      const sa = `system:serviceaccount:${a.name}:tenant`;
      const can = (verb: string, ns: string) => kubectl(["auth", "can-i", verb, "stepruns.step-executor.oam.dev", "-n", ns, "--as", sa]).then((o) => o.trim(), (e: Error) => (/: no$/.test(e.message.trim()) ? "no" : e.message));
      expect(await can("get", a.name)).to.equal("yes");
      expect(await can("list", a.name)).to.equal("yes");
      for (const verb of ["create", "update", "patch", "delete"]) expect(await can(verb, a.name), verb).to.equal("no");
      expect(await kubectl(["auth", "can-i", "update", "stepruns.step-executor.oam.dev", "--subresource", "status", "-n", a.name, "--as", sa]).catch((e: Error) => (/: no$/.test(e.message.trim()) ? "no" : e.message))).to.equal("no");
      expect(await can("get", b.name)).to.equal("no");
    });

    it("every step kind works for the tenant (http-request with a Secret header, read-object-and-wait, apply-and-wait, github-actions)", async () => {
      const s = await runSteps("all-kinds", [
        { name: "call", type: "http-request", properties: { url: `${target.url}/hook`, method: "POST", secretHeaders: { Authorization: { name: "hook", key: "token" } }, outputs: { ok: "response.body.ok" } } },
        { name: "read", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: "all-kinds-config", outputs: { by: "object.data.deployedBy" } } },
        { name: "apply", type: "apply-and-wait", properties: { value: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied" }, data: { state: "applied" } }, condition: "object.data.state == 'applied'" } },
        { name: "gha", type: "github-actions", properties: { owner: "acme", repo: "shop", workflow: "e2e.yaml", ref: "main", apiURL: github.url, credentials: { token: { name: "github-token", key: "token" } }, timeout: "2m" } },
      ]);
      expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
      for (const name of ["call", "read", "apply", "gha"]) expect(step(s, name).phase, name).to.equal("succeeded");
      expect(target.requests.filter((r) => r.path === "/hook").map((r) => r.headers.authorization)).to.deep.equal([hookToken]);
      // The namespace's key Secret was written by the executor, and the applied object belongs to the Application.
      const { core } = kubeClients();
      const keySecret = await core.readNamespacedSecret({ namespace: a.name, name: "step-executor" });
      expect(Buffer.from(keySecret.data!.key!, "base64").toString()).to.equal(namespaceKey(executor.token, a.name));
      const applied = await core.readNamespacedConfigMap({ namespace: a.name, name: "applied" });
      expect(applied.data).to.deep.equal({ state: "applied" });
    });

    const refusals: [string, unknown, RegExp][] = [
      ["a slash in a name reaching tenant B's Secret", { name: "r", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "Namespace", name: "", outputs: { leak: "object.data.value" }, timeout: "20s" } }, /^name: .* contains "\/"/],
      ["an apiVersion with ../ reading a Secret", { name: "r", type: "read-object-and-wait", properties: { apiVersion: "../api/v1", kind: "Secret", name: "hook", outputs: { leak: "object.data.token" }, timeout: "20s" } }, /^apiVersion: "\.\.\/api\/v1" is not an apiVersion/],
      ["a ClusterRoleBinding to cluster-admin", { name: "r", type: "apply-and-wait", properties: { value: {
        apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" }, subjects: [{ kind: "ServiceAccount", name: "default", namespace: "" }] } } }, /^value.kind: ClusterRoleBinding is cluster-scoped/],
      ["a RoleBinding in its own namespace", { name: "r", type: "apply-and-wait", properties: { value: {
        apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "escalate" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" }, subjects: [{ kind: "ServiceAccount", name: "default", namespace: "" }] } } }, /^value.kind: apply-and-wait does not apply RoleBinding by default/],
    ];
    refusals.forEach(([what, stepSpec, message], i) => {
      it(`refused with a one-line message, nothing applied, no Secret value anywhere: ${what}`, async () => {
        const spec = JSON.parse(JSON.stringify(stepSpec).replaceAll('"name":""', `"name":"${b.name}/secrets/marker"`).replaceAll('"namespace":""', `"namespace":"${a.name}"`));
        if (spec.type === "apply-and-wait") spec.properties.value.metadata.name = `escalate-${i}`;
        const app = `refused-${i}`;
        const s = await runSteps(app, [spec]);
        const st = step(s, "r");
        expect(st.phase, JSON.stringify(s.workflow)).to.equal("failed");
        expect(st.message).to.match(message);
        expect(st.message).not.to.contain("\n");
        await expectNoMarker(app);
        const bindings = await kubectl(["get", "clusterrolebindings,rolebindings", "-A", "-o", "name"]);
        expect(bindings).not.to.contain(`escalate-${i}`);
      });
    });

    it("a CEL expression built to freeze the executor is refused at once; an output too large for KubeVela fails its step, not the Application", async () => {
      const nested = "[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, [0,1,2,3,4,5,6,7,8,9].all(c, [0,1,2,3,4,5,6,7,8,9].all(d, [0,1,2,3,4,5,6,7,8,9].all(e, [0,1,2,3,4,5,6,7,8,9].all(f, [0,1,2,3,4,5,6,7,8,9].all(g, [0,1,2,3,4,5,6,7,8,9].all(h, true))))))))";
      const started = Date.now();
      const s = await runSteps("cel-bomb", [
        { name: "r", type: "http-request", properties: { url: `${target.url}/hook`, successCondition: nested } },
      ]);
      expect(step(s, "r").phase, JSON.stringify(s.workflow)).to.equal("failed");
      expect(step(s, "r").message).to.match(/^successCondition: invalid CEL expression .*: comprehensions .* are nested 8 deep; at most 2 are allowed$/);
      // The executor kept answering throughout (a blocked event loop would have held this for seconds per evaluation).
      const t0 = Date.now();
      expect((await fetch(`${executor.url}/healthz`)).status).to.equal(200);
      expect(Date.now() - t0, "healthz answered at once").to.be.below(2_000);
      expect(Date.now() - started).to.be.below(180_000);

      const big = await runSteps("big-output", [
        { name: "r", type: "http-request", properties: { url: `${target.url}/big`, outputs: { all: "response.body" } } },
      ]);
      expect(step(big, "r").phase, JSON.stringify(big.workflow).slice(0, 2000)).to.equal("failed");
      expect(step(big, "r").message).to.match(/^outputs\.all: .* is more than the 16 KiB one output may be; output a smaller field$/);
      // KubeVela could store the workflow's context: the Application is not stuck in `running` with reconcile errors.
      expect(big.status).to.equal("workflowFailed");
    });

    it("a target echoing a Secret header cannot hand its value to the tenant's CEL (substring, bytes, split, upperAscii, a startsWith oracle)", async () => {
      const s = await runSteps("echo", [{
        name: "r", type: "http-request",
        properties: {
          url: `${target.url}/echo`, secretHeaders: { Authorization: { name: "hook", key: "token" } },
          // An oracle: true only if the tenant's guess of the secret's start is right.
          failureCondition: "response.body.got.startsWith('tenant-a-hook')",
          outputs: { part: "response.body.got.substring(0, 8)", raw: "bytes(response.body.got)", chars: "response.body.got.split('')", upper: "response.body.got.upperAscii()" },
        },
      }]);
      expect(step(s, "r").phase, JSON.stringify(s.workflow)).to.equal("succeeded");
      // CEL saw the echo already redacted (so a substring longer than "[redacted]" would not even evaluate).
      const runs = await kubectl(["get", "stepruns", "-n", a.name, "-l", "step-executor.oam.dev/application=echo", "-o", "json"]);
      expect(runs).to.match(/"part":\s*"\[redacte"/);
      // The status (the spec holds the tenant's own guess, 'tenant-a-hook'), the workflow context, the run records, the logs.
      const texts = [await kubectl(["get", "applications.core.oam.dev", "echo", "-n", a.name, "-o", "jsonpath={.status}"]), await kubectl(["get", "configmaps,stepruns", "-n", a.name, "-o", "json"]), executor.logs()];
      for (const text of texts) {
        for (const form of [hookToken, hookToken.slice(0, 12), hookToken.toUpperCase(), Buffer.from(hookToken).toString("base64").slice(0, 16), hookToken.split("").join('","')]) {
          expect(text, form).not.to.contain(form);
        }
      }
    });

    it("an IPv6 form of the metadata address and a Host header override are refused before anything is sent", async () => {
      const s = await runSteps("metadata", [
        { name: "r", type: "http-request", properties: { url: "http://[::a9fe:a9fe]/latest/meta-data/", retries: 0 } },
      ]);
      expect(step(s, "r").phase, JSON.stringify(s.workflow)).to.equal("failed");
      expect(step(s, "r").message).to.match(/link-local address \(cloud metadata service\), which the executor always refuses/);
      const h = await runSteps("host-header", [
        { name: "r", type: "http-request", properties: { url: `${target.url}/hook`, headers: { Host: "169.254.169.254" } } },
      ]);
      expect(step(h, "r").phase, JSON.stringify(h.workflow)).to.equal("failed");
      expect(step(h, "r").message).to.match(/^headers\.Host: the executor sets the connection-level header "Host" itself; remove it and put the host in url$/);
    });

    it("a request forged with tenant A's own key but claiming tenant B's namespace is refused (401), and tenant A cannot read the executor's token", async () => {
      const { core } = kubeClients();
      const keySecret = await core.readNamespacedSecret({ namespace: a.name, name: "step-executor" });
      const key = Buffer.from(keySecret.data!.key!, "base64").toString();
      const body = JSON.stringify({ run: { namespace: b.name, application: "victim", step: "s", session: "forged" },
        parameter: { url: `${target.url}/steal`, secretHeaders: { Authorization: { name: "marker", key: "value" } } } });
      const res = await fetch(`${executor.url}/v1/steps/http-request`, { method: "POST", body, headers: { "content-type": "application/json", "x-step-executor-signature": sign(key, body) } });
      expect(res.status).to.equal(401);
      const bearer = await fetch(`${executor.url}/v1/steps/http-request`, { method: "POST", body, headers: { "content-type": "application/json", authorization: `Bearer ${executor.token}` } });
      expect(bearer.status, "bearer auth is off by default").to.equal(401);
      expect(target.requests.filter((r) => r.path === "/steal")).to.have.length(0);
      if (isolated) {
        // As tenant A's ServiceAccount: its own key yes, the executor's token and tenant B's key no.
        const as = ["--as", `system:serviceaccount:${a.name}:tenant`];
        expect(await kubectl(["auth", "can-i", "get", "secret/step-executor", "-n", a.name, ...as]).catch((e: Error) => e.message)).to.match(/^yes/);
        expect(await kubectl(["auth", "can-i", "get", "secret/step-executor-token", "-n", "vela-system", ...as]).catch((e: Error) => e.message)).to.match(/no/);
        expect(await kubectl(["auth", "can-i", "get", "secret/step-executor", "-n", b.name, ...as]).catch((e: Error) => e.message)).to.match(/no/);
      }
    });

    if (isolated) {
      it("an Application that names no identity acts as KubeVela's default user: the step fails saying which permission is missing (never runs as the executor)", async () => {
        // Only our step (no component: KubeVela itself could apply nothing as nobody either).
        const app = application(a.name, "anonymous", []);
        app.spec.components = [];
        app.spec.workflow.steps = [{ name: "r", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: "anything", timeout: "20s" } }] as never;
        await applyYaml(app);
        const s = await waitForApp(a.name, "anonymous", failedOrDone, 180_000);
        expect(step(s, "r").phase, JSON.stringify(s.workflow)).to.equal("failed");
        expect(step(s, "r").message, step(s, "r").message).to.match(new RegExp(`^cannot read Secret ${a.name}/step-executor, which holds this namespace's key to the step executor \\(.*User "kubevela:vela-core" cannot get resource "secrets".*\\); the Application's identity needs get on it`));
      });
    }
  });
}
