// Waiting for an object: read it until it exists and its condition (or generic readiness)
// holds, fail early on its failure condition, give up at the timeout. Shared by
// read-object-and-wait and apply-and-wait.
import { CelBusyError, compileCondition, compileExpression, ExpressionEvalError, ExpressionLimitError, type CompiledCondition, type CompiledExpression } from "../cel/cel.js";
import { formatDuration, parseDuration } from "../shared/duration.js";
import { describeError, InputError } from "../shared/errors.js";
import { ForbiddenReadError, RefusedReadError, UnknownKindError } from "./kube.js";
import { checkObjectRef, type KubeObject, type ObjectRef } from "./object-ref.js";
import { checkDeclaredOutputs } from "../shared/outputs.js";
import { readiness } from "./readiness.js";
import type { StepContext } from "../contract/step.js";
import type { RunIdentity, StepResult } from "../contract/run.js";

/** Longest wait accepted; longer waits belong to KubeVela's step `timeout`, not ours. */
export const MAX_WAIT_MS = 24 * 60 * 60 * 1000;
const VARIABLES = ["object"] as const;

export interface WaitSpec {
  condition?: string;
  failureCondition?: string;
  timeout: string;
  outputs?: { [name: string]: string };
}

export interface PreparedWait {
  ref: ObjectRef;
  condition?: CompiledCondition;
  failureCondition?: CompiledCondition;
  timeoutMs: number;
  outputs: [string, CompiledExpression][];
}

/**
 * Tenant isolation: a step reads objects of its Application's namespace (or cluster-scoped
 * ones), never another tenant's; and never Secrets, whose values would land in the
 * Application's status through outputs (secretHeaders is the way to use a Secret).
 */
export function checkReadable(ref: ObjectRef, run: RunIdentity, fields: { apiVersion: string; kind: string; name: string; namespace: string }): void {
  checkObjectRef(ref, fields);
  if (ref.namespace !== run.namespace) {
    throw new InputError(`${fields.namespace}: "${ref.namespace}" is not the Application's namespace "${run.namespace}"; steps read objects only in their own Application's namespace`);
  }
  // Early and clear; server/kube/kube.ts refuses Secrets again by the resource discovery resolves.
  if (ref.kind === "Secret" && ref.apiVersion === "v1") {
    throw new InputError(`kind: steps do not read Secrets (their data would appear in the Application's status); reference Secrets with secretHeaders or credentials instead`);
  }
}

export function prepareWait(ref: ObjectRef, spec: WaitSpec): PreparedWait {
  const timeoutMs = parseDuration(spec.timeout, "timeout");
  if (timeoutMs <= 0 || timeoutMs > MAX_WAIT_MS) throw new InputError(`timeout: must be between 1ms and 24h, got "${spec.timeout}"`);
  for (const [field, value] of Object.entries({ apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name })) {
    if (!value) throw new InputError(`${field}: must not be empty`);
  }
  checkDeclaredOutputs(spec.outputs);
  const prepared: PreparedWait = {
    ref,
    timeoutMs,
    outputs: Object.entries(spec.outputs ?? {}).map(([name, src]) => [name, compileExpression(src, `outputs.${name}`, VARIABLES)]),
  };
  if (spec.condition) prepared.condition = compileCondition(spec.condition, "condition", VARIABLES);
  if (spec.failureCondition) prepared.failureCondition = compileCondition(spec.failureCondition, "failureCondition", VARIABLES);
  return prepared;
}

export function describeRef(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}${ref.cluster ? ` in cluster ${ref.cluster}` : ""}`;
}

/**
 * One look at the object: a final result, or the reason to keep waiting. Throws CelBusyError when
 * the CEL evaluators cannot take the expression now (the caller looks again shortly).
 */
export async function judgeObject(p: PreparedWait, obj: KubeObject | undefined): Promise<StepResult | string> {
  const what = describeRef(p.ref);
  if (!obj) return `waiting for ${what} to exist`;
  const vars = { object: obj };
  try {
    const failure = p.failureCondition;
    if (failure && (await failure.test(vars))) return { phase: "failed", message: `${what}: failureCondition \`${failure.source}\` is true` };
    let reason: string;
    if (p.condition) {
      if (!(await p.condition.test(vars))) return `waiting for ${what}: condition \`${p.condition.source}\` is false`;
      reason = `condition \`${p.condition.source}\` is true`;
    } else {
      const r = readiness(obj);
      if (r.failed) return { phase: "failed", message: `${what}: ${r.reason}` };
      if (!r.ready) return `waiting for ${what} to be ready: ${r.reason}`;
      reason = `ready (${r.reason})`;
    }
    const outputs: Record<string, unknown> = {};
    for (const [name, expr] of p.outputs) outputs[name] = await expr.evaluate(vars);
    return { phase: "succeeded", message: `${what}: ${reason}`, outputs };
  } catch (err) {
    // Fields such as status.readyReplicas appear only as the object converges: keep waiting.
    if (err instanceof ExpressionEvalError) return `waiting for ${what}: ${err.message}`;
    // Too expensive on this object; it would be as expensive on the next change.
    if (err instanceof ExpressionLimitError) return { phase: "failed", message: `${what}: ${err.message}` };
    throw err;
  }
}

/**
 * Judges the object on every change a shared watch reports (server/kube/object-watch.ts) rather than
 * on a timer: a condition that becomes true ends the step within milliseconds, and the API server
 * serves one watch per object instead of a GET per waiting step per poll interval.
 */
export async function waitForObject(ctx: StepContext, p: PreparedWait): Promise<StepResult> {
  const deadline = ctx.now() + p.timeoutMs;
  const feed = ctx.kube.watchObject(p.ref);
  try {
    for (;;) {
      const look = await feed.read();
      let verdict: StepResult | string;
      // The evaluators' queue was full: look again after a poll interval rather than at the next change.
      let busy = false;
      if (look.error === undefined) {
        try {
          verdict = await judgeObject(p, look.object);
        } catch (err) {
          if (!(err instanceof CelBusyError)) throw err;
          verdict = `waiting for ${describeRef(p.ref)}: ${err.message}; trying again`;
          busy = true;
        }
      } else if (look.error instanceof ForbiddenReadError || look.error instanceof RefusedReadError) throw look.error;
      else if (look.error instanceof UnknownKindError) verdict = `waiting: ${look.error.message} (check apiVersion and kind, or install its CRD)`;
      else verdict = `waiting for ${describeRef(p.ref)}: ${describeError(look.error)}`;
      if (typeof verdict !== "string") return verdict;
      if (ctx.now() >= deadline) {
        return { phase: "failed", message: `timed out after ${formatDuration(p.timeoutMs)}: ${verdict.replace(/^waiting/, "still waiting")}` };
      }
      ctx.progress(verdict);
      const left = Math.max(0, deadline - ctx.now());
      await feed.changed(look.version, busy ? Math.min(left, ctx.tuning.pollIntervalMs) : left, ctx.signal);
    }
  } finally {
    feed.close();
  }
}
