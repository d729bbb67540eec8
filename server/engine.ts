// Turns polls into runs: the first poll of a run identity claims it and starts the step's work
// in the background; every poll answers at once from the run store.
import type { Logger } from "pino";
import { describeError, TerminalError, UnavailableError } from "./errors.js";
import type { HttpClient } from "./http-client.js";
import type { KubeReader } from "./kube.js";
import { Redactor } from "./redact.js";
import { sleep } from "./retry.js";
import { runKey, type RunRecord, type RunStore } from "./runs.js";
import { createSecretResolver } from "./secrets.js";
import type { RunIdentity, StepContext, StepKind, StepResult, StepTuning } from "../steps/types.js";

export interface RunView {
  phase: RunRecord["phase"];
  message: string;
  outputs: Record<string, unknown>;
}

export interface EngineDeps {
  store: RunStore;
  kube: KubeReader;
  http: HttpClient;
  log: Logger;
  tuning: StepTuning;
  /** The first poll of a run waits this long for a quick step to finish, saving a backoff round. */
  firstAnswerWaitMs: number;
  now?: () => number;
}

export class RunEngine {
  private readonly active = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private draining = false;
  private readonly now: () => number;

  constructor(private readonly deps: EngineDeps) {
    this.now = deps.now ?? Date.now;
  }

  get isDraining() {
    return this.draining;
  }

  async poll(kind: StepKind, run: RunIdentity, parameter: unknown): Promise<RunView> {
    const key = runKey(run);
    const existing = await this.deps.store.get(key);
    if (existing) return view(existing);
    if (this.draining) throw new UnavailableError("the step executor is shutting down; the step will be polled again");
    const prepared = kind.prepare(parameter, run); // InputError → 422: the step fails
    const now = this.now();
    const { record, created } = await this.deps.store.create({
      key, kind: kind.kind, run, phase: "running", message: `${kind.kind}: started`, outputs: {}, createdAt: now, updatedAt: now,
    });
    if (!created) return view(record);
    const done = this.start(kind, prepared, record);
    if (this.deps.firstAnswerWaitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => { timer = setTimeout(r, this.deps.firstAnswerWaitMs); })]);
      clearTimeout(timer);
    }
    return view((await this.deps.store.get(key)) ?? record);
  }

  private start(kind: StepKind, prepared: unknown, record: RunRecord): Promise<void> {
    const { store, log: baseLog } = this.deps;
    const log = baseLog.child({ run: record.key, kind: kind.kind });
    const redactor = new Redactor();
    let lastProgress = "";
    const ctx: StepContext = {
      run: record.run,
      signal: this.abort.signal,
      progress: (message) => {
        const m = redactor.apply(message);
        if (m === lastProgress) return;
        lastProgress = m;
        log.debug({ message: m }, "progress");
        void store.update(record.key, { message: m });
      },
      kube: this.deps.kube,
      secrets: createSecretResolver(this.deps.kube, record.run.namespace, redactor),
      http: this.deps.http,
      log,
      tuning: this.deps.tuning,
      now: this.now,
      sleep: (ms) => sleep(ms, this.abort.signal),
    };
    log.info("run started");
    const work = (async () => {
      let result: StepResult;
      try {
        result = await kind.execute(ctx, prepared);
      } catch (err) {
        if (this.abort.signal.aborted) {
          log.warn("run interrupted by shutdown");
          return;
        }
        if (!(err instanceof TerminalError)) log.error({ err: describeError(err) }, "step failed unexpectedly");
        result = { phase: "failed", message: describeError(err) };
      }
      const final = redactor.apply({ phase: result.phase, message: result.message, outputs: result.outputs ?? {} });
      await store.update(record.key, final);
      log.info({ phase: final.phase, message: final.message }, "run finished");
    })().finally(() => this.active.delete(record.key));
    this.active.set(record.key, work);
    return work;
  }

  /** Stops taking new runs, lets running ones finish for up to `graceMs`, then aborts them. */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    const all = Promise.allSettled([...this.active.values()]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); })]);
    clearTimeout(timer);
    if (timedOut) {
      this.abort.abort(new Error("executor shutting down"));
      await all;
    }
  }
}

function view(r: RunRecord): RunView {
  return { phase: r.phase, message: r.message, outputs: r.phase === "succeeded" ? r.outputs : {} };
}
