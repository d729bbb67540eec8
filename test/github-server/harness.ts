// The shared executor fixture serving only the given kinds, so a test can run the
// github-actions step with its own short intervals.
import { newRun as fixtureRun, startExecutor } from "../fixtures/executor.js";
import type { StepKind, StepTuning } from "../../server/contract/step.js";
import type { RunIdentity } from "../../server/contract/run.js";

export function startExecutorWith(kinds: StepKind[], tuning: Partial<StepTuning> = {}) {
  return startExecutor({ kinds, tuning: { secretWaitMs: 1_000, ...tuning } });
}

export function newRun(namespace: string): RunIdentity {
  return fixtureRun(namespace, "gha");
}
