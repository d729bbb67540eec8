// The run store: one record per run identity. Creating a record is the claim — whoever creates
// it performs the side effect; everyone else only reads. Every later write is a compare-and-swap
// on the record's version, so an executor that lost its run (another one took it over) cannot
// record anything for it, and a step records its intent before acting (StepContext.journal).
// The in-memory store below serves one replica; server/runs/kube-store.ts keeps the records in
// the Kubernetes API for several (docs/runs.md).
import { UnavailableError } from "../shared/errors.js";
import type { Phase, RunIdentity } from "../contract/run.js";

export interface RunRecord {
  readonly key: string;
  readonly kind: string;
  readonly run: RunIdentity;
  readonly phase: Phase;
  readonly message: string;
  readonly outputs: Record<string, unknown>;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt?: number;
  /** The executor performing the run; "" once it handed the run over (any executor may take it). */
  readonly holder: string;
  /** How many times an executor started the run: 1, plus one per takeover. */
  readonly attempts: number;
  /** What the step recorded before acting (StepContext.journal), handed to an executor that takes over. */
  readonly checkpoint?: Record<string, unknown>;
  /**
   * A poll found the record: KubeVela evaluated the step again with the same session, so it has
   * stored the session in the Application's status. Only then may a wake-up write to the
   * Application (docs/runs.md, "Wake-up").
   */
  readonly acknowledged?: boolean;
  /** Opaque version for compare-and-swap (the resourceVersion in the Kubernetes store). */
  readonly version: string;
}

export type NewRun = Omit<RunRecord, "version" | "updatedAt" | "finishedAt" | "checkpoint" | "acknowledged">;

export type RunUpdate = Partial<Pick<RunRecord, "phase" | "message" | "outputs" | "finishedAt" | "holder" | "attempts" | "checkpoint" | "acknowledged">>;

export interface RunStore {
  get(run: RunIdentity): Promise<RunRecord | undefined>;
  /** Creates the record unless one exists; `created` tells the caller whether it owns the run. */
  create(record: NewRun): Promise<{ record: RunRecord; created: boolean }>;
  /**
   * Compare-and-swap: applies `update` if the stored record still has `record.version`, and
   * returns the new record; undefined when the record changed (or went) meanwhile: read it again.
   */
  update(record: RunRecord, update: RunUpdate): Promise<RunRecord | undefined>;
  /**
   * Records still running, for the sweep that finds runs nobody works on; with `exceptHolder`,
   * not those that holder works on (a store may leave them out before reading them: the sweep of
   * a replica holding 10,000 runs need not read its own).
   */
  listRunning(options?: { exceptHolder?: string }): Promise<RunRecord[]>;
  /** Deletes a record if it still has `record.version` (an abandoned run). */
  remove(record: RunRecord): Promise<void>;
  /**
   * Deletes finished records beyond the retention bounds; running ones are never touched. Returns
   * how many went. A store that deletes through an API waits for `beforeDelete` before each
   * deletion and stops when it answers false (the sweep's pace, RunEngine).
   */
  prune(beforeDelete?: () => Promise<boolean>): Promise<number>;
}

/** Tells whether the executor named `holder` may still be working on the runs it holds. */
export interface Liveness {
  isAlive(holder: string): Promise<boolean>;
}

/** The store cannot be reached or is not installed: the poll is answered 503 and KubeVela polls again. */
export class StoreUnavailableError extends UnavailableError {}

/** The store refused a record for good (too large, invalid): retrying the same write cannot help. */
export class StoreRejectedError extends Error {}

export function runKey(run: RunIdentity): string {
  return `${run.namespace}/${run.application}/${run.step}/${run.session}`;
}

export interface RetentionOptions {
  /** Finished records are deleted this long after they finished. */
  retentionMs: number;
  /** At most this many finished records are kept (cluster-wide); the oldest go first... */
  maxFinished: number;
  /** ...but none that finished less than this long ago, so a late poll still finds its result. */
  minRetentionMs: number;
}

export const retentionDefaults: RetentionOptions = {
  retentionMs: 24 * 60 * 60 * 1000,
  maxFinished: 5_000,
  minRetentionMs: 10 * 60 * 1000,
};

/** The finished records to delete, oldest first: past the retention, or beyond the count bound (but not too young). */
export function recordsToPrune<T extends Pick<RunRecord, "phase" | "updatedAt" | "finishedAt">>(records: T[], o: RetentionOptions, now: number): T[] {
  const finished = records.filter((r) => r.phase !== "running").sort((a, b) => (a.finishedAt ?? a.updatedAt) - (b.finishedAt ?? b.updatedAt));
  const out: T[] = [];
  let kept = finished.length;
  for (const r of finished) {
    const at = r.finishedAt ?? r.updatedAt;
    const expired = at < now - o.retentionMs;
    const overCount = kept > o.maxFinished && at < now - o.minRetentionMs;
    if (!expired && !overCount) break;
    out.push(r);
    kept--;
  }
  return out;
}

/** Only this executor is alive: the liveness of a single replica whose records live in its memory. */
export function selfOnly(identity: string): Liveness {
  return { isAlive: async (holder) => holder === identity };
}

export const memoryRunStoreDefaults: RetentionOptions = {
  ...retentionDefaults,
  retentionMs: 6 * 60 * 60 * 1000,
  maxFinished: 50_000,
  minRetentionMs: 0,
};

/** One replica's store: records in memory, gone with the process. */
export class MemoryRunStore implements RunStore {
  private readonly records = new Map<string, RunRecord>();
  private readonly options: RetentionOptions;
  private running = 0;
  private versions = 0;
  private lastPrune = 0;

  constructor(options: Partial<RetentionOptions> & { finishedTtlMs?: number } = {}, private readonly now: () => number = Date.now) {
    this.options = { ...memoryRunStoreDefaults, ...options };
    if (options.finishedTtlMs !== undefined) this.options.retentionMs = options.finishedTtlMs;
  }

  async get(run: RunIdentity) {
    return this.records.get(runKey(run));
  }

  async create(init: NewRun) {
    const existing = this.records.get(init.key);
    if (existing) return { record: existing, created: false };
    const now = this.now();
    if (this.records.size - this.running >= this.options.maxFinished || now - this.lastPrune >= 60_000) this.pruneNow();
    const record: RunRecord = { ...init, updatedAt: init.createdAt, version: String(++this.versions) };
    this.records.set(record.key, record);
    if (record.phase === "running") this.running++;
    return { record, created: true };
  }

  async update(record: RunRecord, update: RunUpdate) {
    const r = this.records.get(record.key);
    if (!r || r.version !== record.version) return undefined;
    if (r.phase === "running" && update.phase && update.phase !== "running") this.running--;
    const next: RunRecord = { ...r, ...update, updatedAt: this.now(), version: String(++this.versions) };
    this.records.set(r.key, next);
    return next;
  }

  async listRunning(options: { exceptHolder?: string } = {}) {
    return [...this.records.values()].filter((r) => r.phase === "running" && (options.exceptHolder === undefined || r.holder !== options.exceptHolder));
  }

  async remove(record: RunRecord) {
    const r = this.records.get(record.key);
    if (!r || r.version !== record.version) return;
    if (r.phase === "running") this.running--;
    this.records.delete(r.key);
  }

  async prune() {
    return this.pruneNow();
  }

  /** Number of runs still running (metrics, benches). */
  countRunning() {
    return this.running;
  }

  private pruneNow(): number {
    this.lastPrune = this.now();
    const victims = recordsToPrune([...this.records.values()], this.options, this.now());
    for (const r of victims) this.records.delete(r.key);
    return victims.length;
  }
}
