// Run records in the Kubernetes API, for any number of executor replicas (docs/runs.md):
// - one StepRun (CRD stepruns.step-executor.oam.dev) per run identity, in the Application's
//   namespace, owner-referenced to the Application (garbage-collected with it); creating it is the
//   claim, every later write a compare-and-swap on its resourceVersion;
// - one Lease per executor process (ReplicaLeases), renewed while it lives: a run whose holder's
//   Lease is gone or not renewed within its duration is taken over by the next poll.
import { createHash } from "node:crypto";
import { JSON_PATCH, MERGE_PATCH, resourcePath, type KubeClient } from "../kube/api-client.js";
import type { Logger } from "pino";
import { ApplicationLookup } from "../kubevela/applications.js";
import { apiError, describeError } from "../shared/errors.js";
import { timed } from "../shared/retry.js";
import {
  recordsToPrune, retentionDefaults, runKey, StoreRejectedError, StoreUnavailableError,
  type Liveness, type NewRun, type RetentionOptions, type RunRecord, type RunStore, type RunUpdate,
} from "./store.js";
import type { Phase, RunIdentity } from "../contract/run.js";

export const GROUP = "step-executor.oam.dev";
export const VERSION = "v1alpha1";
export const PLURAL = "stepruns";
export const KIND = "StepRun";
export const PHASE_LABEL = `${GROUP}/phase`;
export const APPLICATION_LABEL = `${GROUP}/application`;
export const REPLICA_LABEL = `${GROUP}/replica`;
/**
 * The executor working on the run (status.holder), as a label, so that the sweep lists only runs
 * held by others or nobody (`holder!=<self>`, which also matches StepRuns written before the label).
 */
export const HOLDER_LABEL = `${GROUP}/holder`;
const MANAGED_BY = { "app.kubernetes.io/managed-by": "step-executor" };

/** The StepRun as stored. Status fields are what `kubectl get stepruns` shows. */
export interface StepRunObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    creationTimestamp?: string;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
  };
  spec: { application: string; step: string; session: string; kind: string };
  status?: {
    phase?: Phase;
    message?: string;
    outputs?: Record<string, unknown>;
    attempts?: number;
    holder?: string;
    checkpoint?: Record<string, unknown>;
    acknowledged?: boolean;
    startedAt?: string;
    updatedAt?: string;
    finishedAt?: string;
  };
}

/** The StepRun's name: readable parts of the application and step, and a hash of the whole identity. */
export function recordName(run: RunIdentity): string {
  const hash = createHash("sha256").update(runKey(run)).digest("hex").slice(0, 12);
  return [part(run.application, 100), part(run.step, 60), hash].filter(Boolean).join(".");
}

function part(s: string, max: number): string {
  return s.toLowerCase().replace(/[^a-z0-9-]+/g, "-").slice(0, max).replace(/^-+|-+$/g, "");
}

/** A label value naming an application or an executor: the name itself when it fits a label (or is empty), else a hash. */
export function labelValue(name: string): string {
  return /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/.test(name)
    ? name
    : "h-" + createHash("sha256").update(name).digest("hex").slice(0, 40);
}

const iso = (ms: number) => new Date(ms).toISOString();
const ms = (s: string | undefined) => (s ? Date.parse(s) : NaN);

export interface KubeRunStoreOptions extends RetentionOptions {
  /** Timeout of one API call. */
  requestTimeoutMs: number;
  /** Where the Applications' uids for owner references come from (shared with Events and reads in the executor). */
  applications?: ApplicationLookup;
  /** Limits the sweep and pruning to one namespace (tests); default: all. */
  namespace?: string;
  /** StepRuns per page of a list (the sweep's, pruning's); default 500. */
  listPageSize: number;
}

export const kubeRunStoreDefaults: KubeRunStoreOptions = {
  ...retentionDefaults,
  requestTimeoutMs: 10_000,
  listPageSize: 500,
};

export class KubeRunStore implements RunStore {
  private readonly api: KubeClient;
  private readonly options: KubeRunStoreOptions;
  private readonly applications: ApplicationLookup;

  constructor(kc: KubeClient, private readonly log: Logger, options: Partial<KubeRunStoreOptions> = {}, private readonly now: () => number = Date.now) {
    this.api = kc;
    this.options = { ...kubeRunStoreDefaults, ...options };
    this.applications = options.applications ?? new ApplicationLookup(kc);
  }

  async get(run: RunIdentity): Promise<RunRecord | undefined> {
    try {
      const obj = await this.call(this.api.request("GET", resourcePath({ group: GROUP, version: VERSION, namespace: run.namespace, plural: PLURAL, name: recordName(run) })), "reading a StepRun");
      return fromObject(obj as StepRunObject);
    } catch (err) {
      if (apiError(err).objectNotFound) return undefined;
      throw this.mapError(err, "reading");
    }
  }

  async create(init: NewRun): Promise<{ record: RunRecord; created: boolean }> {
    const uid = await this.ownerUid(init.run);
    const obj: StepRunObject = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: KIND,
      metadata: {
        name: recordName(init.run),
        namespace: init.run.namespace,
        labels: { ...MANAGED_BY, [APPLICATION_LABEL]: labelValue(init.run.application), [PHASE_LABEL]: init.phase, [HOLDER_LABEL]: labelValue(init.holder) },
        ...(uid ? { ownerReferences: [{ apiVersion: "core.oam.dev/v1beta1", kind: "Application", name: init.run.application, uid }] } : {}),
      },
      spec: { application: init.run.application, step: init.run.step, session: init.run.session, kind: init.kind },
      status: {
        phase: init.phase, message: init.message, outputs: init.outputs, attempts: init.attempts, holder: init.holder,
        startedAt: iso(init.createdAt), updatedAt: iso(init.createdAt),
      },
    };
    try {
      const created = await this.call(this.api.request("POST", resourcePath({ group: GROUP, version: VERSION, namespace: init.run.namespace, plural: PLURAL }), { body: obj }), "creating a StepRun");
      return { record: fromObject(created as StepRunObject), created: true };
    } catch (err) {
      if (apiError(err).code !== 409) throw this.mapError(err, "creating");
    }
    const existing = await this.get(init.run);
    if (!existing) throw new StoreUnavailableError("the StepRun was deleted while being claimed; the step will be polled again");
    return { record: existing, created: false };
  }

  async update(record: RunRecord, update: RunUpdate): Promise<RunRecord | undefined> {
    // A JSON patch whose resourceVersion makes it a compare-and-swap: 409 when the record changed.
    const ops: { op: string; path: string; value: unknown }[] = [
      { op: "replace", path: "/metadata/resourceVersion", value: record.version },
      { op: "add", path: "/status/updatedAt", value: iso(this.now()) },
    ];
    for (const [k, v] of Object.entries(update)) {
      if (v === undefined) continue;
      ops.push({ op: "add", path: `/status/${k}`, value: k === "finishedAt" ? iso(v as number) : v });
    }
    if (update.phase) ops.push({ op: "add", path: `/metadata/labels/${PHASE_LABEL.replace("/", "~1")}`, value: update.phase });
    if (update.holder !== undefined) ops.push({ op: "add", path: `/metadata/labels/${HOLDER_LABEL.replace("/", "~1")}`, value: labelValue(update.holder) });
    try {
      const obj = await this.call(this.api.request("PATCH", resourcePath({ group: GROUP, version: VERSION, namespace: record.run.namespace, plural: PLURAL, name: recordName(record.run) }), { body: ops, contentType: JSON_PATCH }), "updating a StepRun");
      return fromObject(obj as StepRunObject);
    } catch (err) {
      const e = apiError(err);
      if (e.code === 409 || e.objectNotFound) return undefined;
      if (e.code === 413 || e.code === 422 || (e.code === 500 && /too large/i.test(e.message))) {
        throw new StoreRejectedError(`the API server refused the StepRun (${e.code} ${e.reason}: ${e.message.slice(0, 300)})`);
      }
      throw this.mapError(err, "updating");
    }
  }

  async listRunning(options: { exceptHolder?: string } = {}): Promise<RunRecord[]> {
    const except = options.exceptHolder ? `,${HOLDER_LABEL}!=${labelValue(options.exceptHolder)}` : "";
    return this.list(`${PHASE_LABEL}=running${except}`);
  }

  async remove(record: RunRecord): Promise<void> {
    await this.delete(record.run.namespace, recordName(record.run), record.version);
  }

  async prune(beforeDelete?: () => Promise<boolean>): Promise<number> {
    const finished = await this.list(`${PHASE_LABEL} in (succeeded,failed)`);
    const victims = recordsToPrune(finished, this.options, this.now());
    let n = 0;
    for (const r of victims) {
      if (beforeDelete && !(await beforeDelete())) break;
      if (await this.delete(r.run.namespace, recordName(r.run), r.version)) n++;
    }
    return n;
  }

  private async delete(namespace: string, name: string, resourceVersion: string): Promise<boolean> {
    try {
      await this.call(this.api.request("DELETE", resourcePath({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name }), { body: { preconditions: { resourceVersion } } }), "deleting a StepRun");
      return true;
    } catch (err) {
      const e = apiError(err);
      if (e.code === 404 || e.code === 409) return false; // gone already, or changed: not ours to delete now
      throw this.mapError(err, "deleting");
    }
  }

  /**
   * The records of the StepRuns the selector matches, page by page. Each page becomes records at
   * once: a StepRun as the API server sends it (managedFields above all) is several times its
   * record, and a sweep that kept every page of 10,000 running runs until the last one arrived
   * raised the V8 heap's high-water by tens of MiB (BENCHMARKS.md §3).
   */
  private async list(labelSelector: string): Promise<RunRecord[]> {
    const out: RunRecord[] = [];
    let cont: string | undefined;
    do {
      let page: { items: StepRunObject[]; metadata?: { continue?: string } };
      try {
        const query = { labelSelector, limit: this.options.listPageSize, continue: cont };
        const path = resourcePath({ group: GROUP, version: VERSION, plural: PLURAL, ...(this.options.namespace ? { namespace: this.options.namespace } : {}) });
        page = (await this.call(this.api.request("GET", path, { query }), "listing StepRuns")) as typeof page;
      } catch (err) {
        throw this.mapError(err, "listing");
      }
      for (const item of page.items) out.push(fromObject(item));
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  /** The Application's uid for the owner reference; undefined when there is no such Application (a direct client). */
  private async ownerUid(run: RunIdentity): Promise<string | undefined> {
    let app;
    try {
      app = await this.applications.get(run.namespace, run.application);
    } catch (err) {
      throw this.mapError(err, "reading the Application of");
    }
    if (!app) this.log.warn({ application: `${run.namespace}/${run.application}` }, "no KubeVela Application of this name: its StepRun gets no owner reference and is pruned by age only");
    return app?.uid;
  }

  private call<T>(p: Promise<T>, what: string): Promise<T> {
    return timed(p, this.options.requestTimeoutMs, what);
  }

  private mapError(err: unknown, doing: string): Error {
    const e = apiError(err);
    if (e.code === 404 && !e.objectNotFound) {
      return new StoreUnavailableError(`the API server does not serve ${PLURAL}.${GROUP}: the StepRun CRD is not installed; enable the step-executor addon (vela addon enable step-executor)`, { cause: err });
    }
    if (e.code === 403) {
      return new StoreUnavailableError(`the step executor may not access ${PLURAL}.${GROUP} (${e.message}); check its ClusterRole (enable the addon again)`, { cause: err });
    }
    return new StoreUnavailableError(`error ${doing} StepRun: ${e.code ? `HTTP ${e.code} ${e.message}` : e.message}`, { cause: err });
  }
}

export function fromObject(obj: StepRunObject): RunRecord {
  const s = obj.status ?? {};
  const run: RunIdentity = { namespace: obj.metadata.namespace, application: obj.spec.application, step: obj.spec.step, session: obj.spec.session };
  const createdAt = ms(s.startedAt) || ms(obj.metadata.creationTimestamp) || 0;
  const finishedAt = ms(s.finishedAt);
  return {
    key: runKey(run),
    kind: obj.spec.kind,
    run,
    phase: s.phase ?? "running",
    message: s.message ?? "",
    outputs: s.outputs ?? {},
    createdAt,
    updatedAt: ms(s.updatedAt) || createdAt,
    ...(Number.isNaN(finishedAt) ? {} : { finishedAt }),
    holder: s.holder ?? "",
    attempts: s.attempts ?? 1,
    ...(s.checkpoint ? { checkpoint: s.checkpoint } : {}),
    ...(s.acknowledged ? { acknowledged: true } : {}),
    version: obj.metadata.resourceVersion ?? "",
  };
}

// ---- replica leases ---------------------------------------------------------------------------

export interface ReplicaLeaseOptions {
  identity: string;
  namespace: string;
  /** A replica whose Lease was not renewed for this long is dead: its runs are taken over. */
  durationMs: number;
  requestTimeoutMs: number;
}

interface LeaseObject {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
}

export function leaseName(identity: string): string {
  return `step-executor-${identity}`;
}

/** MicroTime as the API server wants it: RFC 3339 with exactly six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * This executor's Lease (coordination.k8s.io, in the executor's namespace), renewed every third of
 * its duration and deleted at shutdown; and the liveness of the others' by their Leases. A Lease
 * counts as alive until its holder's leaseDurationSeconds after its renewTime last changed as seen
 * on this executor's clock (the first sighting trusts the holder's clock, so a restarted executor
 * need not wait), as client-go's leader election does; clock skew can only cause an early
 * takeover, which the compare-and-swap writes make safe (docs/runs.md).
 */
export class ReplicaLeases implements Liveness {
  private readonly api: KubeClient;
  /** Other executors' Leases as last read: the holder's own duration decides its liveness. */
  private readonly seen = new Map<string, { exists: boolean; renewTime: string; changedAt: number; fetchedAt: number; durationMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastRenew = 0;
  private renewals = 0;

  constructor(kc: KubeClient, private readonly log: Logger, private readonly options: ReplicaLeaseOptions, private readonly now: () => number = Date.now) {
    this.api = kc;
  }

  get identity() {
    return this.options.identity;
  }

  /**
   * The Lease is current: renewed within its duration. A replica whose Lease ran out (the API
   * server unreachable, or refusing it) cannot claim or record runs, and the others may take its
   * runs over: it is not ready (/readyz), so that Services stop sending it steps.
   */
  healthy(): boolean {
    return !this.stopped && this.lastRenew > 0 && this.now() - this.lastRenew < this.options.durationMs;
  }

  /** Creates this executor's Lease and keeps renewing it. */
  async start(): Promise<void> {
    await this.create();
    this.timer = setInterval(() => void this.renew(), Math.max(200, Math.floor(this.options.durationMs / 3)));
    this.timer.unref();
  }

  private async create(): Promise<void> {
    const { namespace, identity, durationMs } = this.options;
    const t = microTime(this.now());
    const body = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: leaseName(identity), namespace, labels: { ...MANAGED_BY, [REPLICA_LABEL]: "true" } },
      spec: { holderIdentity: identity, leaseDurationSeconds: Math.max(1, Math.ceil(durationMs / 1000)), acquireTime: t, renewTime: t },
    };
    try {
      await this.call(this.api.request("POST", resourcePath({ group: "coordination.k8s.io", version: "v1", namespace, plural: "leases" }), { body }), "creating the executor's Lease");
    } catch (err) {
      const e = apiError(err);
      throw new Error(`cannot create Lease ${namespace}/${leaseName(identity)}: ${e.code ? `HTTP ${e.code} ${e.message}` : e.message}`, { cause: err });
    }
    this.lastRenew = this.now();
  }

  /** Deletes the Lease: the other executors take this one's remaining runs over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    try {
      await this.call(this.api.request("DELETE", resourcePath({ group: "coordination.k8s.io", version: "v1", namespace: this.options.namespace, plural: "leases", name: leaseName(this.options.identity) })), "deleting the executor's Lease");
    } catch (err) {
      if (apiError(err).code !== 404) this.log.warn({ err: describeError(err) }, "could not delete the executor's Lease; it expires on its own");
    }
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const { namespace, identity, durationMs } = this.options;
    try {
      await this.call(this.api.request("PATCH", resourcePath({ group: "coordination.k8s.io", version: "v1", namespace, plural: "leases", name: leaseName(identity) }), { body: { spec: { renewTime: microTime(this.now()) } }, contentType: MERGE_PATCH }), "renewing the executor's Lease");
      this.lastRenew = this.now();
    } catch (err) {
      if (this.stopped) return;
      if (apiError(err).objectNotFound) {
        // The timer keeps running: a create that fails now is tried again on the next tick.
        this.log.warn("the executor's Lease was deleted; creating it again");
        await this.create().catch((e) => this.log.error({ err: describeError(e) }, "cannot create the executor's Lease; trying again"));
        return;
      }
      const late = this.now() - this.lastRenew;
      (late > durationMs ? this.log.error.bind(this.log) : this.log.warn.bind(this.log))(
        { err: describeError(err), sinceLastRenewMs: late },
        late > durationMs ? "the executor's Lease expired: other executors may take its runs over (their writes then win)" : "cannot renew the executor's Lease",
      );
    }
    if (++this.renewals % 30 === 0) await this.deleteStale();
  }

  async isAlive(holder: string): Promise<boolean> {
    if (!holder) return false;
    if (holder === this.options.identity) return !this.stopped;
    const now = this.now();
    let e = this.seen.get(holder);
    if (!e || now - e.fetchedAt > this.options.durationMs / 4) {
      let lease: LeaseObject | undefined;
      try {
        lease = (await this.call(this.api.request("GET", resourcePath({ group: "coordination.k8s.io", version: "v1", namespace: this.options.namespace, plural: "leases", name: leaseName(holder) })), "reading a Lease")) as LeaseObject;
      } catch (err) {
        if (!apiError(err).objectNotFound) throw err;
      }
      const renewTime = lease?.spec?.holderIdentity === holder ? lease.spec.renewTime ?? "" : "";
      const exists = renewTime !== "";
      // The holder's duration, not ours: replicas started with other flags (mid-rollout) renew
      // at their own pace.
      const seconds = lease?.spec?.leaseDurationSeconds;
      const durationMs = typeof seconds === "number" && seconds > 0 ? seconds * 1000 : this.options.durationMs;
      if (!e) e = { exists, renewTime, changedAt: Math.min(now, ms(renewTime) || 0), fetchedAt: now, durationMs };
      else if (renewTime !== e.renewTime) Object.assign(e, { renewTime, changedAt: now });
      Object.assign(e, { exists, fetchedAt: now, durationMs });
      if (this.seen.size > 1_000) this.seen.clear();
      this.seen.set(holder, e);
    }
    return e.exists && now - e.changedAt < e.durationMs;
  }

  /** Deletes Leases of executors that stopped renewing long ago (killed, never shut down). */
  async deleteStale(): Promise<number> {
    const { namespace, durationMs, identity } = this.options;
    let n = 0;
    try {
      const list = (await this.call(this.api.request("GET", resourcePath({ group: "coordination.k8s.io", version: "v1", namespace, plural: "leases" }), { query: { labelSelector: `${REPLICA_LABEL}=true` } }), "listing Leases")) as { items: LeaseObject[] };
      for (const l of list.items) {
        if (l.spec?.holderIdentity === identity) continue;
        const renewed = ms(l.spec?.renewTime);
        if (!(renewed < this.now() - Math.max(10 * durationMs, 5 * 60_000))) continue;
        try {
          await this.call(this.api.request("DELETE", resourcePath({ group: "coordination.k8s.io", version: "v1", namespace, plural: "leases", name: l.metadata!.name! }), { body: { preconditions: { resourceVersion: l.metadata!.resourceVersion! } } }), "deleting a stale Lease");
          n++;
        } catch { /* gone or renewed meanwhile */ }
      }
    } catch (err) {
      this.log.warn({ err: describeError(err) }, "cannot list executor Leases");
    }
    return n;
  }

  private call<T>(p: Promise<T>, what: string): Promise<T> {
    return timed(p, this.options.requestTimeoutMs, what);
  }
}
