// One run this executor works on (ActiveRun: its record, signals and serialized writes) and what
// its step sees of it (RunContext). Every waiting run holds one of each, so both keep their
// methods on the prototype rather than in per-run closures (docs/operations.md "Sizing").
import type { Logger } from "pino";
import type { HttpClient } from "../outbound/http-client.js";
import type { KubeReader } from "../kube/kube.js";
import type { SecretResolver } from "../kube/secrets.js";
import type { Redactor } from "../shared/redact.js";
import { describeError } from "../shared/errors.js";
import { sleep } from "../shared/retry.js";
import type { RunObserver, RunOutcome } from "../observe/observe.js";
import { StoreRejectedError, type RunRecord, type RunStore, type RunUpdate } from "./store.js";
import type { RunJournal, StepContext, StepTuning } from "../contract/step.js";
import type { RunIdentity } from "../contract/run.js";

export interface RunView {
  phase: RunRecord["phase"];
  message: string;
  outputs: Record<string, unknown>;
  /** The template may write what the step kind admitted (StepKind.admit). */
  approved?: true;
}

export class RunLostError extends Error {
  constructor() {
    super("another executor took this run over");
  }
}

/** One run this executor works on: its latest stored record, its signals and its serialized writes. */
export class ActiveRun {
  message: string;
  result: RunView | undefined;
  lost = false;
  /** This executor answered a later poll of the run (see RunRecord.acknowledged). */
  acknowledged = false;
  /** Polls waiting for this run's first answer (firstAnswerWaitMs): they carry the result themselves. */
  pollsWaiting = 0;
  /** The step only reads (StepKind.pure). */
  pure = false;
  /** Resolved at the step's first progress report: a wait has looked once and goes on waiting. */
  readonly looked: Promise<void>;
  private markLooked!: () => void;
  /** Why KubeVela ended the run's step on its own (RunEngine.cancel); the run ends failed with it. */
  cancelled: string | undefined;
  /** How the run ended here, for the observer; unset means another executor took it (lost). */
  outcome: RunOutcome | undefined;
  // Two controllers, not three joined by AbortSignal.any: every waiting run holds them, and
  // AbortSignal.any keeps Sets and WeakRefs per source (≈ 2 KiB a run).
  /** Aborted when the work must stop: a handover (waits end, a side effect in flight finishes), a cancel, or everything stopping. */
  private readonly work = new AbortController();
  /** Aborted when a side effect in flight must be abandoned too: a cancel, or everything stopping. */
  private readonly effect = new AbortController();
  /** Everything stopped (run lost, shutdown grace over): required writes give up too. */
  private stopped: AbortController | undefined;
  private stoppedAll = false;
  done: Promise<void> = Promise.resolve();
  private chain: Promise<void> = Promise.resolve();
  private progressTimer: NodeJS.Timeout | undefined;
  private lastProgressWrite = 0;
  private childLog: Logger | undefined;

  constructor(
    public record: RunRecord,
    private readonly store: RunStore,
    private readonly identity: string,
    private readonly baseLog: Logger,
    readonly kind: string,
    private readonly now: () => number,
    private readonly progressWriteMs: number,
  ) {
    this.message = record.message;
    this.looked = new Promise((r) => (this.markLooked = r));
  }

  /** The run's logger, made when first used: most runs never log past their start and end. */
  get log(): Logger {
    return (this.childLog ??= this.baseLog.child({ run: this.record.key, kind: this.kind }));
  }

  get signal(): AbortSignal {
    return this.work.signal;
  }

  get effectSignal(): AbortSignal {
    return this.effect.signal;
  }

  /** Hands the run over: its waits end, a side effect in flight finishes. */
  handOver(reason: unknown): void {
    this.work.abort(reason);
  }

  /** KubeVela ended the step: the work stops, a side effect in flight too; the record is still written. */
  cancelWork(reason: unknown): void {
    this.work.abort(reason);
    this.effect.abort(reason);
  }

  /** Everything stops, a side effect in flight and retried writes included. */
  stopAll(reason: unknown): void {
    this.stoppedAll = true;
    this.work.abort(reason);
    this.effect.abort(reason);
    this.stopped?.abort(reason);
  }

  /** Aborted by stopAll: what a retried write sleeps on. */
  private stopSignal(): AbortSignal {
    this.stopped ??= new AbortController();
    if (this.stoppedAll) this.stopped.abort();
    return this.stopped.signal;
  }

  view(): RunView {
    return this.result ?? { phase: "running", message: this.message, outputs: {} };
  }

  /** KubeVela stored the run's session (RunRecord.acknowledged), so waking its Application is safe. */
  get wakeable(): boolean {
    return this.acknowledged || !!this.record.acknowledged;
  }

  /** Queues a compare-and-swap write; `required` writes retry until stored, lost or hard-aborted. */
  write(update: RunUpdate, required: boolean): Promise<void> {
    const p = this.chain.then(() => this.writeNow(update, required));
    this.chain = p.catch(() => undefined);
    return p;
  }

  progress(message: string) {
    this.markLooked();
    if (message === this.message) return;
    this.message = message;
    if (this.progressTimer) return;
    const wait = Math.max(0, this.lastProgressWrite + this.progressWriteMs - this.now());
    this.progressTimer = setTimeout(() => {
      this.progressTimer = undefined;
      if (this.result || this.lost || this.signal.aborted) return;
      this.lastProgressWrite = this.now();
      this.write({ message: this.message }, false).catch(() => undefined);
    }, wait);
    this.progressTimer.unref();
  }

  stopProgress() {
    clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
  }

  private async writeNow(update: RunUpdate, required: boolean): Promise<void> {
    for (let i = 1; ; i++) {
      if (this.lost) throw new RunLostError();
      try {
        const next = await this.store.update(this.record, update);
        if (next) {
          this.record = next;
          // One copy of the message, the stored one: the step's own is often a concatenation kept
          // as a tree of its pieces, which a waiting run would hold for as long as it waits.
          if (next.message === this.message) this.message = next.message;
          return;
        }
        // Someone else wrote the record: still ours, or taken over?
        const fresh = await this.store.get(this.record.run);
        if (!fresh || fresh.holder !== this.identity || fresh.phase !== "running") {
          this.lost = true;
          this.log.warn({ holder: fresh?.holder, phase: fresh?.phase }, "run lost: another executor took it over; stopping it here");
          this.stopAll(new RunLostError());
          throw new RunLostError();
        }
        this.record = fresh;
      } catch (err) {
        if (err instanceof RunLostError || err instanceof StoreRejectedError || !required || this.stoppedAll) throw err;
        if (i === 1 || i % 10 === 0) this.log.warn({ err: describeError(err), attempt: i }, "cannot write the run record; retrying");
        try {
          await sleep(Math.min(5_000, 100 * 2 ** Math.min(i, 6)), this.stopSignal());
        } catch {
          throw err;
        }
      }
    }
  }
}

/** What a step sees of its run (StepContext). */
export class RunContext implements StepContext, RunJournal {
  constructor(
    private readonly active: ActiveRun,
    private readonly redactor: Redactor,
    private readonly observer: RunObserver,
    readonly resumed: Readonly<Record<string, unknown>> | undefined,
    readonly kube: KubeReader,
    readonly http: HttpClient,
    readonly tuning: StepTuning,
    readonly now: () => number,
    readonly secrets: SecretResolver,
  ) {}

  get run(): RunIdentity {
    return this.active.record.run;
  }

  get signal(): AbortSignal {
    return this.active.signal;
  }

  get effectSignal(): AbortSignal {
    return this.active.effectSignal;
  }

  get journal(): RunJournal {
    return this;
  }

  get log(): Logger {
    return this.active.log;
  }

  record(state: Record<string, unknown>): Promise<void> {
    return this.active.write({ checkpoint: this.redactor.apply(state) }, true);
  }

  progress(message: string): void {
    const m = this.redactor.apply(message);
    if (m !== this.active.message) this.active.log.debug({ message: m }, "progress");
    this.active.progress(m);
  }

  retrying(message: string): void {
    const m = this.redactor.apply(message);
    this.active.log.info({ message: m }, "retrying");
    this.observer.retrying({ kind: this.active.kind, run: this.run, message: m });
    this.active.progress(m);
  }

  redact<T>(value: T): T {
    return this.redactor.apply(value);
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms, this.active.signal);
  }
}
