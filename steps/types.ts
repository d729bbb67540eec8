// What a step handler sees: the run it serves and the shared mechanisms, never express or env.
import type { Logger } from "pino";
import type { HttpClient } from "../server/http-client.js";
import type { KubeReader } from "../server/kube.js";
import type { SecretResolver } from "../server/secrets.js";

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

export interface StepTuning {
  /** How often a waiting step re-reads what it waits for. */
  pollIntervalMs: number;
  /** How long a step waits for a referenced Secret to appear before failing. */
  secretWaitMs: number;
}

export interface StepContext {
  readonly run: RunIdentity;
  /** Aborted when the executor stops; handlers pass it to I/O and sleeps. */
  readonly signal: AbortSignal;
  /** Shows progress in `vela status` while the step runs. */
  progress(message: string): void;
  readonly kube: KubeReader;
  /** Secrets of the run's own namespace; values are redacted from everything the run reports. */
  readonly secrets: SecretResolver;
  readonly http: HttpClient;
  readonly log: Logger;
  readonly tuning: StepTuning;
  now(): number;
  sleep(ms: number): Promise<void>;
}

/**
 * A step kind. `prepare` checks what a schema cannot (CEL, durations, URLs) and compiles it;
 * it runs on every poll that starts a run and throws InputError (→ 422, the step fails).
 * `execute` does the work once per run, in the background, and returns the final result;
 * a thrown TerminalError fails the run with its message.
 */
export interface StepKind<Parameter = unknown, Prepared = unknown> {
  readonly kind: string;
  readonly description: string;
  readonly schema: object;
  prepare(parameter: Parameter, run: RunIdentity): Prepared;
  execute(ctx: StepContext, prepared: Prepared): Promise<StepResult>;
}
