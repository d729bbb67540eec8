// Argo CD in the loop, the product's own setting: a real Argo CD (application controller, repo
// server, miniredis; `scripts/control-plane argocd up`) syncs a Git repository (file://, a real
// git repository in a temp dir) holding examples/argocd/deploy/web — a KubeVela Application whose
// workflow runs apply-component → read-object-and-wait → http-request → github-actions, and a
// sync-wave-1 ConfigMap — through examples/argocd/application.yaml, with argocd/argocd-cm.yaml
// patched into argocd-cm as docs/argocd.md says. The real KubeVela controller runs the workflow,
// the executor runs as a process on 127.0.0.1, the smoke-test target and GitHub's API are local.
//
// Everything is observed through watches (every write, in order), not polls: Argo CD's sync and
// health, the KubeVela Application's status, the rendered ConfigMap. ARGOCD_REVISIONS (default 30)
// sets how many revisions the session-drop count commits.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Watch } from "@kubernetes/client-node";
import { parse } from "yaml";
import { FakeGitHub } from "../github-server/server.js";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { kubectl, startExecutorProcess, vela, type ExecutorProcess } from "./harness.js";

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const EXAMPLE = join(ROOT, "examples/argocd");
const REVISIONS = Number(process.env.ARGOCD_REVISIONS ?? 30);
const PAT = "ghp_argoArgoargoArgoargoArgoargoArgo0000";
const ARGOCD_NS = "argocd";
const PLACEHOLDER = /\$\{([A-Z][A-Z0-9_]*)\}/g;

/** Replaces every `${NAME}`; a placeholder without a value is an error (example and test in step). */
function substitute(text: string, values: Record<string, string>, file: string): string {
  return text.replace(PLACEHOLDER, (m, name: string) => {
    if (!(name in values)) throw new Error(`${file}: no value for the placeholder ${m}`);
    return values[name]!;
  });
}

async function git(dir: string, ...args: string[]): Promise<string> {
  const env = { ...process.env, GIT_AUTHOR_NAME: "e2e", GIT_AUTHOR_EMAIL: "e2e@example.com", GIT_COMMITTER_NAME: "e2e", GIT_COMMITTER_EMAIL: "e2e@example.com" };
  return (await run("git", args, { cwd: dir, env })).stdout.trim();
}

/** A Git repository holding examples/argocd/deploy/ with its placeholders filled in. */
class Repo {
  private constructor(readonly dir: string) {}
  get url() { return `file://${this.dir}`; }
  static async create(values: Record<string, string>): Promise<Repo> {
    const dir = mkdtempSync(join(tmpdir(), "argocd-e2e-repo-"));
    cpSync(join(EXAMPLE, "deploy"), join(dir, "deploy"), { recursive: true });
    for (const f of readdirSync(join(dir, "deploy/web"))) {
      const p = join(dir, "deploy/web", f);
      writeFileSync(p, substitute(readFileSync(p, "utf8"), values, `examples/argocd/deploy/web/${f}`));
    }
    await git(dir, "init", "-q", "-b", "main");
    await git(dir, "add", "-A");
    await git(dir, "commit", "-q", "-m", "web 2026.12.1");
    return new Repo(dir);
  }
  /** Commits app.yaml with another RELEASE; returns the commit. */
  async release(version: string): Promise<string> {
    const p = join(this.dir, "deploy/web/app.yaml");
    const text = readFileSync(p, "utf8");
    const next = text.replace(/RELEASE: "[^"]*"/, `RELEASE: "${version}"`);
    if (next === text) throw new Error(`app.yaml has no RELEASE line to change (or it already says ${version})`);
    writeFileSync(p, next);
    await git(this.dir, "commit", "-q", "-am", `web ${version}`);
    return this.head();
  }
  head() { return git(this.dir, "rev-parse", "HEAD"); }
  remove() { rmSync(this.dir, { recursive: true, force: true }); }
}

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion: string; generation?: number; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  status?: any;
}
interface Seen { type: string; at: number; obj: Obj }

/**
 * Every watch event of the objects under `path` (optionally one name), in order. Re-opens the
 * watch when the API server ends it (a re-list then shows the current state as ADDED).
 */
class Recorder {
  readonly events: Seen[] = [];
  reopened = 0;
  private waiters = new Set<() => void>();
  private abort?: AbortController;
  private closed = false;
  constructor(private readonly path: string, private readonly name?: string) {}
  async start(): Promise<this> {
    const query: Record<string, string | boolean> = { allowWatchBookmarks: false };
    if (this.name) query.fieldSelector = `metadata.name=${this.name}`;
    this.abort = await new Watch(kubeClients().kc).watch(this.path, query, (type, obj: Obj) => {
      this.events.push({ type, at: Date.now(), obj });
      for (const w of this.waiters) w();
    }, () => {
      if (this.closed) return;
      this.reopened++;
      setTimeout(() => void this.start().catch(() => undefined), 200);
    });
    return this;
  }
  latest(name = this.name): Obj | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]!.obj.metadata.name === name) return this.events[i]!.type === "DELETED" ? undefined : this.events[i]!.obj;
    return undefined;
  }
  /** Resolves with the first object (from now on, the latest included) that `pred` accepts. */
  until(what: string, pred: (o: Obj) => boolean, limitMs = 180_000, describe: () => string = () => JSON.stringify(this.latest()?.status)): Promise<Obj> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const o = this.latest();
        if (o && pred(o)) { done(); resolve(o); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`${what}: not within ${limitMs / 1000} s; last: ${describe()}`)); }, limitMs);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }
  stop() { this.closed = true; this.abort?.abort(); }
}

/** One line of an Argo CD Application's state. */
function argoState(o: Obj) {
  const s = o.status ?? {};
  const kubevela = (s.resources ?? []).find((r: { group?: string; kind?: string }) => r.group === "core.oam.dev" && r.kind === "Application");
  return {
    /** The KubeVela Application's health as our check computed it (persisted resource health). */
    velaHealth: kubevela?.health?.status as string | undefined,
    velaMessage: (kubevela?.health?.message ?? "") as string,
    sync: s.sync?.status as string | undefined,
    revision: s.sync?.revision as string | undefined,
    health: s.health?.status as string | undefined,
    message: (s.health?.message ?? "") as string,
    operation: s.operationState?.phase as string | undefined,
    operationStarted: s.operationState?.startedAt as string | undefined,
    syncedRevision: s.operationState?.syncResult?.revision as string | undefined,
    operationMessage: s.operationState?.message as string | undefined,
  };
}

const argoLine = (o: Obj | undefined) => (o ? JSON.stringify(argoState(o)) : "none");

/** The distinct states of a recorded Argo CD Application, one line each (for failure messages). */
function timeline(r: Recorder): string {
  const lines: string[] = [];
  let last = "";
  const t0 = r.events[0]?.at ?? 0;
  for (const e of r.events) {
    const s = argoState(e.obj);
    const line = `${s.sync}/${s.health} op=${s.operation ?? "-"}@${s.syncedRevision?.slice(0, 7) ?? "-"} rev=${s.revision?.slice(0, 7) ?? "-"} vela=${s.velaHealth ?? "-"}: ${s.velaMessage.slice(0, 90)}`;
    if (line !== last) lines.push(`+${((e.at - t0) / 1000).toFixed(1)}s ${line}`);
    last = line;
  }
  return lines.join("\n");
}

async function controlPlane(...args: string[]) {
  try {
    return await run(join(ROOT, "scripts/control-plane"), args, { env: process.env, maxBuffer: 16 << 20, timeout: 3_600_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`scripts/control-plane ${args.join(" ")} failed: ${e.message}\n${e.stderr ?? ""}`);
  }
}

describe("e2e: Argo CD syncs KubeVela Applications whose workflows use the addon's steps", function () {
  this.timeout(3_600_000);
  let executor: ExecutorProcess;
  let github: FakeGitHub;
  let smoke: Target;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let repo: Repo;
  let argoApp: Recorder;
  let velaApp: Recorder;
  let rendered: Recorder;
  const broken = new Set<string>();
  const argoName = () => ns.name;

  /** The workflow runs KubeVela started (each has its own start time and revision). */
  const workflowStarts = () => new Set(velaApp.events.map((e) => e.obj.status?.workflow).filter((w) => w?.startTime).map((w) => `${w.appRevision}@${w.startTime}`));
  /** Smoke-test requests per release. */
  const smokeCalls = (release: string) => smoke.requests.filter((r) => (JSON.parse(r.body || "{}") as { release?: string }).release === release).length;
  /** GitHub Actions runs per release (the run name carries it). */
  const runsOf = (release: string) => github.runs.filter((r) => r.displayTitle.startsWith(`E2E ${release} `)).length;

  async function refresh(kind: "normal" | "hard" = "normal") {
    // What a Git webhook, the CLI and the UI do (Argo CD's argo.RefreshApp): ask Argo CD to compare
    // with Git now, not at its next resync. The timestamp makes each request new: without it, a
    // request made while Argo CD is still consuming the previous one is the same annotation and is
    // removed with it, unseen.
    await kubectl(["-n", ARGOCD_NS, "annotate", "applications.argoproj.io", argoName(), "--overwrite", `argocd.argoproj.io/refresh=${kind}`, `argocd.argoproj.io/refresh-timestamp=${new Date().toISOString()}`]);
  }

  /**
   * States in which Argo CD had finished syncing a revision and then found the cluster differing
   * from it: drift caused by KubeVela's or the executor's writes (a new Git revision is not drift).
   */
  const drifted = () => {
    const settled = new Set<string>();
    const out: ReturnType<typeof argoState>[] = [];
    for (const e of argoApp.events) {
      const s = argoState(e.obj);
      if (!s.revision) continue;
      if (s.sync === "Synced" && s.syncedRevision === s.revision) settled.add(s.revision);
      else if (s.sync === "OutOfSync" && settled.has(s.revision)) out.push(s);
    }
    return out;
  };

  /**
   * The longest time Argo CD showed, for revision `sha`, a Progressing message naming a step that
   * KubeVela had already finished (seconds).
   */
  const staleness = (sha: string) => {
    let worst = 0;
    let since: number | undefined;
    let shown = "";
    const events = [...argoApp.events.map((e) => ({ ...e, argo: true })), ...velaApp.events.map((e) => ({ ...e, argo: false }))].sort((a, b) => a.at - b.at);
    let current = "";
    for (const e of events) {
      if (e.argo) {
        const s = argoState(e.obj);
        shown = s.revision === sha && s.velaHealth === "Progressing" ? (/^step (\S+) /.exec(s.velaMessage)?.[1] ?? "") : "";
      } else {
        current = (e.obj.status?.workflow?.steps ?? []).find((x: { phase: string }) => x.phase === "running")?.name ?? "";
      }
      const stale = shown !== "" && shown !== current;
      if (stale && since === undefined) since = e.at;
      if (!stale && since !== undefined) { worst = Math.max(worst, (e.at - since) / 1000); since = undefined; }
    }
    return worst;
  };

  let refreshesLost = 0;
  /**
   * Asks Argo CD to refresh and waits until it has compared with `sha` (the newest commit); asks
   * again, as a webhook's redelivery would, if a request was lost (counted, and printed by the soak).
   */
  async function refreshUntilSeen(sha: string) {
    for (let attempt = 1; ; attempt++) {
      await refresh();
      try {
        await argoApp.until(`Argo CD compared with ${sha.slice(0, 7)}`, (o) => argoState(o).revision === sha, 60_000, () => argoLine(argoApp.latest()));
        return;
      } catch (e) {
        if (attempt === 3) throw e;
        refreshesLost++;
      }
    }
  }

  /** Waits until Argo CD synced `sha` and computed `health` for it. */
  function argoReaches(sha: string, health: string, limitMs = 180_000) {
    return argoApp.until(`Argo CD ${health} at ${sha.slice(0, 7)}`, (o) => {
      const s = argoState(o);
      return s.revision === sha && s.syncedRevision === sha && s.health === health && s.sync === "Synced";
    }, limitMs, () => argoLine(argoApp.latest()));
  }

  /**
   * Argo CD lists as its own only what Git holds (the KubeVela Application, the wave-1
   * ConfigMap), nothing KubeVela rendered; the rendered objects carry no tracking metadata and
   * were never deleted.
   */
  function expectOnlyArgoResources() {
    const resources = (argoApp.latest()!.status.resources as { kind: string; name: string }[]).map((r) => `${r.kind}/${r.name}`).sort();
    expect(resources, "the Argo CD Application's resources").to.deep.equal(["Application/web", "ConfigMap/web-released"]);
    const config = rendered.latest("web-config");
    expect(config, "the ConfigMap KubeVela rendered").to.not.equal(undefined);
    expect(config!.metadata.annotations ?? {}).to.not.have.property("argocd.argoproj.io/tracking-id");
    expect(config!.metadata.annotations ?? {}).to.not.have.property("step-executor.oam.dev/wake");
    expect(config!.metadata.labels ?? {}).to.not.have.property("app.kubernetes.io/instance");
    expect(rendered.events.filter((e) => e.type === "DELETED").map((e) => e.obj.metadata.name), "objects deleted (pruned)").to.deep.equal([]);
  }

  /** Sessions KubeVela stored for each step (seen in the Application's status). */
  const storedSessions = () => {
    const ids = new Set<string>();
    for (const e of velaApp.events) for (const st of e.obj.status?.workflow?.steps ?? []) if (st.id) ids.add(`${st.name}/${st.id}`);
    return ids;
  };

  /** The StepRuns of the namespace: step and session of each. */
  async function stepRuns(): Promise<{ step: string; session: string; phase: string; attempts: number }[]> {
    const list = JSON.parse(await kubectl(["get", "stepruns.step-executor.oam.dev", "-n", ns.name, "-o", "json"])) as { items: { spec: { step: string; session: string }; status?: { phase?: string; attempts?: number } }[] };
    return list.items.map((i) => ({ step: i.spec.step, session: i.spec.session, phase: i.status?.phase ?? "", attempts: i.status?.attempts ?? 0 }));
  }

  before(async function () {
    await controlPlane("argocd", "up");
    // The settings docs/argocd.md tells users to merge, exactly as it says.
    await kubectl(["-n", ARGOCD_NS, "patch", "configmap", "argocd-cm", "--patch-file", join(ROOT, "argocd/argocd-cm.yaml")]);
    executor = await startExecutorProcess();
    github = await new FakeGitHub({
      tokens: [PAT],
      repos: [{
        owner: "acme", name: "web", branches: ["main"],
        workflows: [{ id: 301, file: "e2e.yaml", name: "E2E", inputs: { environment: {}, release: {}, distinct_id: {} }, runName: "E2E ${{ inputs.release }} [${{ inputs.distinct_id }}]", script: { queuedMs: 200, runningMs: 1500 } }],
      }],
    }).start();
    smoke = await startTarget((req, res) => {
      const release = (JSON.parse(req.body || "{}") as { release?: string }).release ?? "";
      if (broken.has(release)) reply(res, 400, { error: `release ${release} answers 404 on /healthz` });
      else reply(res, 200, { ok: true, release });
    });
    ns = await tempNamespace("argo");
    await kubeClients().core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "github-token" }, stringData: { token: PAT } } });
    await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
    repo = await Repo.create({ SMOKE_TEST_URL: `${smoke.url}/smoke`, GITHUB_API_URL: github.url });
    argoApp = await new Recorder(`/apis/argoproj.io/v1alpha1/namespaces/${ARGOCD_NS}/applications`, argoName()).start();
    velaApp = await new Recorder(`/apis/core.oam.dev/v1beta1/namespaces/${ns.name}/applications`, "web").start();
    rendered = await new Recorder(`/api/v1/namespaces/${ns.name}/configmaps`).start();
  });

  after(async function () {
    for (const r of [argoApp, velaApp, rendered]) r?.stop();
    if (ns) {
      // Argo CD's resources finalizer deletes the KubeVela Application; KubeVela then its objects.
      await kubectl(["-n", ARGOCD_NS, "delete", "applications.argoproj.io", argoName(), "--ignore-not-found", "--timeout=120s"])
        .catch((e) => console.log(`      the Argo CD Application was not deleted within 120 s: ${String(e).split("\n").at(-2)}`));
      await ns.delete();
    }
    repo?.remove();
    await smoke?.close();
    await github?.close();
    await executor?.stop();
    await controlPlane("argocd", "down").catch(() => undefined);
  });

  it("first sync: Progressing with the step's message while the workflow runs, Healthy when it ends, wave 1 only after it, every side effect once, Synced throughout", async () => {
    const app = parse(substitute(readFileSync(join(EXAMPLE, "application.yaml"), "utf8"), { GIT_REPO_URL: repo.url }, "examples/argocd/application.yaml")) as Obj & { spec: { destination: { namespace: string } } };
    app.metadata.name = argoName();
    app.spec.destination.namespace = ns.name;
    delete app.metadata.annotations; // the example's Notifications subscriptions: no Notifications here
    await kubectl(["apply", "-f", "-"], JSON.stringify(app));
    const sha = await repo.head();

    await argoReaches(sha, "Healthy");
    console.log(timeline(argoApp).replace(/^/gm, "        "));
    const vela = velaApp.latest()!;
    expect(vela.status.status).to.equal("running");
    expect(vela.status.workflow.steps.map((s: { name: string; phase: string }) => `${s.name}:${s.phase}`)).to.deep.equal(["deploy:succeeded", "read-release:succeeded", "smoke-test:succeeded", "e2e-tests:succeeded"]);

    // Argo CD showed the workflow's progress: Progressing with our steps' messages. How far the
    // message lagged behind KubeVela (Argo CD 3.x refreshes on health status changes, spec and
    // metadata writes, not on status writes) is printed for docs/argocd.md.
    const messages = argoApp.events.map((e) => argoState(e.obj)).filter((s) => s.velaHealth === "Progressing").map((s) => s.velaMessage);
    console.log(`      Argo CD health messages while Progressing: ${JSON.stringify([...new Set(messages)])}; stale for ${staleness(sha).toFixed(1)} s at most`);
    expect(messages.some((m) => /^step (read-release|smoke-test|e2e-tests) \((read-object-and-wait|http-request|github-actions)\) running/.test(m)), "a Progressing message naming one of the addon's steps").to.equal(true);

    // Sync wave 1 (the ConfigMap web-released) was created only after the workflow ended: its
    // creation comes after the status write that ended the workflow, in etcd's order.
    const ended = velaApp.events.find((e) => e.obj.status?.status === "running" && e.obj.status?.workflow?.finished === true)!;
    const released = rendered.events.find((e) => e.obj.metadata.name === "web-released" && e.type === "ADDED");
    expect(released, "the wave-1 ConfigMap").to.not.equal(undefined);
    expect(Number(released!.obj.metadata.resourceVersion)).to.be.greaterThan(Number(ended.obj.metadata.resourceVersion));

    // Each side effect once; Argo CD never left Synced for this revision; one sync; one workflow run.
    expect(smokeCalls("2026.12.1")).to.equal(1);
    expect(runsOf("2026.12.1")).to.equal(1);
    expect(drifted(), "OutOfSync after the sync of the revision succeeded").to.deep.equal([]);
    const syncs = new Set(argoApp.events.map((e) => argoState(e.obj).operationStarted).filter(Boolean));
    // The second one, if any, is Argo CD's self-heal acting on the comparison made before wave 1
    // was applied (seen on plain Applications too); it finds nothing to change.
    console.log(`      Argo CD: ${syncs.size} sync operation(s)`);
    expect(syncs.size, "Argo CD sync operations").to.be.within(1, 2);
    expect(workflowStarts().size, "KubeVela workflow runs").to.equal(1);
    expectOnlyArgoResources();
  });

  it("a failing step makes Argo CD Degraded with the step's one-line message; a fix committed to Git runs the workflow again, to Healthy", async () => {
    broken.add("2026.12.2");
    const bad = await repo.release("2026.12.2");
    await refresh();
    const degraded = await argoApp.until(`Argo CD shows the KubeVela Application Degraded at ${bad.slice(0, 7)}`, (o) => {
      const s = argoState(o);
      return s.revision === bad && s.velaHealth === "Degraded";
    }, 180_000, () => argoLine(argoApp.latest()));
    const state = argoState(degraded);
    console.log(`      Degraded: ${JSON.stringify(state.velaMessage)}; Argo CD Application ${state.health}, operation ${state.operation}: ${state.operationMessage}`);
    expect(state.velaMessage).to.match(/^step smoke-test \(http-request\) failed/);
    expect(state.velaMessage).to.include("400");
    expect(state.velaMessage).to.not.match(/[\r\n]/);
    expect(state.velaMessage.replace(/^step smoke-test \(http-request\) failed: /, "").length, "the step's own message, cut at 200 bytes").to.be.at.most(203);
    expect(state.health, "the Argo CD Application's health").to.equal("Degraded");
    expect(smokeCalls("2026.12.2")).to.equal(1);
    expect(runsOf("2026.12.2")).to.equal(0);

    const t0 = Date.now();
    const good = await repo.release("2026.12.3");
    await refresh();
    await argoReaches(good, "Healthy", 600_000);
    console.log(`      the fix: Healthy ${((Date.now() - t0) / 1000).toFixed(1)} s after the commit`);
    expect(smokeCalls("2026.12.3")).to.equal(1);
    expect(runsOf("2026.12.3")).to.equal(1);
    expect(drifted(), "OutOfSync after the sync of a revision succeeded").to.deep.equal([]);
    expectOnlyArgoResources();
  });

  it(`over ${REVISIONS} revisions synced by Argo CD, each side effect runs once per revision; Argo CD's writes and dropped sessions counted`, async () => {
    const before = { runs: await stepRuns(), syncs: new Set(argoApp.events.map((e) => argoState(e.obj).operationStarted).filter(Boolean)).size, starts: workflowStarts().size };
    const latencies: number[] = [];
    const phases = { sync: [] as number[], workflow: [] as number[], health: [] as number[] };
    const releases: string[] = [];
    for (let i = 0; i < REVISIONS; i++) {
      const release = `2026.12.${100 + i}`;
      releases.push(release);
      const t0 = Date.now();
      const generation = velaApp.latest()!.metadata.generation ?? 0;
      const sha = await repo.release(release);
      await refreshUntilSeen(sha);
      await argoReaches(sha, "Healthy");
      const t1 = Date.now();
      latencies.push((t1 - t0) / 1000);
      // where the time went: Argo CD's refresh and sync (commit → the new spec applied), KubeVela's
      // workflow (→ its status says finished), Argo CD's health (→ Healthy at this revision)
      const applied = velaApp.events.find((e) => e.at >= t0 && (e.obj.metadata.generation ?? 0) > generation);
      const ended = velaApp.events.find((e) => applied && e.at >= applied.at && e.obj.status?.observedGeneration === applied.obj.metadata.generation && e.obj.status?.workflow?.finished === true && e.obj.status?.status === "running");
      if (applied && ended) {
        phases.sync.push((applied.at - t0) / 1000);
        phases.workflow.push((ended.at - applied.at) / 1000);
        phases.health.push((t1 - ended.at) / 1000);
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    console.log(`      medians: commit → applied by Argo CD ${med(phases.sync).toFixed(1)} s, workflow ${med(phases.workflow).toFixed(1)} s, workflow end → Argo CD Healthy ${med(phases.health).toFixed(1)} s (${phases.sync.length} revisions)`);
    const runs = (await stepRuns()).filter((r) => !before.runs.some((b) => b.step === r.step && b.session === r.session));
    const stored = storedSessions();
    const dropped = runs.filter((r) => !stored.has(`${r.step}/${r.session}`));
    const syncs = new Set(argoApp.events.map((e) => argoState(e.obj).operationStarted).filter(Boolean)).size - before.syncs;
    const starts = workflowStarts().size - before.starts;
    const sorted = [...latencies].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const perStep = (step: string) => runs.filter((r) => r.step === step).length;
    console.log(`      ${REVISIONS} revisions: commit → Argo CD Healthy median ${median.toFixed(1)} s, max ${sorted.at(-1)!.toFixed(1)} s; Argo CD syncs ${syncs} (refresh requests Argo CD lost, asked again: ${refreshesLost}); KubeVela workflow runs ${starts}; StepRuns read-release ${perStep("read-release")}, smoke-test ${perStep("smoke-test")}, e2e-tests ${perStep("e2e-tests")}; sessions KubeVela dropped ${dropped.length} (${dropped.map((d) => `${d.step}:${d.attempts} attempts`).join(", ") || "none"})`);
    for (const r of releases) {
      expect(smokeCalls(r), `smoke tests of ${r}`).to.equal(1);
      expect(runsOf(r), `GitHub Actions runs of ${r}`).to.equal(1);
    }
    expect(starts, "KubeVela workflow runs (one per revision: no restart loop)").to.equal(REVISIONS);
    // At least one sync per revision is what argoReaches saw for each (synced and Healthy at its
    // sha); the count of distinct operation start times can come out one short (they have a
    // second's resolution, and a recorder that re-listed may have missed a short operation), so
    // it bounds loops only.
    expect(syncs, "Argo CD sync operations (no sync loop)").to.be.at.most(2 * REVISIONS);
    // A dropped session of a step with side effects never started (it waits for KubeVela to store
    // its session, docs/runs.md §3): it stays pending (no attempt) and did nothing.
    for (const d of dropped.filter((x) => x.step !== "read-release")) expect(d.attempts, `attempts of a dropped ${d.step} session`).to.equal(0);
    expect(drifted(), "OutOfSync after the sync of a revision succeeded").to.deep.equal([]);
    expectOnlyArgoResources();
  });

  it("with label tracking, nothing KubeVela rendered is pruned or shown as Argo CD's either", async () => {
    await kubectl(["-n", ARGOCD_NS, "patch", "configmap", "argocd-cm", "--type", "merge", "-p", JSON.stringify({ data: { "application.resourceTrackingMethod": "label" } })]);
    try {
      // Argo CD now tracks by its label, which the synced Application lacks until synced again.
      const sha = await repo.release("2026.12.900");
      await refresh("hard");
      await argoReaches(sha, "Healthy");
      expect(velaApp.latest()!.metadata.labels ?? {}).to.have.property("app.kubernetes.io/instance", argoName());
      const again = await repo.release("2026.12.901");
      await refresh();
      await argoReaches(again, "Healthy");
      expect(smokeCalls("2026.12.901")).to.equal(1);
      expect(runsOf("2026.12.901")).to.equal(1);
      expectOnlyArgoResources();
    } finally {
      await kubectl(["-n", ARGOCD_NS, "patch", "configmap", "argocd-cm", "--type", "merge", "-p", JSON.stringify({ data: { "application.resourceTrackingMethod": "annotation" } })]);
    }
  });
});
