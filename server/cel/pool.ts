// A small pool of worker threads that evaluate CEL (cel-worker.ts) under a deadline and a heap
// limit. A tenant's expression may be arbitrarily expensive on arbitrary data; on the main thread
// it would block every step, poll and probe of the executor. Here it costs one worker, which is
// terminated and replaced. Workers start when evaluations wait and stop after idleMs without one,
// so an executor whose steps use no CEL does not pay for them.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { EvalReply, EvalRequest } from "./worker.js";
import { formatDuration } from "../shared/duration.js";

export interface CelPoolOptions {
  /** Most worker threads, i.e. evaluations running at once; they start as evaluations need them. */
  size: number;
  /** Longest one evaluation may run (counted from when a worker takes it, not while queued). */
  timeoutMs: number;
  /** Old-generation heap of each worker, in MiB; an evaluation that needs more kills only its worker. */
  maxHeapMiB: number;
  /** Evaluations waiting for a worker; beyond it evaluate() throws CelBusyError. */
  maxQueue: number;
  /** A worker idle this long is stopped (each costs ≈ 30 MiB of RSS); Infinity keeps them. */
  idleMs: number;
}

/**
 * 32 MiB: a 1 MiB JSON body converts and evaluates in well under it, and two workers at the limit
 * add ≈ 95 MiB of RSS (64 MiB: ≈ 160 MiB), which the Deployment's memory limit holds next to the
 * executor's own (docs/operations.md "Sizing"); a worker that fills its heap must not get the pod OOM-killed.
 */
export const celPoolDefaults: CelPoolOptions = { size: 2, timeoutMs: 1_000, maxHeapMiB: 32, maxQueue: 20_000, idleMs: 30_000 };

/** Young generation of each worker, in MiB (V8 needs a few for its scavenger; more buys little). */
const YOUNG_GENERATION_MIB = 8;

/** An evaluation the pool stopped: past its deadline, out of heap, or its worker died. */
export class CelLimitError extends Error {
  constructor(readonly limit: "time" | "memory" | "crash", message: string) {
    super(message);
    this.name = "CelLimitError";
  }
}

/** Every worker is busy and the queue is full; nothing was evaluated. Try again shortly. */
export class CelBusyError extends Error {
  override name = "CelBusyError";
}

export type CelOutcome = { ok: true; value: unknown } | { ok: false; error: string };

interface Task {
  id: number;
  source: string;
  vars: Record<string, unknown>;
  resolve(outcome: CelOutcome): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task?: Task;
  timer?: NodeJS.Timeout;
  /** Armed while the worker is ready and has no task. */
  idleTimer?: NodeJS.Timeout;
}

/**
 * The worker's entry. Compiled (build/server/cel/pool.js, as the image runs) it is the .js beside
 * this file. Under tsx (tests, `npm start`) it is the .ts, but Node 20 workers do not apply the
 * tsx loader they inherit in execArgv to their entry: the worker registers tsx, then imports it.
 */
function workerEntry(): { entry: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith(".ts")) return { entry: new URL("./worker.js", import.meta.url), eval: false };
  // tsx's ESM API, found through its package's exports map: mocha loads the sources through
  // tsx's CommonJS transform (no import.meta.resolve), and the CommonJS API registers a wrong path.
  const pkgPath = createRequire(import.meta.url).resolve("tsx/package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as { exports: { "./esm/api": { import: { default: string } } } };
  const tsx = new URL(pkg.exports["./esm/api"].import.default, pathToFileURL(pkgPath)).href;
  const entry = new URL("./worker.ts", import.meta.url).href;
  return { entry: `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); });`, eval: true };
}

export class CelPool {
  readonly options: CelPoolOptions;
  readonly stats = { evaluations: 0, timeouts: 0, outOfMemory: 0, crashes: 0, workersStarted: 0, workersIdled: 0 };
  private readonly slots = new Set<Slot>();
  private queue: (Task | undefined)[] = [];
  private head = 0;
  private nextId = 1;
  private closed = false;
  /** Set when a worker died before it was ready: no new one until the next evaluate(), so a broken install does not spin. */
  private startFailed = false;

  constructor(options: Partial<CelPoolOptions> = {}) {
    this.options = { ...celPoolDefaults, ...options };
  }

  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Worker threads alive now, starting ones included. */
  get workers(): number {
    return this.slots.size;
  }

  /** Evaluates `source` with JSON `vars` in a worker; rejects with CelLimitError or CelBusyError. */
  evaluate(source: string, vars: Record<string, unknown>): Promise<CelOutcome> {
    if (this.closed) return Promise.reject(new Error("the CEL evaluators are shut down"));
    if (this.queued >= this.options.maxQueue) {
      return Promise.reject(new CelBusyError(`the executor's CEL evaluators are busy (${this.queued} evaluations waiting)`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, source, vars, resolve, reject });
      this.startFailed = false;
      this.pump();
    });
  }

  /** Terminates the workers; queued and running evaluations are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    const stopping = [...this.slots].map((s) => {
      this.retire(s, () => new Error("the CEL evaluators are shut down"));
      return s.worker.terminate();
    });
    for (let t = this.next(); t; t = this.next()) t.reject(new Error("the CEL evaluators are shut down"));
    await Promise.all(stopping);
  }

  private next(): Task | undefined {
    if (this.head >= this.queue.length) return undefined;
    const t = this.queue[this.head];
    this.queue[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return t;
  }

  private pump(): void {
    if (this.closed) return;
    let starting = 0;
    for (const slot of this.slots) {
      if (!slot.ready) {
        starting++;
        continue;
      }
      // A loop: a task that could not be sent (run) leaves the worker free for the next one.
      while (!slot.task) {
        const task = this.next();
        if (!task) {
          this.idle(slot);
          break;
        }
        this.run(slot, task);
      }
    }
    // Only as many workers as the queue needs beyond those already starting: an idle one costs ≈ 30 MiB.
    while (this.slots.size < this.options.size && this.queued > starting && !this.startFailed) {
      this.spawn();
      starting++;
    }
    // Workers keep the process alive only while there is work, so an idle pool never holds up an exit.
    const busy = this.queued > 0 || [...this.slots].some((s) => s.task);
    for (const s of this.slots) busy ? s.worker.ref() : s.worker.unref();
  }

  private spawn(): void {
    const { entry, eval: isEval } = workerEntry();
    const worker = new Worker(entry, {
      eval: isEval,
      // Not the process's flags: some are invalid in a worker (--input-type) and the tsx loader is
      // registered by the entry itself; source maps keep worker stack traces readable.
      execArgv: process.execArgv.filter((a) => a === "--enable-source-maps"),
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMiB, maxYoungGenerationSizeMb: YOUNG_GENERATION_MIB },
    });
    this.stats.workersStarted++;
    const slot: Slot = { worker, ready: false };
    this.slots.add(slot);
    worker.on("message", (m: EvalReply | { ready: true }) => {
      if ("ready" in m) {
        slot.ready = true;
        this.pump();
        return;
      }
      const task = slot.task;
      if (!task || m.id !== task.id) return;
      clearTimeout(slot.timer);
      slot.task = undefined;
      this.stats.evaluations++;
      task.resolve(m.ok ? { ok: true, value: m.value } : { ok: false, error: m.error });
      this.pump();
    });
    worker.on("error", (err: Error & { code?: string }) => {
      if (err.code === "ERR_WORKER_OUT_OF_MEMORY") {
        this.retire(slot, () => {
          this.stats.outOfMemory++;
          return new CelLimitError("memory", `evaluation used more than ${this.options.maxHeapMiB} MiB of memory (the executor's limit)`);
        });
      } else {
        this.retire(slot, () => this.crashed(slot, `its evaluator failed: ${err.message}`));
      }
    });
    worker.on("exit", (code) => this.retire(slot, () => this.crashed(slot, `its evaluator exited with code ${code}`)));
  }

  /** Stops a worker that stays without work for idleMs; the next evaluation starts another. */
  private idle(slot: Slot): void {
    if (slot.idleTimer || !Number.isFinite(this.options.idleMs)) return;
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = undefined;
      if (!this.slots.delete(slot)) return;
      this.stats.workersIdled++;
      // Its exit event then finds it gone from the slots: not a crash.
      void slot.worker.terminate();
    }, this.options.idleMs);
    slot.idleTimer.unref();
  }

  private run(slot: Slot, task: Task): void {
    clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    slot.task = task;
    slot.timer = setTimeout(() => {
      this.retire(slot, () => {
        this.stats.timeouts++;
        return new CelLimitError("time", `evaluation exceeded ${formatDuration(this.options.timeoutMs)} (the executor's limit)`);
      });
      void slot.worker.terminate();
    }, this.options.timeoutMs);
    try {
      const req: EvalRequest = { id: task.id, source: task.source, vars: task.vars };
      slot.worker.postMessage(req);
    } catch (err) {
      // Not structured-cloneable (variables are JSON, so a caller's bug): this task only.
      clearTimeout(slot.timer);
      slot.task = undefined;
      task.reject(err as Error);
    }
  }

  private crashed(slot: Slot, message: string): Error {
    if (!slot.ready) return new Error(`the CEL evaluator did not start: ${message.replace(/^its evaluator /, "")}`);
    if (slot.task) this.stats.crashes++;
    return new CelLimitError("crash", message);
  }

  /** Takes a dead or doomed worker out of the pool, fails what it held, and starts a replacement if evaluations wait. */
  private retire(slot: Slot, why: () => Error): void {
    if (!this.slots.delete(slot)) return;
    const err = why();
    clearTimeout(slot.timer);
    clearTimeout(slot.idleTimer);
    slot.worker.unref();
    if (slot.task) {
      slot.task.reject(err);
      slot.task = undefined;
    } else if (!slot.ready && !this.closed) {
      // It never started: the queue would wait forever for it.
      this.startFailed = true;
      for (let t = this.next(); t; t = this.next()) t.reject(err);
    }
    this.pump();
  }
}
