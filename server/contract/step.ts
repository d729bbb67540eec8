// What a step handler sees: the run it serves and the shared mechanisms, never express or env.
import type { Logger } from "pino";
import type { HttpClient } from "../outbound/http-client.js";
import type { KubeReader } from "../kube/kube.js";
import type { SecretResolver } from "../kube/secrets.js";
import type { RunIdentity, StepResult } from "./run.js";

export interface StepTuning {
  /** How often a waiting step re-reads what it waits for. */
  pollIntervalMs: number;
  /** How long a step waits for a referenced Secret to appear before failing. */
  secretWaitMs: number;
  /** Kinds apply-and-wait applies although they are refused by default (`Kind` or `group/Kind`; --apply-allow-kinds). */
  applyAllowKinds?: readonly string[];
  /** Failure messages of a step that sent secretHeaders quote the response body (else it is withheld); default off. */
  bodyExcerptWithSecrets?: boolean;
}

/** What `admit` may consult: the run's reader (the Application's identity; discovery is the executor's), and the operator's policy. */
export interface AdmitContext {
  readonly run: RunIdentity;
  readonly kube: KubeReader;
  readonly tuning: StepTuning;
}

/**
 * The run's durable journal (docs/runs.md). A step records its intent before a side effect, so an
 * executor that takes the run over (the first one died or shut down) knows what may have happened.
 */
export interface RunJournal {
  /** What the previous executor of this run recorded last; undefined on a fresh run. */
  readonly resumed: Readonly<Record<string, unknown>> | undefined;
  /** Stores `state` durably, replacing the last one; rejects when this executor no longer owns the run, and then the step must not act. */
  record(state: Record<string, unknown>): Promise<void>;
}

export interface StepContext {
  readonly run: RunIdentity;
  /** Aborted when the run must stop: the executor hands it over (shutdown) or lost it. Pass it to reads, waits and sleeps. */
  readonly signal: AbortSignal;
  /** Aborted only when a side effect in flight must be abandoned too (shutdown grace over, run lost): pass it to the side effect. */
  readonly effectSignal: AbortSignal;
  readonly journal: RunJournal;
  /** Shows progress in `vela status` while the step runs. */
  progress(message: string): void;
  /**
   * Shows progress like `progress`, and tells that an attempt of the side effect failed and
   * another follows (counted in metrics, a StepRetrying Event on the Application).
   */
  retrying(message: string): void;
  readonly kube: KubeReader;
  /** Secrets of the run's own namespace; values are redacted from everything the run reports. */
  readonly secrets: SecretResolver;
  /** The run's redaction (server/shared/redact.ts): for what a step reads before it is cut, quoted or handed to CEL. */
  redact<T>(value: T): T;
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
  /**
   * The step only reads (it waits): running it twice changes nothing, so it may start on the
   * first poll of a session. Other steps start once KubeVela has stored the session (docs/runs.md).
   */
  readonly pure?: boolean;
  readonly description: string;
  readonly schema: object;
  prepare(parameter: Parameter, run: RunIdentity): Prepared;
  /**
   * For a template that writes something itself once the executor agrees (apply-and-wait's
   * kube.#Apply): checks it on every poll and throws InputError to refuse (the step fails before
   * anything is written), or returns a message to make the step wait unapproved (what it needs is
   * not there yet, e.g. an unreachable cluster). Answers of such a kind carry `approved: true`.
   */
  admit?(parameter: Parameter, ctx: AdmitContext): Promise<string | undefined>;
  execute(ctx: StepContext, prepared: Prepared): Promise<StepResult>;
}
