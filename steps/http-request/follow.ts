// http-request's `follow`: after the call succeeded, poll the status URL it answered (Location, or
// a CEL expression over the answer) until a condition holds. The call is never sent again: where
// to poll and what the call answered are in the run's journal, so an executor that takes the run
// over goes on polling (docs/runs.md).
import { CelBusyError, compileCondition, compileExpression, ExpressionEvalError, type CompiledCondition, type CompiledExpression } from "../../server/cel/cel.js";
import { formatDuration, parseDuration } from "../../server/shared/duration.js";
import { InputError } from "../../server/shared/errors.js";
import { excerpt } from "../../server/shared/redact.js";
import type { HttpRequestParameter } from "../generated/http-request.js";

/** Variables of follow's expressions (and of outputs, with follow): the call's answer and the latest status answer. */
export const FOLLOW_VARIABLES = ["call", "response"] as const;
/** Longest follow.timeout accepted. */
export const MAX_FOLLOW_TIMEOUT_MS = 24 * 60 * 60 * 1000;
/** Shortest follow.interval accepted: a status URL is somebody's server. */
export const MIN_FOLLOW_INTERVAL_MS = 1_000;
/** Redirects of one status poll followed (same host only). */
export const MAX_STATUS_REDIRECTS = 5;
/** The call's answer kept in the journal for `call`; a larger body is dropped there (`call.body` is then null). */
export const MAX_JOURNALED_CALL_BYTES = 16 * 1024;

export interface Follow {
  /** Given in the parameters: credentials may go there even on another host, since the user wrote it. */
  url?: URL;
  urlFrom?: CompiledExpression;
  nextUrlFrom?: CompiledExpression;
  successCondition: CompiledCondition;
  failureCondition?: CompiledCondition;
  progress?: CompiledExpression;
  intervalMs: number;
  timeoutMs: number;
}

/** What follow's expressions see of an answer: status, lower-case headers, the body parsed when JSON. */
export interface AnswerVariable {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** The journal's state while following: enough to go on after a takeover without sending the call again. */
export interface Following {
  url: string;
  call: AnswerVariable;
  /** When the call was answered (epoch ms): follow.timeout counts from here. */
  since: number;
}

export function prepareFollow(f: NonNullable<HttpRequestParameter["follow"]>, callUrl: URL): Follow {
  const intervalMs = parseDuration(f.interval, "follow.interval");
  if (intervalMs < MIN_FOLLOW_INTERVAL_MS) throw new InputError(`follow.interval: must be at least ${formatDuration(MIN_FOLLOW_INTERVAL_MS)}, got "${f.interval}"`);
  const timeoutMs = parseDuration(f.timeout, "follow.timeout");
  if (timeoutMs <= 0 || timeoutMs > MAX_FOLLOW_TIMEOUT_MS) throw new InputError(`follow.timeout: must be between 1ms and ${formatDuration(MAX_FOLLOW_TIMEOUT_MS)}, got "${f.timeout}"`);
  if (f.url !== undefined && f.urlFrom !== undefined) throw new InputError("follow: set url or urlFrom, not both");
  const follow: Follow = { successCondition: compileCondition(f.successCondition, "follow.successCondition", FOLLOW_VARIABLES), intervalMs, timeoutMs };
  if (f.url !== undefined) follow.url = statusUrl(f.url, callUrl, "follow.url");
  if (f.urlFrom !== undefined) follow.urlFrom = compileExpression(f.urlFrom, "follow.urlFrom", ["response"]);
  if (f.nextUrlFrom !== undefined) follow.nextUrlFrom = compileExpression(f.nextUrlFrom, "follow.nextUrlFrom", FOLLOW_VARIABLES);
  if (f.failureCondition !== undefined) follow.failureCondition = compileCondition(f.failureCondition, "follow.failureCondition", FOLLOW_VARIABLES);
  if (f.progress !== undefined) follow.progress = compileExpression(f.progress, "follow.progress", FOLLOW_VARIABLES);
  return follow;
}

/** An http(s) URL, absolute or relative to `base`; InputError naming `field` otherwise. */
export function statusUrl(text: string, base: URL, field: string): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    throw new InputError(`${field}: "${excerpt(text, 200)}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InputError(`${field}: scheme "${url.protocol.slice(0, -1)}" is not supported; the status URL must be http:// or https://`);
  return url;
}

/** The URL as messages show it: no credentials, no query (it may hold tokens). */
export function shown(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** The call's answer as the journal keeps it: a body past MAX_JOURNALED_CALL_BYTES is dropped. */
export function journaledCall(call: AnswerVariable): AnswerVariable {
  return JSON.stringify(call).length <= MAX_JOURNALED_CALL_BYTES ? call : { ...call, body: null };
}

/** Evaluates one of follow's expressions, waiting while the CEL evaluators are busy (the answer is in hand). */
export async function whenFree<T>(evaluate: () => Promise<T>, busy: (message: string) => void, sleep: () => Promise<void>): Promise<T> {
  for (;;) {
    try {
      return await evaluate();
    } catch (err) {
      if (!(err instanceof CelBusyError)) throw err;
      busy(err.message);
      await sleep();
    }
  }
}

/** An evaluation that failed on this answer (a field the status does not have yet): not decided, say why. */
export function isNotYet(err: unknown): err is ExpressionEvalError {
  return err instanceof ExpressionEvalError;
}
