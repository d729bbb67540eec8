// The run contract between KubeVela's step, the engine and a step kind: which run, and how it ends.
// Imports nothing, so every room may import it.

/** One run of one step: KubeVela's `namespace/application/stepName/stepSessionID`. */
export interface RunIdentity {
  namespace: string;
  application: string;
  step: string;
  session: string;
}

export type Phase = "running" | "succeeded" | "failed";

export interface StepResult {
  phase: Phase;
  message: string;
  outputs?: Record<string, unknown>;
}
