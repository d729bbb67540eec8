// The run store: one record per run identity. Creating a record is the claim — whoever creates
// it performs the side effect; everyone else only reads. The in-memory store below serves one
// replica; a store backed by the Kubernetes API implements the same interface for several.
import type { Phase, RunIdentity } from "../steps/types.js";

export interface RunRecord {
  readonly key: string;
  readonly kind: string;
  readonly run: RunIdentity;
  phase: Phase;
  message: string;
  outputs: Record<string, unknown>;
  readonly createdAt: number;
  updatedAt: number;
}

export type RunUpdate = Partial<Pick<RunRecord, "phase" | "message" | "outputs">>;

export interface RunStore {
  get(key: string): Promise<RunRecord | undefined>;
  /** Creates the record unless one exists; `created` tells the caller whether it owns the run. */
  create(record: RunRecord): Promise<{ record: RunRecord; created: boolean }>;
  update(key: string, update: RunUpdate): Promise<void>;
  /** Number of runs still running (for readiness, metrics and shutdown). */
  countRunning(): number;
}

export function runKey(run: RunIdentity): string {
  return `${run.namespace}/${run.application}/${run.step}/${run.session}`;
}

export const memoryRunStoreDefaults = {
  /** Finished runs are kept this long so late polls still get their result. */
  finishedTtlMs: 6 * 60 * 60 * 1000,
  /** At most this many finished runs are kept; the oldest go first. */
  maxFinished: 50_000,
};

export class MemoryRunStore implements RunStore {
  private readonly records = new Map<string, RunRecord>();
  private readonly options: typeof memoryRunStoreDefaults;
  private running = 0;

  constructor(options: Partial<typeof memoryRunStoreDefaults> = {}, private readonly now: () => number = Date.now) {
    this.options = { ...memoryRunStoreDefaults, ...options };
  }

  async get(key: string) {
    return this.records.get(key);
  }

  async create(record: RunRecord) {
    const existing = this.records.get(record.key);
    if (existing) return { record: existing, created: false };
    this.prune();
    this.records.set(record.key, record);
    if (record.phase === "running") this.running++;
    return { record, created: true };
  }

  async update(k: string, update: RunUpdate) {
    const r = this.records.get(k);
    if (!r) return;
    if (r.phase === "running" && update.phase && update.phase !== "running") this.running--;
    Object.assign(r, update, { updatedAt: this.now() });
  }

  countRunning() {
    return this.running;
  }

  /** Drops finished runs past their TTL or beyond the cap; running ones are never dropped. */
  private prune() {
    const cutoff = this.now() - this.options.finishedTtlMs;
    let finished = 0;
    for (const r of this.records.values()) if (r.phase !== "running") finished++;
    // Map iteration is insertion order, so the oldest records come first.
    for (const [k, r] of this.records) {
      if (r.phase === "running") continue;
      if (finished < this.options.maxFinished && r.updatedAt >= cutoff) break;
      this.records.delete(k);
      finished--;
    }
  }
}
