// What happens to runs, told to whoever watches them (metrics, Kubernetes Events). The engine
// calls these at the one place each thing happens; messages are already redacted by the run's
// Redactor. Observers must not throw and must not wait: they run on the step's path.
import type { RunIdentity } from "../contract/run.js";

export interface RunEvent {
  kind: string;
  run: RunIdentity;
}

/** How a run ended on this executor: a result, or it went to another executor. */
export type RunOutcome = "succeeded" | "failed" | "handed-over" | "lost";

export interface RunObserver {
  /** Work on the run started here: a fresh run, or one taken over (`resumed`). */
  started(e: RunEvent & { resumed: boolean; attempts: number }): void;
  /** The step failed an attempt of its side effect and will try again (`message` says why and when). */
  retrying(e: RunEvent & { message: string }): void;
  /** The run stopped on this executor; `durationMs` counts from its start here. */
  finished(e: RunEvent & { outcome: RunOutcome; message: string; durationMs: number }): void;
  /** A run of `kind` was not started because the executor works on its maximum of runs (--max-runs); a later poll starts it. */
  deferred(e: { kind: string }): void;
}

export const noObserver: RunObserver = { started() {}, retrying() {}, finished() {}, deferred() {} };

/** Tells every observer; one that throws does not keep the others from hearing. */
export function observers(...list: RunObserver[]): RunObserver {
  const each = <K extends keyof RunObserver>(k: K) => (e: Parameters<RunObserver[K]>[0]) => {
    for (const o of list) {
      try {
        (o[k] as (e: unknown) => void)(e);
      } catch { /* an observer's bug must not fail a step */ }
    }
  };
  return { started: each("started"), retrying: each("retrying"), finished: each("finished"), deferred: each("deferred") };
}
