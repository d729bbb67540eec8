// The run store on the real kube-apiserver: StepRuns (claim, compare-and-swap, pruning, owner
// references), executor Leases, and two executors (real RunEngines in this process) sharing the
// store: one side effect per run, graceful handover, takeover from a dead executor by its journal,
// fencing of an executor that lost its run, the sweep, and the wake-up patch.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { pino } from "pino";
import { clientWithToken, executorClient, kubeClients, tempNamespace } from "../fixtures/kube.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { loadConfig } from "../../server/config.js";
import { HOLDER_LABEL, KubeRunStore, PHASE_LABEL, ReplicaLeases, leaseName, recordName } from "../../server/runs/kube-store.js";
import { JSON_PATCH } from "../../server/kube/api-client.js";
import { MemoryRunStore, recordsToPrune, retentionDefaults, runKey } from "../../server/runs/store.js";
import { ApplicationSessionProbe, holdsSession } from "../../server/kubevela/session-probe.js";
import { ApplicationWatch } from "../../server/kubevela/application-watch.js";
import { ApplicationWaker, FIELD_MANAGER, FILTER_ANNOTATION, WAKE_ANNOTATION } from "../../server/kubevela/wake.js";
import { httpRequest } from "../../steps/http-request/step.js";
import { readObjectAndWait } from "../../steps/read-object-and-wait/step.js";
import type { RunIdentity } from "../../server/contract/run.js";
import { sh } from "../addon/fixture.js";
import {
  createApplication, installStepRunCrd, log, readApplication, readStepRun, recordingWaker, startKubeExecutor, until, type TestExecutor,
} from "./runs-fixture.js";

const post = (url: string, extra: Record<string, unknown> = {}) => ({
  url, method: "POST", body: { purge: ["/*"] }, timeout: "10s", retries: 3, backoff: "1s", maxBackoff: "1s", ...extra,
});
let sessions = 0;
const runOf = (namespace: string, application: string, step = "purge"): RunIdentity => ({ namespace, application, step, session: `s${++sessions}-${Date.now().toString(36)}` });

describe("run records: pure parts", () => {
  it("prunes finished records past the retention, then the oldest beyond the count, never young or running ones", () => {
    const now = 10_000_000;
    const o = { retentionMs: 1_000_000, maxFinished: 2, minRetentionMs: 100_000 };
    const r = (phase: "running" | "succeeded", finishedAgo: number) => ({ phase, updatedAt: now - finishedAgo, finishedAt: now - finishedAgo, id: `${phase}-${finishedAgo}` });
    const records = [r("running", 5_000_000), r("succeeded", 2_000_000), r("succeeded", 500_000), r("succeeded", 200_000), r("succeeded", 50_000), r("succeeded", 10_000)];
    expect(recordsToPrune(records, o, now).map((x) => x.id)).to.deep.equal(["succeeded-2000000", "succeeded-500000", "succeeded-200000"]);
    // Past the count but all too young: nothing goes.
    expect(recordsToPrune([r("succeeded", 10), r("succeeded", 20), r("succeeded", 30)], { ...o, maxFinished: 1 }, now)).to.deep.equal([]);
  });

  it("the memory store's writes are compare-and-swap too", async () => {
    const store = new MemoryRunStore();
    const run = { namespace: "n", application: "a", step: "s", session: "1" };
    const { record } = await store.create({ key: runKey(run), kind: "k", run, phase: "running", message: "m", outputs: {}, createdAt: 1, holder: "me", attempts: 1 });
    const next = await store.update(record, { message: "m2" });
    expect(next?.message).to.equal("m2");
    expect(await store.update(record, { message: "stale" })).to.equal(undefined);
    expect((await store.get(run))?.message).to.equal("m2");
    expect(await store.listRunning()).to.have.length(1);
  });

  it("configuration: the kube store and wake-up by default; memory and off on request; bad values named", () => {
    const base = { STEP_EXECUTOR_TOKEN: "0123456789abcdef" };
    const c = loadConfig([], base);
    expect(c).to.include({ runStore: "kube", wake: true, confirmSession: true, leaseDurationMs: 15_000, leaseNamespace: "vela-system", runMaxFinished: 5000 });
    expect(loadConfig(["--run-store", "memory", "--wake", "off", "--confirm-session", "off", "--lease-duration", "3s", "--identity", "exec-a"], base)).to.include({ runStore: "memory", wake: false, confirmSession: false, leaseDurationMs: 3_000, identity: "exec-a" });
    expect(loadConfig([], { ...base, STEP_EXECUTOR_WAKE: "false" })).to.include({ wake: false });
    expect(() => loadConfig(["--run-store", "etcd"], base)).to.throw(/--run-store: "etcd" is not kube or memory/);
    expect(() => loadConfig(["--wake", "maybe"], base)).to.throw(/--wake/);
    expect(() => loadConfig(["--identity", "Bad_Name"], base)).to.throw(/--identity/);
  });
});

describe("run records in the Kubernetes API (real kube-apiserver)", function () {
  this.timeout(60_000);
  const kc = executorClient();
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let target: Target | undefined;
  const executors: TestExecutor[] = [];
  const start = async (identity: string, options: Parameters<typeof startKubeExecutor>[2] = {}) => {
    const e = await startKubeExecutor(identity, ns.name, options);
    executors.push(e);
    return e;
  };
  /** Polls `e` (as KubeVela would) until the run leaves `running`; its last answer. */
  const pollToEnd = (what: string, e: TestExecutor, run: RunIdentity, parameter: unknown) =>
    until(what, async () => {
      const v = await e.engine.poll(httpRequest as never, run, parameter);
      return v.phase !== "running" && v;
    });
  /**
   * Creates Application `name` whose workflow is one `suspend` step, `purge`, and returns the
   * session id the real KubeVela controller stores for it (the suspend keeps it there).
   */
  const storedSession = async (name: string) => {
    const { objects } = kubeClients();
    await objects.create({
      apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace: ns.name },
      spec: { components: [], workflow: { steps: [{ name: "purge", type: "suspend" }] } },
    } as never);
    return until("KubeVela stored the step's session", async () => {
      const app = (await objects.read({ apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name, namespace: ns.name } })) as {
        status?: { workflow?: { steps?: { name: string; id: string }[] } };
      };
      return app.status?.workflow?.steps?.find((x) => x.name === "purge")?.id;
    }, 60_000);
  };
  /** The record an executor killed right after recording its intent to send attempt 1 leaves behind. */
  const leftByDeadExecutor = async (e: TestExecutor, run: RunIdentity) => {
    const { record } = await e.store.create({ key: runKey(run), kind: "http-request", run, phase: "running", message: "http-request: started", outputs: {}, createdAt: Date.now(), holder: "dead-executor", attempts: 1 });
    await e.store.update(record, { checkpoint: { attempt: 1 } });
  };

  before(async () => {
    await installStepRunCrd();
    ns = await tempNamespace("runs");
  });
  after(async () => {
    await ns?.delete();
  });
  afterEach(async () => {
    await Promise.all(executors.splice(0).map((e) => e.close()));
    await target?.close();
    target = undefined;
  });

  describe("StepRuns", () => {
    it("creating the record is the claim: of concurrent creates exactly one wins; the record is owned by its Application and shown by kubectl", async () => {
      const app = await createApplication(ns.name, "owner-app");
      const run = runOf(ns.name, "owner-app");
      const stores = [new KubeRunStore(kc, log), new KubeRunStore(kc, log)];
      const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => stores[i % 2]!.create({
        key: runKey(run), kind: "http-request", run, phase: "running", message: `claim ${i}`, outputs: {}, createdAt: Date.now(), holder: `h${i}`, attempts: 1,
      })));
      expect(claims.filter((c) => c.created)).to.have.length(1);
      const winner = claims.find((c) => c.created)!.record;
      for (const c of claims) expect(c.record.holder).to.equal(winner.holder);
      const obj = await readStepRun(kc, run);
      expect(obj.metadata.ownerReferences).to.deep.equal([{ apiVersion: "core.oam.dev/v1beta1", kind: "Application", name: "owner-app", uid: app.metadata.uid }]);
      expect(obj.metadata.labels).to.include({ [PHASE_LABEL]: "running", "step-executor.oam.dev/application": "owner-app" });
      expect(obj.spec).to.deep.equal({ application: "owner-app", step: "purge", session: run.session, kind: "http-request" });
      const done = await stores[0]!.update(winner, { phase: "succeeded", message: "POST https://cdn/purge answered 200 OK", outputs: { status: 200 }, finishedAt: Date.now() });
      expect(done?.phase).to.equal("succeeded");
      const { stdout } = await sh("kubectl", ["get", "stepruns", "-n", ns.name, "-o", "wide"]);
      expect(stdout).to.match(/APPLICATION\s+STEP\s+PHASE\s+ATTEMPTS\s+KIND\s+HOLDER\s+FINISHED\s+AGE\s+MESSAGE/);
      expect(stdout).to.match(new RegExp(`owner-app\\s+purge\\s+succeeded\\s+1\\s+http-request\\s+${winner.holder}\\s+\\S+\\s+\\S+\\s+POST https://cdn/purge answered 200 OK`));
    });

    it("every write is a compare-and-swap: one based on an old version is refused, and the phase label follows", async () => {
      const store = new KubeRunStore(kc, log);
      const run = runOf(ns.name, "no-such-app");
      const { record } = await store.create({ key: runKey(run), kind: "http-request", run, phase: "running", message: "m", outputs: {}, createdAt: Date.now(), holder: "a", attempts: 1 });
      expect((await readStepRun(kc, run)).metadata.ownerReferences).to.equal(undefined); // no such Application
      const v2 = await store.update(record, { checkpoint: { attempt: 1, nested: { x: 1 } } });
      expect(v2?.checkpoint).to.deep.equal({ attempt: 1, nested: { x: 1 } });
      expect(await store.update(record, { holder: "b" })).to.equal(undefined);
      const v3 = await store.update(v2!, { checkpoint: { attempt: 2 }, phase: "failed", finishedAt: Date.now() });
      expect(v3?.checkpoint).to.deep.equal({ attempt: 2 }); // replaced, not merged
      expect((await readStepRun(kc, run)).metadata.labels?.[PHASE_LABEL]).to.equal("failed");
      expect((await store.listRunning()).map((r) => r.key)).not.to.include(runKey(run));
    });

    it("the holder label follows the holder, so a sweep lists only the runs others hold, nobody holds, or that have no label yet", async () => {
      const store = new KubeRunStore(kc, log, { namespace: ns.name });
      const mk = async (holder: string) => {
        const run = runOf(ns.name, "holder-app");
        return (await store.create({ key: runKey(run), kind: "read-object-and-wait", run, phase: "running", message: "m", outputs: {}, createdAt: Date.now(), holder, attempts: 1 })).record;
      };
      const [mine, theirs, released] = [await mk("exec-me"), await mk("exec-other"), await mk("exec-me")];
      // A StepRun written before the label existed (an older executor): the sweep must still see it.
      const unlabelled = await mk("exec-me");
      await kc.request("PATCH", `/apis/step-executor.oam.dev/v1alpha1/namespaces/${ns.name}/stepruns/${recordName(unlabelled.run)}`, { body: [{ op: "remove", path: `/metadata/labels/${HOLDER_LABEL.replace("/", "~1")}` }], contentType: JSON_PATCH });
      expect((await readStepRun(kc, mine.run)).metadata.labels?.[HOLDER_LABEL]).to.equal("exec-me");
      expect((await store.update(released, { holder: "" }))?.holder).to.equal("");
      expect((await readStepRun(kc, released.run)).metadata.labels?.[HOLDER_LABEL]).to.equal("");
      const listed = (await store.listRunning({ exceptHolder: "exec-me" })).map((r) => r.key);
      expect(listed).to.have.members([theirs.key, released.key, unlabelled.key]);
      expect((await store.listRunning()).map((r) => r.key)).to.include.members([mine.key, theirs.key, released.key, unlabelled.key]);
    });

    it("lists page by page: a sweep's list of several pages holds every running run, as records", async () => {
      const store = new KubeRunStore(kc, log, { namespace: ns.name });
      const paged = new KubeRunStore(kc, log, { namespace: ns.name, listPageSize: 2 });
      const made: string[] = [];
      for (let i = 0; i < 5; i++) {
        const run = runOf(ns.name, "paged-app");
        made.push((await store.create({ key: runKey(run), kind: "read-object-and-wait", run, phase: "running", message: `m${i}`, outputs: {}, createdAt: Date.now(), holder: "x", attempts: 1 })).record.key);
      }
      const all = await store.listRunning();
      const pages = await paged.listRunning();
      expect(all.length).to.be.at.least(5);
      expect(pages.map((r) => r.key)).to.have.members(all.map((r) => r.key)).and.to.include.members(made);
      expect(pages.find((r) => r.key === made[4])).to.include({ kind: "read-object-and-wait", message: "m4", holder: "x", phase: "running" });
    });

    it("prunes finished records past the retention or the count (not young ones), never running ones", async () => {
      const store = new KubeRunStore(kc, log, { retentionMs: 60 * 60_000, maxFinished: 0, minRetentionMs: 20 * 60_000, namespace: ns.name });
      const now = Date.now();
      const make = async (finishedAgoMs: number | undefined) => {
        const run = runOf(ns.name, "prune-app");
        const { record } = await store.create({ key: runKey(run), kind: "http-request", run, phase: "running", message: "m", outputs: {}, createdAt: now - 3 * 60 * 60_000, holder: "x", attempts: 1 });
        if (finishedAgoMs !== undefined) await store.update(record, { phase: "succeeded", finishedAt: now - finishedAgoMs });
        return run;
      };
      const [expired, overCount, young, running] = [await make(2 * 60 * 60_000), await make(30 * 60_000), await make(60_000), await make(undefined)];
      expect(await store.prune()).to.be.at.least(2);
      const exists = async (run: RunIdentity) => (await store.get(run)) !== undefined;
      expect(await exists(expired!)).to.equal(false);
      expect(await exists(overCount!)).to.equal(false);
      expect(await exists(young!)).to.equal(true);
      expect(await exists(running!)).to.equal(true);
    });
  });

  describe("executor Leases", () => {
    it("alive while renewed; dead at once when deleted (shutdown), or after its duration without renewal (killed)", async () => {
      const a = new ReplicaLeases(kc, log, { identity: "lease-a", namespace: "default", durationMs: 1_500, requestTimeoutMs: 5_000 });
      const b = new ReplicaLeases(kc, log, { identity: "lease-b", namespace: "default", durationMs: 1_500, requestTimeoutMs: 5_000 });
      await a.start();
      await b.start();
      try {
        expect(await b.isAlive("lease-a")).to.equal(true);
        await new Promise((r) => setTimeout(r, 2_000)); // longer than the duration: a keeps renewing
        expect(await b.isAlive("lease-a")).to.equal(true);
        await a.stop();
        await new Promise((r) => setTimeout(r, 400));
        expect(await b.isAlive("lease-a")).to.equal(false);
        // A killed executor: its Lease stays but is not renewed any more. It was started with a
        // longer --lease-duration than b (6 s against 1.5 s, as mid-rollout): its own duration
        // counts, so it is still alive after b's would have run out, and dead after its own.
        const renewed = Date.now();
        await sh("kubectl", ["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: leaseName("ghost"), namespace: "default" }, spec: { holderIdentity: "ghost", renewTime: new Date(renewed).toISOString().replace(/Z$/, "000Z"), leaseDurationSeconds: 6 } }) });
        expect(await b.isAlive("ghost")).to.equal(true);
        await new Promise((r) => setTimeout(r, 2_500));
        if (Date.now() - renewed < 6_000) expect(await b.isAlive("ghost"), "alive for the holder's 6 s, not b's 1.5 s").to.equal(true);
        await until("the ghost's Lease to run out", async () => !(await b.isAlive("ghost")), 15_000);
        expect(Date.now() - renewed).to.be.at.least(6_000);
        expect(await b.isAlive("never-existed")).to.equal(false);
      } finally {
        await b.stop();
        await sh("kubectl", ["delete", "lease", "-n", "default", leaseName("ghost"), "--ignore-not-found"]);
      }
    });
  });

  describe("executor Lease re-created after a failed attempt", () => {
    it("keeps trying to re-create its deleted Lease when the first attempt fails (here: create forbidden for a while), and is not ready meanwhile", async () => {
      const { core, kc: admin } = kubeClients();
      const rbacApi = admin.makeApiClient(RbacAuthorizationV1Api);
      const leaseNs = await tempNamespace("leases");
      try {
        await core.createNamespacedServiceAccount({ namespace: leaseNs.name, body: { metadata: { name: "replica" } } });
        const rules = (verbs: string[]) => [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs }];
        await rbacApi.createNamespacedRole({ namespace: leaseNs.name, body: { metadata: { name: "replica" }, rules: rules(["get", "list", "create", "patch", "delete"]) } });
        await rbacApi.createNamespacedRoleBinding({ namespace: leaseNs.name, body: {
          metadata: { name: "replica" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "replica" },
          subjects: [{ kind: "ServiceAccount", name: "replica", namespace: leaseNs.name }],
        } });
        const token = (await core.createNamespacedServiceAccountToken({ namespace: leaseNs.name, name: "replica", body: { spec: { audiences: [], expirationSeconds: 600 } } })).status!.token;
        const kcReplica = clientWithToken(token);
        const lines: string[] = [];
        const captured = pino({ level: "warn" }, { write: (l: string) => void lines.push(l) });
        const a = new ReplicaLeases(kcReplica, captured, { identity: "lease-retry", namespace: leaseNs.name, durationMs: 1_500, requestTimeoutMs: 5_000 });
        await a.start();
        expect(a.healthy()).to.equal(true);
        const leaseExists = () => sh("kubectl", ["get", "lease", "-n", leaseNs.name, leaseName("lease-retry")]).then(() => true, () => false);
        try {
          await rbacApi.replaceNamespacedRole({ name: "replica", namespace: leaseNs.name, body: { metadata: { name: "replica" }, rules: rules(["get", "list", "patch", "delete"]) } });
          await sh("kubectl", ["delete", "lease", "-n", leaseNs.name, leaseName("lease-retry")]);
          await until("a failed attempt to create the Lease again", async () => lines.some((l) => l.includes("cannot create the executor's Lease")), 15_000);
          await until("the replica to say it is not ready (its Lease ran out)", async () => !a.healthy(), 15_000);
          await rbacApi.replaceNamespacedRole({ name: "replica", namespace: leaseNs.name, body: { metadata: { name: "replica" }, rules: rules(["get", "list", "create", "patch", "delete"]) } });
          await until("the Lease to be created again", leaseExists, 15_000);
          await until("the replica to be ready again", async () => a.healthy(), 15_000);
        } finally {
          await a.stop();
        }
      } finally {
        await leaseNs.delete();
      }
    });
  });

  describe("two executors sharing the store", () => {
    it("exactly one performs the side effect when both are polled at once, and both answer its result", async () => {
      target = await startTarget((_r, res) => reply(res, 200, { ok: true }));
      const [a, b] = [await start("two-a"), await start("two-b")];
      const runs = Array.from({ length: 6 }, () => runOf(ns.name, "both-app"));
      await Promise.all(runs.flatMap((run) => [a, b, a, b].map((e) => e.engine.poll(httpRequest as never, run, post(target!.url)))));
      for (const run of runs) {
        const views = await until("both answer succeeded", async () => {
          const v = await Promise.all([a, b].map((e) => e.engine.poll(httpRequest as never, run, post(target!.url))));
          return v.every((x) => x.phase === "succeeded") && v;
        });
        expect(views[0]).to.deep.equal(views[1]);
      }
      expect(target.requests).to.have.length(runs.length);
      expect(new Set(target.requests.map((r) => r.headers["idempotency-key"])).size).to.equal(runs.length);
    });

    it("graceful handover: the stopping executor releases a waiting run at once and the other resumes it without repeating the attempt that was made", async () => {
      target = await startTarget((_r, res, i) => (i === 0 ? reply(res, 503, "busy") : reply(res, 200, { ok: true })));
      const wakerA = recordingWaker();
      const [a, b] = [await start("hand-a", { waker: wakerA }), await start("hand-b")];
      const run = runOf(ns.name, "handover-app");
      const parameter = post(target.url, { backoff: "30s", maxBackoff: "30s" });
      await a.engine.poll(httpRequest as never, run, parameter);
      await until("attempt 1 answered 503", async () => target!.requests.length === 1 && (await a.engine.poll(httpRequest as never, run, parameter)).message.includes("retrying in"));
      const t0 = Date.now();
      await a.engine.drain(10_000);
      expect(Date.now() - t0, "drain does not wait for the 30 s backoff").to.be.below(3_000);
      expect(wakerA.woken).to.deep.equal([`${ns.name}/handover-app`]);
      const released = await a.store.get(run);
      expect(released).to.include({ holder: "", phase: "running" });
      expect(released!.checkpoint).to.deep.equal({ attempt: 1 });
      const end = await pollToEnd("b finishes the run", b, run, parameter);
      expect(end.phase).to.equal("succeeded");
      expect(target.requests).to.have.length(2); // attempt 1 (503) by a, attempt 2 by b: not three
      expect(target.requests[1]!.headers["idempotency-key"]).to.equal(target.requests[0]!.headers["idempotency-key"]);
      // The answer comes from b's memory as soon as the step ends; its record is written right after.
      await until("b's record of the end is stored", async () => (await b.store.get(run))?.phase === "succeeded");
      expect(await b.store.get(run)).to.include({ holder: "hand-b", attempts: 2, phase: "succeeded" });
    });

    it("takes over a run whose executor died with an attempt in flight: counts that attempt, sends the next, says so", async () => {
      target = await startTarget((_r, res) => reply(res, 200, { ok: true }));
      const b = await start("died-b");
      const run = runOf(ns.name, "died-app");
      await leftByDeadExecutor(b, run);
      const v = await pollToEnd("taken over", b, run, post(target!.url));
      expect(v.phase).to.equal("succeeded");
      expect(target.requests).to.have.length(1);
      const rec = await b.store.get(run);
      expect(rec).to.include({ holder: "died-b", attempts: 2 });
      expect(rec!.checkpoint).to.deep.equal({ attempt: 2 });
    });

    it("with no retries left, a takeover does not send again: it fails saying the request may have been delivered", async () => {
      target = await startTarget((_r, res) => reply(res, 200, { ok: true }));
      const b = await start("noretry-b");
      const run = runOf(ns.name, "noretry-app");
      await leftByDeadExecutor(b, run);
      const v = await pollToEnd("ended", b, run, post(target!.url, { retries: 0 }));
      expect(v).to.deep.equal({
        phase: "failed", outputs: {},
        message: `POST ${target.url}/: attempt 1 may have reached the server, but the executor sending it stopped before recording the answer; not sending it again (1 attempt allowed by retries) — check the server`,
      });
      expect(target.requests).to.have.length(0);
    });

    it("an executor that lost its run (its Lease lapsed while it worked) records nothing more and sends nothing more", async () => {
      target = await startTarget((_r, res, i) => (i === 0 ? reply(res, 503, "busy") : reply(res, 200, { ok: true })));
      const [a, b] = [await start("lost-a"), await start("lost-b")];
      const run = runOf(ns.name, "lost-app");
      const parameter = post(target.url, { backoff: "2s", maxBackoff: "2s" });
      await a.engine.poll(httpRequest as never, run, parameter);
      await until("attempt 1 answered", async () => target!.requests.length === 1 && (await a.store.get(run))?.message.includes("retrying in"));
      await a.leases.stop(); // a is cut off (as in a network partition) but keeps working
      const v = await pollToEnd("b finishes", b, run, parameter);
      expect(v.phase).to.equal("succeeded");
      // a's backoff ends: its next intent write is refused, and it drops the run without sending
      await until("a to give the run up", async () => a.engine.activeRuns === 0, 15_000);
      expect(target.requests).to.have.length(2);
      expect(await a.store.get(run)).to.include({ holder: "lost-b", phase: "succeeded", attempts: 2 });
    });

    it("confirmed sessions: a side effect starts on the second poll of its session; a session KubeVela dropped (polled once) does nothing and is forgotten", async () => {
      target = await startTarget((_r, res) => reply(res, 200, { ok: true }));
      const [a, b] = [await start("confirm-a", { confirmSessions: true, pendingTtlMs: 300 }), await start("confirm-b", { confirmSessions: true })];
      const lost = runOf(ns.name, "confirm-app");
      const kept = { ...lost, session: `${lost.session}-2` };
      // The reconcile that first ran the step did not store its status: KubeVela polls again with a new session.
      expect(await a.engine.poll(httpRequest as never, lost, post(target.url))).to.deep.equal({ phase: "running", message: "http-request: starting", outputs: {} });
      expect(await b.engine.poll(httpRequest as never, kept, post(target.url))).to.deep.include({ phase: "running", message: "http-request: starting" });
      await new Promise((r) => setTimeout(r, 300));
      expect(target.requests, "nothing is sent before the session is confirmed").to.have.length(0);
      const v = await pollToEnd("the confirmed session runs", a, kept, post(target!.url));
      expect(v.phase).to.equal("succeeded");
      expect(target.requests).to.have.length(1);
      expect(await a.store.get(kept)).to.include({ holder: "confirm-a", attempts: 1, acknowledged: true });
      expect(await a.store.get(lost)).to.include({ holder: "", attempts: 0 });
      await a.engine.sweep();
      expect(await a.store.get(lost), "the dropped session's record is forgotten").to.equal(undefined);
      // A pure step (a wait) starts on its first poll.
      const wait = runOf(ns.name, "confirm-app", "wait");
      await b.engine.poll(readObjectAndWait as never, wait, { apiVersion: "v1", kind: "ConfigMap", name: "absent", timeout: "1m" });
      expect(await b.store.get(wait)).to.include({ holder: "confirm-b", attempts: 1 });
    });

    it("session probe: a side effect starts as soon as KubeVela's status holds the session, without a second poll; never for a session KubeVela did not store", async () => {
      const stored = await storedSession("probe-app");
      target = await startTarget((_r, res) => reply(res, 200, { ok: true }));
      const waker = recordingWaker();
      const probe = new ApplicationSessionProbe(kc);
      const a = await start("probe-a", { confirmSessions: true, sessionProbe: probe, sessionProbeDelaysMs: [50, 50, 100, 200], waker });
      const dropped: RunIdentity = { namespace: ns.name, application: "probe-app", step: "purge", session: "not-stored-by-kubevela" };
      const kept: RunIdentity = { ...dropped, session: stored };
      expect(await a.engine.poll(httpRequest as never, dropped, post(target.url))).to.deep.include({ phase: "running", message: "http-request: starting" });
      expect(await a.engine.poll(httpRequest as never, kept, post(target.url))).to.deep.include({ phase: "running", message: "http-request: starting" });
      await until("the stored session's request is sent", async () => target!.requests.length > 0);
      const rec = await until("the run ends", async () => {
        const r = await a.store.get(kept);
        return r?.phase === "succeeded" && r;
      });
      expect(rec).to.include({ holder: "probe-a", attempts: 1, acknowledged: true });
      expect(waker.woken, "its end wakes the Application, so KubeVela's next poll comes now").to.include(`${ns.name}/probe-app`);
      await new Promise((r) => setTimeout(r, 600)); // every probe of the dropped session has looked
      expect(target.requests, "one request: the session KubeVela did not store sends nothing").to.have.length(1);
      expect(await a.store.get(dropped)).to.include({ holder: "", attempts: 0 });
      expect(holdsSession([{ name: "group", id: "g", subSteps: [{ name: "purge", id: "x" }] }], "purge", "x"), "step groups' sub-steps count").to.equal(true);
    });

    it("session probe with the Application watch: the change that stores the session starts the run at once, without reading; a change without it starts nothing", async () => {
      const stored = await storedSession("heard-app");
      target = await startTarget((_r, res) => reply(res, 200, { ok: true }));
      const watch = new ApplicationWatch(kc, log, 60_000);
      const heard: string[] = [];
      let listed = false;
      watch.on((e) => {
        if (e.type === "listed") listed = true;
        if (e.type === "modified" && e.application.metadata?.name === "heard-app") heard.push("modified");
      });
      watch.start();
      try {
        await until("the watch listed the Applications", async () => listed);
        const probe = new ApplicationSessionProbe(kc, watch);
        let reads = 0;
        const stored0 = probe.stored.bind(probe);
        probe.stored = async (r) => { reads++; return stored0(r); };
        // The first read would come after 10 minutes: only the watch can start the run in this test.
        const a = await start("heard-a", { confirmSessions: true, sessionProbe: probe, sessionProbeDelaysMs: [600_000] });
        const dropped: RunIdentity = { namespace: ns.name, application: "heard-app", step: "purge", session: "not-stored-by-kubevela" };
        const kept: RunIdentity = { ...dropped, session: stored };
        expect(await a.engine.poll(httpRequest as never, dropped, post(target.url))).to.deep.include({ phase: "running", message: "http-request: starting" });
        expect(await a.engine.poll(httpRequest as never, kept, post(target.url))).to.deep.include({ phase: "running", message: "http-request: starting" });
        // Any write of the Application brings its status (with the stored session) through the watch
        // (KubeVela's own status writes may come first; either starts the run).
        await sh("kubectl", ["annotate", "--overwrite", "-n", ns.name, "applications.core.oam.dev/heard-app", "probe-test=1"]);
        const rec = await until("the run ends", async () => {
          const r = await a.store.get(kept);
          return r?.phase === "succeeded" && r;
        });
        expect(rec).to.include({ holder: "heard-a", attempts: 1, acknowledged: true });
        expect(heard.length, "the annotation came through the watch").to.be.greaterThan(0);
        expect(reads, "no read of the Application: the watch's event carried the session").to.equal(0);
        expect(target.requests, "one request: the dropped session heard nothing that stores it").to.have.length(1);
        expect(await a.store.get(dropped)).to.include({ holder: "", attempts: 0 });
      } finally {
        await watch.stop();
      }
    });

    it("the StepRun never holds a secret value: messages, outputs and the journal are redacted", async () => {
      const secret = "s3cr3t-token-value-0042";
      await kubeClients().core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "cdn" }, stringData: { auth: secret } } });
      target = await startTarget((r, res) => reply(res, 200, { echo: r.headers.authorization }));
      const b = await start("secret-b");
      const run = runOf(ns.name, "secret-app");
      const parameter = post(target.url, { retries: 0, secretHeaders: { Authorization: { name: "cdn", key: "auth" } }, outputs: { echoed: "response.body.echo" } });
      const v = await pollToEnd("ended", b, run, parameter);
      expect(target.requests[0]!.headers.authorization).to.equal(secret);
      expect(v.outputs).to.include({ echoed: "[redacted]" });
      // The poll answers from memory as soon as the step ends; the StepRun's final write follows.
      const stored = await until("the StepRun records the end", async () => {
        const o = await readStepRun(kc, run) as { status?: { phase?: string } };
        return o.status?.phase === "succeeded" && o;
      });
      const obj = JSON.stringify(stored);
      expect(obj).to.contain("[redacted]");
      expect(obj).not.to.contain(secret);
    });

    it("the sweep releases a run nobody works on and wakes its Application (so its next poll resumes it), and deletes it once abandoned", async () => {
      const waker = recordingWaker();
      const b = await start("sweep-b", { waker, abandonAfterMs: 600 });
      const run = runOf(ns.name, "orphan-app", "wait");
      const { record } = await b.store.create({ key: runKey(run), kind: "read-object-and-wait", run, phase: "running", message: "waiting", outputs: {}, createdAt: Date.now(), holder: "dead-executor", attempts: 1 });
      await b.engine.sweep();
      expect(waker.woken, "not before KubeVela stored the session").to.deep.equal([]);
      await b.store.update(record, { acknowledged: true });
      await b.engine.sweep();
      expect(waker.woken).to.include(`${ns.name}/orphan-app`);
      // Released before the wake: the step definitions answer a held run from its StepRun without
      // calling, so only an empty holder makes the next evaluation call an executor (docs/runs.md §5).
      const released = await b.store.get(run);
      expect(released).to.include({ holder: "", phase: "running", attempts: 1 });
      expect(released!.message).to.equal("waiting (handed over: executor dead-executor stopped)");
      await new Promise((r) => setTimeout(r, 700));
      await b.engine.sweep();
      expect(await b.store.get(run)).to.equal(undefined);
    });

    it("resumes a waiting step after a takeover and finishes it when the condition holds", async () => {
      const [a, b] = [await start("wait-a"), await start("wait-b")];
      const run = runOf(ns.name, "wait-app", "wait");
      const parameter = { apiVersion: "v1", kind: "ConfigMap", name: "flag", condition: "object.data.on == 'yes'", timeout: "1m" };
      expect((await a.engine.poll(readObjectAndWait as never, run, parameter)).phase).to.equal("running");
      await a.engine.drain(1_000);
      await a.leases.stop();
      expect((await b.engine.poll(readObjectAndWait as never, run, parameter)).phase).to.equal("running");
      await kubeClients().core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: "flag" }, data: { on: "yes" } } });
      const v = await until("succeeded", async () => {
        const x = await b.engine.poll(readObjectAndWait as never, run, parameter);
        return x.phase === "succeeded" && x;
      });
      expect(v.message).to.equal(`ConfigMap ${ns.name}/flag: condition \`object.data.on == 'yes'\` is true`);
    });
  });

  describe("wake-up", () => {
    it("patches the wake annotation (spec and generation unchanged) and keeps it off rendered resources with the filter annotation", async () => {
      await createApplication(ns.name, "wake-a");
      const before = await readApplication(ns.name, "wake-a");
      const waker = new ApplicationWaker(kc, log);
      waker.wake(ns.name, "wake-a", "test");
      await waker.idle();
      const after = await readApplication(ns.name, "wake-a");
      expect(after.metadata.annotations?.[WAKE_ANNOTATION]).to.match(/^\d{4}-\d\d-\d\dT/);
      expect(after.metadata.annotations?.[FILTER_ANNOTATION]).to.equal(WAKE_ANNOTATION);
      expect(after.metadata.generation).to.equal(before.metadata.generation);
      expect(waker.sent).to.equal(1);
    });

    it("leaves an Application's own filter annotation alone, and ignores an Application that is gone", async () => {
      await createApplication(ns.name, "wake-b", { [FILTER_ANNOTATION]: "team.example.com/owner" });
      const waker = new ApplicationWaker(kc, log, 200);
      waker.wake(ns.name, "wake-b", "test");
      waker.wake(ns.name, "wake-b", "test"); // coalesced with the one under way
      waker.wake(ns.name, "no-such-app", "test");
      await waker.idle();
      const after = await readApplication(ns.name, "wake-b");
      expect(after.metadata.annotations?.[FILTER_ANNOTATION]).to.equal("team.example.com/owner");
      expect(after.metadata.annotations?.[WAKE_ANNOTATION]).to.be.a("string");
      expect(waker.sent).to.be.within(1, 2);
    });

    it("checks the filter again when it was removed and when the Application was re-created; patches as field manager step-executor", async () => {
      const { objects } = kubeClients();
      const ref = { apiVersion: "core.oam.dev/v1beta1", kind: "Application", metadata: { name: "wake-c", namespace: ns.name } };
      const filterOf = async () => (await readApplication(ns.name, "wake-c")).metadata.annotations?.[FILTER_ANNOTATION];
      const wake = async () => { waker.wake(ns.name, "wake-c", "test"); await waker.idle(); };
      const waker = new ApplicationWaker(kc, log, 0);
      await createApplication(ns.name, "wake-c");
      await wake();
      expect(await filterOf()).to.equal(WAKE_ANNOTATION);
      const managers = (await readApplication(ns.name, "wake-c")).metadata.managedFields?.map((m) => m.manager);
      expect(managers).to.include(FIELD_MANAGER);
      // removed (e.g. by a Git sync): the next wake sees it gone, the one after adds it back
      await objects.patch({ ...ref, metadata: { ...ref.metadata, annotations: { [FILTER_ANNOTATION]: null } } } as never, undefined, undefined, undefined, undefined, "application/merge-patch+json" as never);
      expect(await filterOf()).to.equal(undefined);
      await wake();
      await wake();
      expect(await filterOf()).to.equal(WAKE_ANNOTATION);
      // deleted and re-created without the filter: the remembered uid no longer matches
      await objects.delete(ref as never);
      await until("the Application to be gone", async () => (await readApplication(ns.name, "wake-c").then(() => false, () => true)));
      await createApplication(ns.name, "wake-c");
      await wake();
      expect(await filterOf()).to.equal(WAKE_ANNOTATION);
    });
  });

  it("default retention bounds are what docs/runs.md says", () => {
    // The sentence of docs/runs.md §5 that states them, read from the doc.
    const doc = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../../docs/runs.md"), "utf8");
    const m = /finished StepRuns are deleted `--run-retention` \((\d+) h\) after they\s+finished, and beyond `--run-max-finished` \((\d+), cluster-wide\) the oldest finished first, but never\s+one that finished less than (\d+) min ago/.exec(doc);
    expect(m, "docs/runs.md states the retention bounds").to.not.equal(null);
    expect(retentionDefaults).to.deep.equal({ retentionMs: Number(m![1]) * 3_600_000, maxFinished: Number(m![2]), minRetentionMs: Number(m![3]) * 60_000 });
  });
});
