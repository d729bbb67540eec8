// Turns polls into runs: the first poll of a run identity claims it (creates its record) and
// starts the step's work in the background; every poll answers at once from the run store. With
// several executors sharing a store, a poll that finds a run nobody works on any more (its
// executor died or handed it over) takes it over and resumes it from the step's journal
// (docs/runs.md).
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { sessionKey } from "../kubevela/applications.js";
import { describeError, TerminalError, UnavailableError } from "../shared/errors.js";
import type { HttpClient } from "../outbound/http-client.js";
import { kubeReaderForRun, type KubeReader } from "../kube/kube.js";
import { outputsTooLarge } from "../shared/outputs.js";
import { Redactor } from "../shared/redact.js";
import { sleep } from "../shared/retry.js";
import { runKey, selfOnly, StoreRejectedError, StoreUnavailableError, type Liveness, type RunRecord, type RunStore } from "./store.js";
import { createSecretResolver } from "../kube/secrets.js";
import { noObserver, type RunObserver } from "../observe/observe.js";
import type { SessionProbe } from "../kubevela/session-probe.js";
import { noWake, type Waker } from "../kubevela/wake.js";
import type { StepKind, StepTuning } from "../contract/step.js";
import type { RunIdentity, StepResult } from "../contract/run.js";
import { ActiveRun, RunContext, RunLostError, type RunView } from "./active-run.js";

export type { RunView } from "./active-run.js";

export interface EngineDeps {
  store: RunStore;
  kube: KubeReader;
  http: HttpClient;
  log: Logger;
  tuning: StepTuning;
  /** The first poll of a run waits this long for a quick step to finish, saving a backoff round. */
  firstAnswerWaitMs: number;
  now?: () => number;
  /** This executor's name as the holder of runs; default: a new one (newExecutorIdentity). */
  identity?: string;
  /** Whether another executor still works on the runs it holds; default: no other executor exists. */
  liveness?: Liveness;
  /** Makes KubeVela poll an Application's steps now (a run finished, or needs a new executor). */
  waker?: Waker;
  /** On drain, hand running work over at once (another replica resumes it) instead of letting it finish. */
  handOver?: boolean;
  /** Least time between two progress writes of one run to the store; default 1 s. */
  progressWriteMs?: number;
  /** A run nobody works on and nobody polls (the sweep watches it) is deleted after this long; default 24 h. */
  abandonAfterMs?: number;
  /** How often the sweep prunes finished records; default 1 min. */
  pruneIntervalMs?: number;
  /**
   * Most writes per second the sweep makes (releasing runs whose executor died, deleting abandoned
   * and never-confirmed runs, pruning): after a replica with thousands of runs dies, the others'
   * sweeps must not flood the API server everyone deploys through. Default 50 (vela-core's own client QPS).
   */
  sweepWritesPerSecond?: number;
  /**
   * Steps with side effects (not `pure`) start on the second poll of a session, once KubeVela has
   * stored the session in the Application's status, instead of on the first (docs/runs.md). Default off.
   */
  confirmSessions?: boolean;
  /**
   * Before a new run starts, check the caller's claims with the API server: the Application exists
   * in the namespace the signed body names, and the session has not already ended there (a
   * replayed request after the run's record was pruned starts nothing). Default off (tests).
   */
  verifyClaims?: boolean;
  /** vela-core runs with AuthenticateApplication and acts as this user for an Application that names no identity: its steps read as it too. Unset: the feature is off. */
  authenticationDefaultUser?: string;
  /** A session claimed but never confirmed by a second poll is forgotten after this long; default 10 min. */
  pendingTtlMs?: number;
  /**
   * Confirms a pending session as soon as the Application's status shows KubeVela stored it,
   * instead of at KubeVela's second poll (its first wait backoff, 1 s). Without it, the second poll confirms.
   */
  sessionProbe?: SessionProbe;
  /** When the probe looks, after the first poll (ms between looks); default 25, 25, 50, 50, 100, 100, 200, 400, 800, 1600 (KubeVela stores the status some tens of ms after the poll). */
  sessionProbeDelaysMs?: number[];
  /** Told when runs start, retry and end here (metrics, Kubernetes Events). */
  observer?: RunObserver;
  /**
   * Most runs this executor works on at once (its memory grows with each, docs/operations.md
   * "Sizing"); past it a new run is not started but answered `running` with a message, and starts
   * on a later poll once a run ended (here or on another replica). Default: no limit.
   */
  maxRuns?: number;
}

/** A name for this executor process: host (pod) name plus a random part, unique per start. */
export function newExecutorIdentity(): string {
  const host = hostname().toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40) || "executor";
  return `${host}-${randomBytes(4).toString("hex")}`;
}

export class RunEngine {
  private readonly active = new Map<string, ActiveRun>();
  /** Runs answered "at capacity", oldest first: a slot that frees wakes the oldest's Application (bounded). */
  private readonly deferred = new Map<string, RunIdentity>();
  /** Runs this executor saw without a live holder: since when, and when to wake their Application next. */
  private readonly orphans = new Map<string, { since: number; next: number; wakes: number }>();
  private draining = false;
  private readonly now: () => number;
  readonly identity: string;
  private readonly liveness: Liveness;
  private readonly waker: Waker;
  private readonly observer: RunObserver;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  /** Ends the session probes at shutdown. */
  private readonly stopping = new AbortController();
  private lastPrune = 0;
  private sweeps = 0;
  /** When the sweep's next write may go out (sweepWritesPerSecond), in wall-clock ms. */
  private nextSweepWrite = 0;

  constructor(private readonly deps: EngineDeps) {
    this.now = deps.now ?? Date.now;
    this.identity = deps.identity ?? newExecutorIdentity();
    this.liveness = deps.liveness ?? selfOnly(this.identity);
    this.waker = deps.waker ?? noWake;
    this.observer = deps.observer ?? noObserver;
  }

  get isDraining() {
    return this.draining;
  }

  /**
   * Whether side effects wait until KubeVela has stored the session. Then a session KubeVela
   * dropped is never confirmed, so recognising duplicate sessions (server/runs/sessions.ts) is not
   * needed, and must not be done: its per-replica memory would start a second run on another replica.
   */
  get confirmsSessions() {
    return this.deps.confirmSessions === true;
  }

  /**
   * A run ended: the step deferred longest ago may start now, without waiting for KubeVela's next
   * poll (its backoff reaches 60 s). It starts only if its poll finds room (here or on another replica).
   */
  private wakeDeferred(): void {
    const first = this.deferred.entries().next().value;
    if (!first) return;
    this.deferred.delete(first[0]);
    this.waker.wake(first[1].namespace, first[1].application, `step ${first[1].step} may start: the executor has room`);
  }

  /** Runs this executor is working on. */
  get activeRuns() {
    return this.active.size;
  }

  /** The answer to a run that would start here while the executor is full; undefined while there is room. */
  private capacityAnswer(kind: StepKind, run: RunIdentity): RunView | undefined {
    const max = this.deps.maxRuns;
    if (max === undefined || this.active.size < max) return undefined;
    this.observer.deferred({ kind: kind.kind });
    const key = runKey(run);
    if (!this.deferred.has(key)) { // a repeated poll keeps its place: first deferred, first woken
      if (this.deferred.size >= MAX_DEFERRED) this.deferred.delete(this.deferred.keys().next().value!);
      this.deferred.set(key, run);
    }
    return { phase: "running", message: `${kind.kind}: executor at capacity (${max} run${max === 1 ? "" : "s"}); waiting`, outputs: {} };
  }

  async poll(kind: StepKind, run: RunIdentity, parameter: unknown): Promise<RunView> {
    if (!kind.admit) return this.answer(kind, run, parameter);
    // Checked on every poll, since the template writes on every evaluation it is approved for.
    const kube = kubeReaderForRun(this.deps.kube, run, this.deps.authenticationDefaultUser);
    const wait = await kind.admit(parameter, { run, kube, tuning: this.deps.tuning });
    if (wait !== undefined) return { phase: "running", message: wait, outputs: {} };
    const answer = await this.answer(kind, run, parameter);
    return answer.phase === "failed" ? answer : { ...answer, approved: true };
  }

  private async answer(kind: StepKind, run: RunIdentity, parameter: unknown): Promise<RunView> {
    const key = runKey(run);
    const local = this.active.get(key);
    if (local && !local.lost) {
      if (!local.acknowledged && !local.record.acknowledged) {
        local.acknowledged = true;
        local.write({ acknowledged: true }, false).catch(() => undefined);
      }
      return local.view();
    }
    // The claims are read alongside the record (a new run's first poll needs both; one round trip
    // instead of two), and count only when there is no record.
    const claims = this.deps.verifyClaims ? this.checkClaims(run) : undefined;
    claims?.catch(() => undefined); // awaited below; ignored when the run has a record
    const existing = await this.read(run);
    if (existing) return this.answerExisting(kind, run, parameter, existing);
    if (this.draining) throw new UnavailableError("the step executor is shutting down; the step will be polled again");
    const prepared = kind.prepare(parameter, run); // InputError → 422: the step fails
    if (claims) {
      const refusal = await claims;
      if (refusal) return refusal;
    }
    const full = this.capacityAnswer(kind, run);
    if (full) return full; // no record: nothing to sweep, and a replica with room may start it
    const now = this.now();
    // A session is stable only once KubeVela stored it: if the reconcile that first ran the step
    // fails to store its status (controller restart, a concurrent write), the step gets a new
    // session. A step with side effects therefore waits for the second poll (`pending`).
    const pending = this.confirmsSessions && !kind.pure;
    let claim;
    try {
      claim = await this.deps.store.create({
        key, kind: kind.kind, run, phase: "running", message: `${kind.kind}: ${pending ? "starting" : "started"}`, outputs: {}, createdAt: now,
        holder: pending ? "" : this.identity, attempts: pending ? 0 : 1,
      });
    } catch (err) {
      throw unavailable(err);
    }
    if (!claim.created) return this.answerExisting(kind, run, parameter, claim.record);
    if (pending) {
      this.probeSession(kind, run, parameter, claim.record);
      return view(claim.record);
    }
    return this.firstAnswer(this.start(kind, prepared, claim.record, undefined));
  }

  /** Why a new run of `run` must not start, as its answer; undefined when the claims hold. */
  private async checkClaims(run: RunIdentity): Promise<RunView | undefined> {
    let app;
    try {
      app = await this.deps.kube.application(run.namespace, run.application);
    } catch (err) {
      throw new UnavailableError(`the step executor cannot read Application ${run.namespace}/${run.application} to check the request: ${describeError(err)}`);
    }
    if (app === null) return { phase: "failed", message: `Application ${run.namespace}/${run.application} does not exist; the executor starts steps only for Applications it can find`, outputs: {} };
    if (app.endedSessions?.has(sessionKey(run.step, run.session))) {
      return { phase: "failed", message: `step ${run.step} of Application ${run.namespace}/${run.application} already ended in session ${run.session}; a repeated request starts nothing`, outputs: {} };
    }
    return undefined;
  }

  /** A record exists: answer from it, or take the run over when nobody works on it any more. */
  private async answerExisting(kind: StepKind, run: RunIdentity, parameter: unknown, rec: RunRecord): Promise<RunView> {
    if (rec.phase !== "running" || this.draining || rec.kind !== kind.kind) return view(rec);
    if (isPending(rec)) return this.confirm(kind, run, parameter, rec);
    if (await this.isWorkedOn(rec)) {
      if (!rec.acknowledged) await this.acknowledge(rec);
      return view(rec);
    }
    const prepared = kind.prepare(parameter, run);
    const full = this.capacityAnswer(kind, run);
    if (full) return full; // still nobody's: the sweep and later polls find it again
    const previous = rec.holder;
    let taken: RunRecord | undefined;
    try {
      taken = await this.deps.store.update(rec, {
        holder: this.identity,
        attempts: rec.attempts + 1,
        acknowledged: true,
        message: `${bare(rec.message)} (resumed by another executor: ${previous ? `executor ${previous} stopped` : "handed over"})`,
      });
    } catch (err) {
      throw unavailable(err);
    }
    if (!taken) {
      // Another poll took it first, or it changed: answer from what is there now.
      const fresh = await this.read(run);
      return fresh ? view(fresh) : { phase: "running", message: `${kind.kind}: resuming`, outputs: {} };
    }
    this.orphans.delete(rec.key);
    this.deps.log.info({ run: rec.key, previous, attempts: taken.attempts, checkpoint: rec.checkpoint }, "took the run over");
    return this.firstAnswer(this.start(kind, prepared, taken, rec.checkpoint));
  }

  /**
   * Confirms a pending run without waiting for KubeVela's second poll: once the Application's
   * status shows the session stored (at the end of the reconcile that polled first, usually well
   * under a second), the run is claimed and started; its end wakes the Application, so the
   * workflow goes on at once. A session never stored is left to the sweep, as before.
   */
  private probeSession(kind: StepKind, run: RunIdentity, parameter: unknown, rec: RunRecord): void {
    const probe = this.deps.sessionProbe;
    if (!probe) return;
    const delays = this.deps.sessionProbeDelaysMs ?? [25, 25, 50, 50, 100, 100, 200, 400, 800, 1_600];
    const key = runKey(run);
    const ended = new AbortController();
    const stop = () => ended.abort();
    this.stopping.signal.addEventListener("abort", stop, { once: true });
    // The watch hears the status write that stores the session; the reads cover a watch that is down or behind.
    const heard = probe.heard?.(run, ended.signal).then(() => true);
    void (async () => {
      for (const delay of delays) {
        const fromWatch = await Promise.race([sleep(delay, ended.signal).then(() => false), ...(heard ? [heard] : [])]);
        if (this.active.has(key)) return; // the second poll came first
        if (!fromWatch && !(await probe.stored(run))) continue;
        if (this.draining) return;
        // The record as created: the claim is a compare-and-swap on it, so a poll or replica that
        // changed it first makes the claim fail, and the run is left to whoever holds it.
        await this.confirm(kind, run, parameter, rec, false);
        return;
      }
    })().catch((err) => {
      if (!this.stopping.signal.aborted) this.deps.log.debug({ err: describeError(err), run: key }, "session probe ended; the next poll confirms the session");
    }).finally(() => {
      this.stopping.signal.removeEventListener("abort", stop);
      ended.abort();
    });
  }

  /** The second poll of a pending run (or the session probe): KubeVela stored the session; claim the run and start it. */
  private async confirm(kind: StepKind, run: RunIdentity, parameter: unknown, rec: RunRecord, answer = true): Promise<RunView> {
    const prepared = kind.prepare(parameter, run);
    const full = this.capacityAnswer(kind, run);
    if (full) return full; // stays pending; the next poll confirms it when there is room
    let claimed: RunRecord | undefined;
    try {
      claimed = await this.deps.store.update(rec, { holder: this.identity, attempts: 1, acknowledged: true, message: `${kind.kind}: started` });
    } catch (err) {
      throw unavailable(err);
    }
    if (!claimed) {
      const fresh = await this.read(run);
      return fresh ? view(fresh) : { phase: "running", message: `${kind.kind}: starting`, outputs: {} };
    }
    const active = this.start(kind, prepared, claimed, undefined);
    active.acknowledged = true;
    return answer ? this.firstAnswer(active) : active.view();
  }

  /**
   * Notes in the record that KubeVela polled the run again with the same session (so it has stored
   * the session): the owner may wake the Application when the run ends. Best effort.
   */
  private async acknowledge(rec: RunRecord): Promise<void> {
    try {
      for (let i = 0, r: RunRecord | undefined = rec; i < 3 && r && r.phase === "running" && !r.acknowledged; i++) {
        if (await this.deps.store.update(r, { acknowledged: true })) return;
        r = await this.deps.store.get(rec.run);
      }
    } catch (err) {
      this.deps.log.debug({ err: describeError(err), run: rec.key }, "could not mark the run acknowledged");
    }
  }

  /** True while some executor works on the run: this one, or another whose lease is alive. */
  private async isWorkedOn(rec: RunRecord): Promise<boolean> {
    if (rec.holder === "") return false;
    if (rec.holder === this.identity) return this.active.has(rec.key);
    try {
      return await this.liveness.isAlive(rec.holder);
    } catch (err) {
      this.deps.log.warn({ err: describeError(err), holder: rec.holder }, "cannot tell whether the run's executor is alive; assuming it is");
      return true;
    }
  }

  private async read(run: RunIdentity): Promise<RunRecord | undefined> {
    try {
      return await this.deps.store.get(run);
    } catch (err) {
      throw unavailable(err);
    }
  }

  private async firstAnswer(active: ActiveRun): Promise<RunView> {
    if (this.deps.firstAnswerWaitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      active.pollsWaiting++;
      try {
        // A wait answers once it has looked and goes on waiting: the poll holds one of KubeVela's
        // reconcile workers, and a burst of starting waits must not hold them all for a second each.
        await Promise.race([active.done, ...(active.pure ? [active.looked] : []), new Promise((r) => { timer = setTimeout(r, this.deps.firstAnswerWaitMs); })]);
      } finally {
        active.pollsWaiting--;
        clearTimeout(timer);
      }
    }
    return active.view();
  }

  private start(kind: StepKind, prepared: unknown, record: RunRecord, resumed: Record<string, unknown> | undefined): ActiveRun {
    const { store, log: baseLog } = this.deps;
    this.deferred.delete(record.key);
    const active = new ActiveRun(record, store, this.identity, baseLog, kind.kind, this.now, this.deps.progressWriteMs ?? 1_000);
    active.pure = kind.pure === true;
    const redactor = new Redactor();
    // Every read of the run, Secrets included, as the Application's ServiceAccount if it names one.
    const kube = kubeReaderForRun(this.deps.kube, record.run, this.deps.authenticationDefaultUser);
    const startedAt = this.now();
    // The closures below outlive the first record (ActiveRun keeps the latest): they keep its key and identity only.
    const { key, run } = record;
    const about = { kind: kind.kind, run };
    const ctx = new RunContext(active, redactor, this.observer, resumed, kube, this.deps.http, this.deps.tuning, this.now,
      createSecretResolver(kube, record.run.namespace, redactor));
    // The base logger with the run's fields: a child logger per run would stay with every waiting run.
    baseLog.info({ run: record.key, kind: kind.kind, attempts: record.attempts }, resumed ? "run resumed" : "run started");
    this.observer.started({ ...about, resumed: record.attempts > 1, attempts: record.attempts });
    active.done = (async () => {
      let result: StepResult;
      try {
        result = await kind.execute(ctx, prepared);
      } catch (err) {
        if (active.lost) return;
        if (active.cancelled) {
          result = { phase: "failed", message: active.cancelled };
        } else if (active.signal.aborted) {
          active.outcome = "handed-over";
          await this.release(active);
          return;
        } else {
          if (!(err instanceof TerminalError)) active.log.error({ err: describeError(err) }, "step failed unexpectedly");
          result = { phase: "failed", message: describeError(err) };
        }
      }
      if (active.lost) return;
      if (active.cancelled) result = { phase: "failed", message: active.cancelled };
      active.stopProgress();
      let final = redactor.apply({ phase: result.phase, message: result.message, outputs: result.outputs ?? {} });
      // Every kind's outputs pass here: past the caps, KubeVela could not store its workflow context.
      const tooLarge = outputsTooLarge(final.outputs);
      if (tooLarge) final = { phase: "failed", message: tooLarge, outputs: {} };
      active.result = view({ ...final });
      try {
        await active.write({ ...final, finishedAt: this.now() }, true);
      } catch (err) {
        if (err instanceof RunLostError) return;
        if (!(err instanceof StoreRejectedError)) {
          active.log.error({ err: describeError(err) }, "the run's result could not be stored before shutdown; the executor that takes the run over repeats its last step");
          active.outcome = "handed-over";
          return;
        }
        const message = `the step ${final.phase} but its result could not be stored: ${err.message}`;
        active.result = { phase: "failed", message, outputs: {} };
        try {
          await active.write({ phase: "failed", message, outputs: {}, finishedAt: this.now() }, true);
        } catch (err2) {
          active.log.error({ err: describeError(err2) }, "the run's result could not be stored");
          return;
        }
      }
      active.outcome = active.result.phase === "succeeded" ? "succeeded" : "failed";
      baseLog.info({ run: key, kind: kind.kind, phase: active.result.phase, message: active.result.message }, "run finished");
      // Only once KubeVela stored the run's session: a write to the Application while the
      // reconcile that first ran the step is still under way makes that reconcile's status write
      // fail, and KubeVela then gives the step a new session, i.e. a new run (docs/runs.md).
      // And not when a poll waiting for this answer carries it: KubeVela is in that reconcile now.
      if (active.wakeable && active.pollsWaiting === 0 && !active.cancelled) this.waker.wake(run.namespace, run.application, `step ${run.step} ${active.result.phase}`);
    })().finally(() => {
      active.stopProgress();
      if (this.active.get(key) === active) {
        this.active.delete(key);
        this.wakeDeferred();
      }
      this.observer.finished({ ...about, outcome: active.outcome ?? "lost", message: active.result?.message ?? active.message, durationMs: this.now() - startedAt });
    });
    this.active.set(key, active);
    return active;
  }

  /** The runs this executor works on for one Application, with when each was created. */
  runsOf(namespace: string, application: string): { run: RunIdentity; createdAt: number }[] {
    return [...this.active.values()]
      .filter((a) => !a.result && !a.lost && a.record.run.namespace === namespace && a.record.run.application === application)
      .map((a) => ({ run: a.record.run, createdAt: a.record.createdAt }));
  }

  /**
   * KubeVela ended the run's step on its own (its timeout, a terminated or restarted workflow, the
   * Application deleted): stops the run's work, a side effect in flight included, and records
   * `cancelled: <why>` as its end. False when this executor has no such run under way.
   */
  cancel(run: RunIdentity, why: string): boolean {
    const a = this.active.get(runKey(run));
    if (!a || a.result || a.lost || a.cancelled) return false;
    a.cancelled = `cancelled: ${why}`;
    this.deps.log.info({ run: a.record.key, why }, "run cancelled: KubeVela ended its step");
    a.cancelWork(new Error(a.cancelled));
    return true;
  }

  /** Gives the run up so that any executor resumes it from its journal on the next poll. */
  private async release(active: ActiveRun) {
    active.stopProgress();
    try {
      await active.write({ holder: "", message: `${bare(active.message)} (handed over: its executor is stopping)` }, true);
      active.log.info("run handed over");
    } catch (err) {
      if (!(err instanceof RunLostError)) active.log.warn({ err: describeError(err) }, "could not hand the run over; another executor takes it over when this one's lease expires");
      return;
    }
    if (active.wakeable) this.waker.wake(active.record.run.namespace, active.record.run.application, `step ${active.record.run.step} handed over`);
  }

  /**
   * Finds runs nobody works on (their executor died or handed them over) and wakes their
   * Application, so that KubeVela polls the step now and the poll takes the run over; deletes such
   * runs nobody polls any more after `abandonAfterMs`; prunes finished records.
   */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => { this.sweeping = undefined; });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    if (this.draining) return;
    const { store, log } = this.deps;
    const now = this.now();
    let running: RunRecord[];
    try {
      // The runs held by others or nobody: a replica's own are in `active` (the store may leave
      // them out before reading them, BENCHMARKS.md §3). Every FULL_SWEEP_EVERY-th sweep reads all,
      // for a run recorded as this executor's that it no longer works on (a final write refused twice).
      running = await store.listRunning(this.sweeps++ % FULL_SWEEP_EVERY === 0 ? {} : { exceptHolder: this.identity });
    } catch (err) {
      log.warn({ err: describeError(err) }, "sweep: cannot list running runs");
      return;
    }
    const seen = new Set<string>();
    for (const r of running) {
      seen.add(r.key);
      if (isPending(r)) {
        // Never confirmed: KubeVela gave the step a new session, or the workflow is gone. Nothing
        // was done for it, so forgetting it is safe (a late second poll just starts over).
        if (now - r.createdAt >= (this.deps.pendingTtlMs ?? 10 * 60_000)) {
          if (!(await this.paceSweepWrite())) return;
          await store.remove(r).catch(() => undefined);
        }
        continue;
      }
      if (this.active.has(r.key) || await this.isWorkedOn(r)) {
        this.orphans.delete(r.key);
        continue;
      }
      const o = this.orphans.get(r.key) ?? { since: now, next: now, wakes: 0 };
      this.orphans.set(r.key, o);
      if (now - o.since >= (this.deps.abandonAfterMs ?? 24 * 60 * 60 * 1000)) {
        if (!(await this.paceSweepWrite())) return;
        log.info({ run: r.key, holder: r.holder }, "deleting a run nobody has polled since its executor stopped");
        await store.remove(r).catch((err) => log.warn({ err: describeError(err), run: r.key }, "cannot delete an abandoned run"));
        this.orphans.delete(r.key);
        continue;
      }
      if (now >= o.next && r.acknowledged) {
        // The step definitions answer a held, acknowledged run from its StepRun without calling
        // any executor: release it first, so that the next evaluation calls one and takes it over.
        if (r.holder !== "") {
          if (!(await this.paceSweepWrite())) return;
          if (!(await this.releaseOrphan(r))) continue;
        }
        log.info({ run: r.key, holder: r.holder }, "run without a live executor: waking its Application so that its next poll resumes it");
        this.waker.wake(r.run.namespace, r.run.application, `resume step ${r.run.step}`);
        o.wakes++;
        o.next = now + Math.min(5 * 60_000, 2_000 * 2 ** o.wakes);
      }
    }
    for (const k of this.orphans.keys()) if (!seen.has(k)) this.orphans.delete(k);
    // A wait KubeVela never polled again (it gave the step a new session): stop it. Only waits:
    // anything else may have acted, and its record must stay to answer a late poll.
    for (const a of this.active.values()) {
      if (a.pure && !a.wakeable && !a.result && now - a.record.createdAt >= (this.deps.pendingTtlMs ?? 10 * 60_000)) {
        log.info({ run: a.record.key }, "stopping a run KubeVela never polled again (its step got a new session)");
        a.lost = true;
        a.stopAll(new Error("session dropped by KubeVela"));
        await store.remove(a.record).catch(() => undefined);
      }
    }
    if (now - this.lastPrune >= (this.deps.pruneIntervalMs ?? 60_000)) {
      this.lastPrune = now;
      try {
        const n = await store.prune(() => this.paceSweepWrite());
        if (n > 0) log.info({ deleted: n }, "pruned finished runs");
      } catch (err) {
        log.warn({ err: describeError(err) }, "sweep: cannot prune finished runs");
      }
    }
  }

  /**
   * Waits for the sweep's next write slot (sweepWritesPerSecond); false when the executor is
   * stopping, and the sweep ends there.
   */
  private async paceSweepWrite(): Promise<boolean> {
    const gapMs = 1000 / (this.deps.sweepWritesPerSecond ?? 50);
    const now = Date.now(); // wall-clock: spacing requests, not judging run ages (deps.now)
    const waitMs = this.nextSweepWrite - now;
    this.nextSweepWrite = Math.max(now, this.nextSweepWrite) + gapMs;
    if (waitMs > 0) {
      try {
        await sleep(waitMs, this.stopping.signal);
      } catch {
        return false;
      }
    }
    return !this.stopping.signal.aborted;
  }

  /** Empties the holder of a run whose executor is gone (a compare-and-swap write); false if it changed meanwhile or cannot be written. */
  private async releaseOrphan(r: RunRecord): Promise<boolean> {
    try {
      const released = await this.deps.store.update(r, { holder: "", message: `${bare(r.message)} (handed over: executor ${r.holder} stopped)` });
      if (released) this.deps.log.info({ run: r.key, previous: r.holder }, "released a run whose executor stopped");
      return released !== undefined;
    } catch (err) {
      this.deps.log.warn({ err: describeError(err), run: r.key }, "sweep: cannot release a run whose executor stopped");
      return false;
    }
  }

  /** Sweeps now and then every `intervalMs` until drained. */
  startSweeping(intervalMs: number): void {
    if (this.sweepTimer || intervalMs <= 0) return;
    void this.sweep();
    this.sweepTimer = setInterval(() => void this.sweep(), intervalMs);
    this.sweepTimer.unref();
  }

  /**
   * Stops taking new runs. With `handOver`, running runs end their waits at once and are released
   * for another executor (a side effect in flight finishes first); otherwise they may finish. After
   * `graceMs` everything still running is aborted (and released).
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.stopping.abort(new Error("executor shutting down"));
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const runs = [...this.active.values()];
    if (this.deps.handOver) for (const r of runs) r.handOver(new Error("executor shutting down: handing the run over"));
    const all = Promise.allSettled(runs.map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); })]);
    clearTimeout(timer);
    if (timedOut) {
      for (const r of runs) r.stopAll(new Error("executor shutting down"));
      // A step stuck in a call that ignores its signal must not hold the process forever.
      await Promise.race([all, new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    await this.sweeping;
  }
}

function unavailable(err: unknown): Error {
  if (err instanceof UnavailableError) return err;
  return new StoreUnavailableError(`the step executor cannot reach its run store: ${describeError(err)}`, { cause: err });
}

/** One sweep in this many lists the runs this executor holds too (see sweepOnce). */
const FULL_SWEEP_EVERY = 12;

/** Deferred runs remembered for a wake-up; beyond it the oldest is forgotten (it still starts on KubeVela's next poll). */
const MAX_DEFERRED = 10_000;

/** A message without the notes a handover or takeover appended to it. */
function bare(message: string): string {
  return message.replace(/( \((resumed by another executor|handed over): [^)]*\))+$/, "");
}

/** Claimed by a first poll, waiting for the second to confirm the session; nothing done yet. */
function isPending(r: RunRecord): boolean {
  return r.phase === "running" && r.attempts === 0 && r.holder === "";
}

function view(r: Pick<RunRecord, "phase" | "message" | "outputs">): RunView {
  return { phase: r.phase, message: r.message, outputs: r.phase === "succeeded" ? r.outputs : {} };
}
