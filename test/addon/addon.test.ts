// The addon Application (template.cue + resources/*.cue + parameter.cue), rendered with the cue
// CLI the way `vela addon enable` assembles it (pkg/addon/render.go): parameter.cue first, then
// `context: {metadata: <metadata.yaml>}` and `parameter: <the enable arguments as JSON>`, in one
// file of package main beside template.cue and the resources.
import { expect } from "chai";
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { buildAddon, cueBin, harnessOrFail, removeDir, root, sh, tempDir } from "./fixture.js";

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
type Component = { name: string; type: string; properties: { objects: Obj[] } };
type App = { apiVersion: string; kind: string; metadata: { namespace: string }; spec: { components: Component[] } };

const TOKEN = "0123456789abcdef0123456789abcdef";

/** The message a rendering fails with ("" when it does not fail). */
async function refusalOf(rendering: Promise<unknown>): Promise<string> {
  try {
    await rendering;
    return "";
  } catch (err) {
    return (err as Error).message;
  }
}

describe("addon: the addon Application", function () {
  this.timeout(120_000);
  let cue: string;
  let addon: string;
  const dirs: string[] = [];
  before(async () => {
    cue = await cueBin();
    addon = await buildAddon();
  });
  after(() => dirs.forEach(removeDir));

  function context(args: Record<string, unknown>): string {
    const metadata = parse(readFileSync(join(addon, "metadata.yaml"), "utf8"));
    return `${readFileSync(join(addon, "parameter.cue"), "utf8")}\ncontext: ${JSON.stringify({ metadata })}\nparameter: ${JSON.stringify(args)}\n`;
  }

  async function render(args: Record<string, unknown>): Promise<App> {
    const dir = tempDir("render");
    dirs.push(dir);
    writeFileSync(join(dir, "parameter.cue"), context(args));
    copyFileSync(join(addon, "template.cue"), join(dir, "template.cue"));
    for (const f of readdirSync(join(addon, "resources"))) copyFileSync(join(addon, "resources", f), join(dir, `resources-${f}`));
    const { stdout } = await sh(cue, ["export", "-e", "output", "--out", "json", "."], { cwd: dir });
    return JSON.parse(stdout) as App;
  }

  const objects = (app: App) => app.spec.components.flatMap((c) => c.properties.objects);
  const find = (app: App, kind: string, name: string) => objects(app).find((o) => o.kind === kind && o.metadata.name === name);

  it("runs the executor in the cluster by default, with the ConfigMap pointing at its Service", async () => {
    const app = await render({ token: TOKEN });
    expect(app).to.include({ apiVersion: "core.oam.dev/v1beta1", kind: "Application" });
    expect(app.spec.components.map((c) => [c.name, c.type])).to.deep.equal([
      ["step-executor-config", "k8s-objects"],
      ["step-executor-crd", "k8s-objects"],
      ["step-executor-rbac", "k8s-objects"],
      ["step-executor-deployment", "k8s-objects"],
      ["step-executor-service", "k8s-objects"],
      ["step-executor-network-policy", "k8s-objects"],
    ]);
    // In the cluster the ConfigMap names the Service too: the definitions call only while a replica behind it is ready.
    expect(find(app, "ConfigMap", "step-executor")).to.deep.include({ data: { url: "http://step-executor.vela-system.svc:8080", service: "vela-system/step-executor" } });
    expect(find(app, "Secret", "step-executor-token")).to.deep.include({ data: { token: Buffer.from(TOKEN).toString("base64") } });
    for (const o of objects(app)) {
      if (!o.kind.startsWith("Cluster") && o.kind !== "CustomResourceDefinition") expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).to.equal("vela-system");
    }
  });

  it("the Deployment: probes, token from the Secret, limits, non-root, read-only root filesystem", async () => {
    const app = await render({ token: TOKEN, replicas: 2, image: "registry.local/step-executor:dev", imagePullPolicy: "Never" });
    const deploy = find(app, "Deployment", "step-executor") as Obj & { spec: any };
    expect(deploy.spec.replicas).to.equal(2);
    const pod = deploy.spec.template.spec;
    expect(pod.serviceAccountName).to.equal("step-executor");
    expect(pod.securityContext).to.include({ runAsNonRoot: true });
    const [c] = pod.containers;
    expect(c).to.include({ image: "registry.local/step-executor:dev", imagePullPolicy: "Never" });
    expect(c.livenessProbe.httpGet).to.deep.equal({ path: "/healthz", port: "http" });
    expect(c.readinessProbe.httpGet).to.deep.equal({ path: "/readyz", port: "http" });
    expect(c.ports).to.deep.equal([{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    expect(c.env).to.deep.include({ name: "STEP_EXECUTOR_TOKEN", valueFrom: { secretKeyRef: { name: "step-executor-token", key: "token" } } });
    // Memory sized from BENCHMARKS.md §3 for the default --max-runs (docs/operations.md "Sizing").
    expect(c.env).to.deep.include({ name: "STEP_EXECUTOR_MAX_RUNS", value: "1000" });
    expect(c.resources).to.deep.equal({ requests: { cpu: "50m", memory: "192Mi" }, limits: { cpu: "500m", memory: "570Mi" } });
    expect(c.securityContext).to.deep.include({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    const svc = find(app, "Service", "step-executor") as Obj & { spec: any };
    expect(svc.spec.ports).to.deep.equal([{ name: "http", port: 8080, targetPort: "http", protocol: "TCP" }]);
    expect(svc.spec.selector).to.deep.equal(deploy.spec.selector.matchLabels);
    // Spread over nodes and zones, without refusing to schedule on a single node.
    expect(pod.topologySpreadConstraints.map((t: any) => [t.topologyKey, t.whenUnsatisfiable, t.maxSkew])).to.deep.equal([
      ["kubernetes.io/hostname", "ScheduleAnyway", 1], ["topology.kubernetes.io/zone", "ScheduleAnyway", 1],
    ]);
    for (const t of pod.topologySpreadConstraints) expect(t.labelSelector.matchLabels).to.deep.equal(deploy.spec.selector.matchLabels);
  });

  it("maxRuns sets the executor's maximum and its memory limit (320 MiB + 0.25 MiB per run)", async () => {
    const c = (find(await render({ token: TOKEN, maxRuns: 4000 }), "Deployment", "step-executor") as Obj & { spec: any }).spec.template.spec.containers[0];
    expect(c.env).to.deep.include({ name: "STEP_EXECUTOR_MAX_RUNS", value: "4000" });
    expect(c.resources.limits.memory).to.equal("1320Mi");
  });

  it("a PodDisruptionBudget keeping one replica, only when there is more than one", async () => {
    const two = await render({ token: TOKEN, replicas: 2 });
    const pdb = find(two, "PodDisruptionBudget", "step-executor") as Obj & { spec: any };
    expect(pdb).to.deep.include({ apiVersion: "policy/v1" });
    expect(pdb.metadata.namespace).to.equal("vela-system");
    expect(pdb.spec).to.deep.equal({ minAvailable: 1, selector: { matchLabels: { "app.kubernetes.io/name": "step-executor" } } });
    expect(find(await render({ token: TOKEN }), "PodDisruptionBudget", "step-executor")).to.equal(undefined);
  });

  it("a ServiceMonitor scraping /metrics on the Service's port, only with serviceMonitor=true and in-cluster", async () => {
    const on = await render({ token: TOKEN, serviceMonitor: true });
    expect(on.spec.components.map((c) => c.name)).to.include("step-executor-monitoring");
    const sm = find(on, "ServiceMonitor", "step-executor") as Obj & { spec: any };
    expect(sm.apiVersion).to.equal("monitoring.coreos.com/v1");
    expect(sm.metadata.namespace).to.equal("vela-system");
    const svc = find(on, "Service", "step-executor") as Obj & { spec: any; metadata: { labels: Record<string, string> } };
    expect(svc.metadata.labels).to.deep.include(sm.spec.selector.matchLabels);
    expect(sm.spec.endpoints).to.deep.equal([{ port: svc.spec.ports[0].name, path: "/metrics", interval: "30s" }]);
    expect(sm.spec.namespaceSelector).to.deep.equal({ matchNames: ["vela-system"] });
    for (const args of [{ token: TOKEN }, { token: TOKEN, serviceMonitor: false }, { token: TOKEN, serviceMonitor: true, executorURL: "http://127.0.0.1:18080" }]) {
      expect(objects(await render(args)).map((o) => o.kind), JSON.stringify(args)).not.to.include("ServiceMonitor");
    }
  });

  it("grants the executor read access, and writes only to its StepRuns, its Leases, the namespaces' key Secrets, Application metadata (wake-up) and Events", async () => {
    const app = await render({ token: TOKEN });
    type Rule = { apiGroups: string[]; verbs: string[]; resources: string[]; resourceNames?: string[] };
    const role = find(app, "ClusterRole", "step-executor") as Obj & { rules: Rule[] };
    const writes = role.rules.filter((r) => r.verbs.some((v) => !["get", "list", "watch"].includes(v)));
    const expected = [
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["step-executor"], verbs: ["update"] },
      { apiGroups: ["step-executor.oam.dev"], resources: ["stepruns"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
      { apiGroups: ["core.oam.dev"], resources: ["applications"], verbs: ["get", "patch"] },
      { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["impersonate"] },
      { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
    ];
    expect(writes).to.deep.equal(expected);
    // Impersonating users and groups only for KubeVela's AuthenticateApplication mode.
    const isolated = find(await render({ token: TOKEN, authenticateApplication: true }), "ClusterRole", "step-executor") as Obj & { rules: Rule[] };
    expect(isolated.rules.filter((r) => r.verbs.some((v) => !["get", "list", "watch"].includes(v)))).to.deep.equal([
      ...expected.slice(0, 5), { apiGroups: [""], resources: ["users", "groups"], verbs: ["impersonate"] }, expected[5],
    ]);
    expect(role.rules).to.deep.include({ apiGroups: [""], resources: ["secrets"], verbs: ["get"] });
    const leases = find(app, "Role", "step-executor") as Obj & { rules: unknown[] };
    expect(leases.metadata.namespace).to.equal("vela-system");
    expect(leases.rules).to.deep.equal([{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "list", "create", "update", "patch", "delete"] }]);
    const binding = find(app, "ClusterRoleBinding", "step-executor") as Obj & { subjects: unknown[]; roleRef: unknown };
    expect(binding.subjects).to.deep.equal([{ kind: "ServiceAccount", name: "step-executor", namespace: "vela-system" }]);
  });

  it("admits ingress to the executor only from KubeVela's controller pods, plus an optional metrics namespace", async () => {
    const policy = (app: App) => find(app, "NetworkPolicy", "step-executor") as Obj & { spec: any };
    const deploy = find(await render({ token: TOKEN }), "Deployment", "step-executor") as Obj & { spec: any };
    const controllerOnly = {
      from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "vela-system" } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "vela-core" } } }],
      ports: [{ port: 8080, protocol: "TCP" }],
    };
    const plain = policy(await render({ token: TOKEN }));
    expect(plain.metadata.namespace).to.equal("vela-system");
    expect(plain.spec).to.deep.equal({ podSelector: deploy.spec.selector, policyTypes: ["Ingress"], ingress: [controllerOnly] });
    const scraped = policy(await render({ token: TOKEN, metricsNamespace: "monitoring" }));
    expect(scraped.spec.ingress).to.deep.equal([controllerOnly, {
      from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }],
      ports: [{ port: 8080, protocol: "TCP" }],
    }]);
    expect(find(await render({ token: TOKEN, executorURL: "http://127.0.0.1:18080" }), "NetworkPolicy", "step-executor")).to.equal(undefined);
  });

  it("passes the outbound allow-list to the executor (empty by default: loopback and private targets refused)", async () => {
    const env = async (args: Record<string, unknown>) => ((find(await render({ token: TOKEN, ...args }), "Deployment", "step-executor") as Obj & { spec: any }).spec.template.spec.containers[0].env as unknown[]);
    expect(await env({})).to.deep.include({ name: "STEP_EXECUTOR_OUTBOUND_ALLOW", value: "" });
    expect(await env({ outboundAllow: "10.20.0.0/16,hooks.shop.svc" })).to.deep.include({ name: "STEP_EXECUTOR_OUTBOUND_ALLOW", value: "10.20.0.0/16,hooks.shop.svc" });
  });

  it("with executorURL: only the ConfigMap (pointing there), the Secret and the StepRun CRD", async () => {
    const app = await render({ token: TOKEN, executorURL: "http://127.0.0.1:18080" });
    expect(app.spec.components.map((c) => c.name)).to.deep.equal(["step-executor-config", "step-executor-crd"]);
    expect(find(app, "ConfigMap", "step-executor")).to.deep.include({ data: { url: "http://127.0.0.1:18080" } });
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    ["no token", {}, /token/],
    ["a short token", { token: "short" }, /MinRunes\(16\)/],
    ["an executorURL without a scheme", { token: TOKEN, executorURL: "127.0.0.1:18080" }, /executorURL|url/],
    ["zero replicas", { token: TOKEN, replicas: 0 }, /replicas/],
    ["a maxRuns of 0", { token: TOKEN, maxRuns: 0 }, /maxRuns/],
    ["an unknown pull policy", { token: TOKEN, imagePullPolicy: "Sometimes" }, /imagePullPolicy/],
  ];
  for (const [name, args, message] of refused) {
    it(`refuses ${name}`, async () => {
      expect(await refusalOf(render(args))).to.match(message);
    });
  }

  it("NOTES.cue renders for both set-ups", async () => {
    for (const args of [{ token: TOKEN }, { token: TOKEN, executorURL: "http://127.0.0.1:18080" }]) {
      const dir = tempDir("notes");
      dirs.push(dir);
      writeFileSync(join(dir, "notes.cue"), context(args) + "\n" + readFileSync(join(addon, "NOTES.cue"), "utf8"));
      const { stdout } = await sh(cue, ["export", "-e", "notes", "--out", "text", "notes.cue"], { cwd: dir });
      expect(stdout).to.contain("http-request, read-object-and-wait, apply-and-wait");
      expect(stdout).to.contain(args.executorURL ?? "Deployment vela-system/step-executor");
    }
  });

  it("metadata.yaml: catalog fields, and the directory name equals the addon name", () => {
    const meta = parse(readFileSync(join(root, "metadata.yaml"), "utf8"));
    expect(meta).to.include({ name: "step-executor", version: "0.1.0" });
    expect(meta.system).to.deep.equal({ vela: ">=1.10.4" });
    expect(meta.description).to.be.a("string").and.not.empty;
    expect(meta.tags).to.be.an("array").and.not.empty;
    // vela addon enable names the addon after its directory: the default build (npm run
    // addon:build, which npm test runs first) is dist/<name from metadata.yaml>
    expect(parse(readFileSync(join(root, "dist", meta.name, "metadata.yaml"), "utf8")).name).to.equal(meta.name);
    expect(readdirSync(addon).sort()).to.deep.equal(["NOTES.cue", "README.md", "definitions", "metadata.yaml", "parameter.cue", "resources", "template.cue"]);
  });
});

describe("addon: rendered by `vela addon enable`'s own code (test/addon/harness)", function () {
  this.timeout(600_000);
  let harness: string | undefined;
  let addon: string;
  before(async function () {
    harness = await harnessOrFail();
    addon = await buildAddon();
  });

  type Rendered = { parameterSchema: { properties: Record<string, { description?: string }>; required?: string[] }; application: App; definitions: Obj[] };
  const render = async (args: Record<string, unknown>) =>
    JSON.parse((await sh(harness!, ["addon", addon, JSON.stringify(args)])).stdout) as Rendered;

  it("makes the parameter schema (every parameter documented) and one definition per addon/definitions/*.cue", async () => {
    const r = await render({ token: TOKEN });
    expect(Object.keys(r.parameterSchema.properties).sort()).to.deep.equal(["applyAllowKinds", "authenticateApplication", "authenticationDefaultUser", "executorURL", "image", "imagePullPolicy", "maxRuns", "metricsNamespace", "outboundAllow", "replicas", "serviceMonitor", "token"]);
    for (const [name, p] of Object.entries(r.parameterSchema.properties)) expect(p.description, name).to.be.a("string").and.not.empty;
    const kinds = readdirSync(join(root, "addon/definitions")).filter((f) => f.endsWith(".cue")).map((f) => f.slice(0, -4)).sort();
    expect(kinds).to.include.members(["apply-and-wait", "github-actions", "http-request", "read-object-and-wait"]);
    expect(r.definitions.map((d) => [d.kind, d.metadata.name, d.metadata.namespace])).to.deep.equal(
      kinds.map((k) => ["WorkflowStepDefinition", k, "vela-system"]),
    );
  });

  it("renders the in-cluster executor, or only the configuration with executorURL", async () => {
    const inCluster = await render({ token: TOKEN });
    expect(inCluster.application.spec.components.map((c) => c.name)).to.deep.equal([
      "step-executor-config", "step-executor-crd", "step-executor-rbac", "step-executor-deployment", "step-executor-service", "step-executor-network-policy",
    ]);
    const policy = inCluster.application.spec.components.at(-1)!.properties.objects[0] as Obj & { spec: { ingress: { from: unknown[] }[] } };
    expect(policy.kind).to.equal("NetworkPolicy");
    expect(policy.spec.ingress[0]!.from).to.deep.equal([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "vela-system" } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "vela-core" } } }]);
    const scraped = await render({ token: TOKEN, metricsNamespace: "monitoring" });
    const scrapedPolicy = scraped.application.spec.components.at(-1)!.properties.objects[0] as typeof policy;
    expect(scrapedPolicy.spec.ingress.map((i) => i.from)).to.deep.equal([policy.spec.ingress[0]!.from, [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }]]);
    const local = await render({ token: TOKEN, executorURL: "http://127.0.0.1:18080" });
    expect(local.application.spec.components.map((c) => c.name)).to.deep.equal(["step-executor-config", "step-executor-crd"]);
    expect(local.application.spec.components[0]!.properties.objects[0]).to.deep.include({ data: { url: "http://127.0.0.1:18080" } });
  });

  for (const [name, args, message] of [
    ["a short token", { token: "short" }, /MinRunes\(16\)/],
    ["zero replicas", { token: TOKEN, replicas: 0 }, /replicas/],
    ["a maxRuns of 0", { token: TOKEN, maxRuns: 0 }, /maxRuns/],
  ] as const) {
    it(`refuses ${name}`, async () => {
      expect(await refusalOf(render(args))).to.match(message);
    });
  }
});
