// http-request: call an HTTP endpoint once per run, retrying transient failures, judging the
// answer with CEL conditions and exposing CEL outputs to later steps.
import { createHash } from "node:crypto";
import { CelBusyError, compileCondition, compileExpression, ExpressionEvalError, ExpressionLimitError, type CompiledCondition, type CompiledExpression } from "../../server/cel/cel.js";
import { parseDuration, formatDuration } from "../../server/shared/duration.js";
import { describeError, InputError, TerminalError } from "../../server/shared/errors.js";
import { ForbiddenAddressError, HostBusyError, httpClientDefaults, type OutboundResponse } from "../../server/outbound/http-client.js";
import { checkDeclaredOutputs, formatBytes } from "../../server/shared/outputs.js";
import { excerpt } from "../../server/shared/redact.js";
import { parseRetryAfter, retryDelay } from "../../server/shared/retry.js";
import type { SecretKeyRef } from "../../server/kube/secrets.js";
import { tokenCacheOf, TokenRefusedError, TokenUnavailableError, type ClientCredentials, type Token } from "../../server/outbound/oauth2.js";
import { schemas } from "../generated/index.js";
import type { HttpRequestParameter } from "../generated/http-request.js";
import type { StepContext, StepKind } from "../../server/contract/step.js";
import type { RunIdentity, StepResult } from "../../server/contract/run.js";
import { checkHeader } from "./headers.js";
import { resolveSecret } from "./lookups.js";
import { prepareOAuth2, type OAuth2 } from "./oauth2.js";
import { prepareSignature, signatureHeaders, type Signature } from "./signature.js";
import { closedAfterHandshake, prepareTls, resolveTls, tlsRefusal, type TlsRefs } from "./tls.js";
import { FOLLOW_VARIABLES, isNotYet, journaledCall, MAX_STATUS_REDIRECTS, prepareFollow, shown, statusUrl, whenFree, type AnswerVariable, type Follow, type Following } from "./follow.js";

/** Longest per-attempt timeout accepted: a step should not hold a connection for longer. */
export const MAX_ATTEMPT_TIMEOUT_MS = 10 * 60 * 1000;
/** How much of a response body a failure message quotes. */
export const BODY_EXCERPT_CHARS = 200;
const VARIABLES = ["response"] as const;

interface Prepared {
  method: string;
  url: URL;
  /** The URL as messages show it: no credentials, no query (it may hold tokens). */
  shownUrl: string;
  headers: Record<string, string>;
  secretHeaders: [string, SecretKeyRef][];
  body?: string;
  timeoutMs: number;
  maxAttempts: number;
  backoff: { initialMs: number; maxMs: number };
  successCondition?: CompiledCondition;
  failureCondition?: CompiledCondition;
  outputs: [string, CompiledExpression][];
  /** Sent as Idempotency-Key on POST and PATCH (unless set): the same for every attempt of the run. */
  idempotencyKey: string;
  signature?: Signature;
  tls?: TlsRefs;
  oauth2?: OAuth2;
  follow?: Follow;
}

/** What the run's journal holds: the attempt that may have been sent; with follow, where the status is once the call succeeded. */
interface Journal {
  attempt?: number;
  following?: Following;
}

/** The variable CEL expressions see: `response.status`, `response.headers['etag']`, `response.body.x`. */
export function responseVariable(res: OutboundResponse) {
  let body: unknown = res.body;
  if (/\bjson\b/i.test(res.headers["content-type"] ?? "") || /^\s*[[{]/.test(res.body)) {
    try { body = JSON.parse(res.body); } catch { /* not JSON after all: keep the text */ }
  }
  return { status: res.status, headers: res.headers, body };
}

function prepare(p: HttpRequestParameter, run: RunIdentity): Prepared {
  let url: URL;
  try {
    url = new URL(p.url);
  } catch {
    throw new InputError(`url: "${p.url}" is not a valid URL; use an absolute http:// or https:// URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InputError(`url: scheme "${url.protocol.slice(0, -1)}" is not supported; use http:// or https://`);
  }
  const timeoutMs = parseDuration(p.timeout, "timeout");
  if (timeoutMs <= 0 || timeoutMs > MAX_ATTEMPT_TIMEOUT_MS) throw new InputError(`timeout: must be between 1ms and ${formatDuration(MAX_ATTEMPT_TIMEOUT_MS)}, got "${p.timeout}"`);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(p.headers ?? {})) {
    checkHeader(name, `headers.${name}`);
    if (/[\r\n\0]/.test(value)) throw new InputError(`headers.${name}: the value must not contain line breaks`);
    headers[name] = value;
  }
  const secretHeaders = Object.entries(p.secretHeaders ?? {});
  for (const [name] of secretHeaders) checkHeader(name, `secretHeaders.${name}`);
  const tls = p.tls && prepareTls(p.tls, url);
  const oauth2 = p.oauth2 && prepareOAuth2(p.oauth2, [...Object.keys(headers), ...secretHeaders.map(([n]) => n)]);
  const signature = p.signature && prepareSignature(p.signature, [...Object.keys(headers), ...secretHeaders.map(([n]) => n)]);
  let body: string | undefined;
  if (typeof p.body === "string") body = p.body;
  else if (p.body !== undefined) {
    body = JSON.stringify(p.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) headers["Content-Type"] = "application/json";
  }
  if (body !== undefined && (p.method === "GET" || p.method === "HEAD")) {
    throw new InputError(`body: a ${p.method} request cannot have a body; use method POST, PUT or PATCH`);
  }
  const follow = p.follow && prepareFollow(p.follow, url);
  checkDeclaredOutputs(p.outputs);
  const outputs = Object.entries(p.outputs ?? {}).map(([name, src]): [string, CompiledExpression] => {
    if (name === "status") throw new InputError(`outputs.status: the name is reserved (the step always outputs the response status as "status")`);
    return [name, compileExpression(src, `outputs.${name}`, follow ? FOLLOW_VARIABLES : VARIABLES)];
  });
  const prepared: Prepared = {
    method: p.method,
    url,
    shownUrl: `${url.origin}${url.pathname}`,
    headers,
    secretHeaders,
    timeoutMs,
    maxAttempts: p.retries + 1,
    backoff: { initialMs: parseDuration(p.backoff, "backoff"), maxMs: parseDuration(p.maxBackoff, "maxBackoff") },
    outputs,
    idempotencyKey: createHash("sha256").update(`${run.namespace}/${run.application}/${run.step}/${run.session}`).digest("hex").slice(0, 32),
  };
  if (body !== undefined) prepared.body = body;
  if (signature) prepared.signature = signature;
  if (tls) prepared.tls = tls;
  if (oauth2) prepared.oauth2 = oauth2;
  if (follow) prepared.follow = follow;
  if (p.successCondition) prepared.successCondition = compileCondition(p.successCondition, "successCondition", VARIABLES);
  if (p.failureCondition) prepared.failureCondition = compileCondition(p.failureCondition, "failureCondition", VARIABLES);
  return prepared;
}

async function resolveSecretHeaders(ctx: StepContext, p: Prepared, deadline: number): Promise<Record<string, string>> {
  const headers = { ...p.headers };
  for (const [name, ref] of p.secretHeaders) {
    headers[name] = await resolveSecret(ctx, ref, { field: `secretHeaders.${name}`, what: `header ${name}` }, deadline);
  }
  return headers;
}

function isRetryable(status: number) {
  return status === 429 || status === 408 || status >= 500;
}

/** Status and a body excerpt of an answer already redacted; a step that sent secretHeaders withholds the body unless the operator allows it. */
function describeResponse(res: OutboundResponse, p: Prepared, ctx: StepContext): string {
  const status = `${res.status}${res.statusText ? " " + res.statusText : ""}`;
  const text = res.body.replace(/\s+/g, " ").trim();
  if (!text) return status;
  if (p.secretHeaders.length > 0 && !ctx.tuning.bodyExcerptWithSecrets) return `${status} (response body withheld: the request carried secretHeaders; the executor flag --body-excerpt-with-secrets quotes it)`;
  return `${status}: ${excerpt(text, BODY_EXCERPT_CHARS)}`;
}

/** Sends one request of the run with its headers, credentials, signature and TLS material; the answer redacted. */
type Sender = (method: string, url: URL, body: string | undefined, token: Token | undefined) => Promise<OutboundResponse>;

async function execute(ctx: StepContext, p: Prepared): Promise<StepResult> {
  const deadline = ctx.now() + ctx.tuning.secretWaitMs;
  const headers = await resolveSecretHeaders(ctx, p, deadline);
  const signingKey = p.signature && await resolveSecret(ctx, p.signature.ref, { field: "signature.secret", what: "the request signature" }, deadline);
  const tls = p.tls && await resolveTls(ctx, p.tls, deadline);
  const credentials: ClientCredentials | undefined = p.oauth2 && {
    namespace: ctx.run.namespace, tokenURL: p.oauth2.tokenURL, clientID: p.oauth2.clientID, scopes: p.oauth2.scopes, params: p.oauth2.params, authStyle: p.oauth2.authStyle,
    clientSecret: await resolveSecret(ctx, p.oauth2.clientSecret, { field: "oauth2.clientSecret", what: "the OAuth2 client secret" }, deadline),
  };
  const tokens = tokenCacheOf(ctx.http);
  // POST and PATCH carry an Idempotency-Key (unless set): the same for every attempt of the run.
  const keyed = !Object.keys(headers).some((h) => h.toLowerCase() === "idempotency-key");
  const send: Sender = async (method, url, body, token) => {
    const base = keyed && (method === "POST" || method === "PATCH") ? { ...headers, "Idempotency-Key": p.idempotencyKey } : headers;
    // Signed per request: a receiver that checks the time sees each one fresh.
    const authorized = token ? { ...base, Authorization: `Bearer ${token.accessToken}` } : base;
    const signed = p.signature && signingKey !== undefined ? { ...authorized, ...signatureHeaders(p.signature, signingKey, body, ctx.now()) } : authorized;
    // A handover lets a request in flight finish (effectSignal); only a hard stop aborts it.
    const req = { method, url, headers: signed, timeoutMs: p.timeoutMs, signal: ctx.effectSignal, ...(body !== undefined ? { body } : {}), ...(tls ? { tls } : {}) };
    // Redacted before anything reads it (messages, CEL): a target may echo the secretHeaders.
    return ctx.redact(await ctx.http.send(req));
  };
  /** A token for the next request: TerminalError when the provider refuses, a reason to retry when it is unavailable. */
  const tokenFor: TokenSource = async (what) => {
    if (!credentials) return undefined;
    try {
      const token = await tokens.token(credentials, ctx.effectSignal);
      ctx.secrets.register(token.accessToken);
      return token;
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (err instanceof TokenRefusedError) throw new TerminalError(`${what}: oauth2: ${err.message}; nothing was sent`);
      if (!(err instanceof TokenUnavailableError)) throw err;
      return `oauth2: ${err.message}`;
    }
  };
  const refuse = (token: Token) => { if (credentials) tokens.invalidate(credentials, token); };
  // The call succeeded on an executor that then stopped: go on following, never call again.
  const following = (ctx.journal.resumed as Journal | undefined)?.following;
  if (p.follow && following) {
    ctx.progress(`resumed following ${shown(new URL(following.url))} (the call succeeded before; not sending it again)`);
    return followStatus(ctx, p, p.follow, following, send, tokenFor, refuse);
  }
  const what = `${p.method} ${p.shownUrl}`;
  let renewedAfter401 = false;
  let last = "";
  let first = 1;
  // Another executor ran this before and stopped with attempt n recorded: the request may have
  // reached the server. It counts as an attempt whose answer was lost (docs/runs.md).
  const resumed = (ctx.journal.resumed as Journal | undefined)?.attempt;
  if (resumed) {
    last = `attempt ${resumed} may have reached the server, but the executor sending it stopped before recording the answer`;
    if (resumed >= p.maxAttempts) {
      return { phase: "failed", message: `${what}: ${last}; not sending it again (${p.maxAttempts} attempt${p.maxAttempts > 1 ? "s" : ""} allowed by retries) — check the server` };
    }
    first = resumed + 1;
    ctx.retrying(`attempt ${resumed}/${p.maxAttempts}: ${what}: ${last}; retrying`);
  }
  for (let attempt = first; attempt <= p.maxAttempts; attempt++) {
    let res: OutboundResponse | undefined;
    let retryAfterMs: number | undefined;
    // The token first: nothing is sent to the target without one.
    const token = await tokenFor(what);
    if (typeof token === "string") {
      last = token;
      if (attempt === p.maxAttempts) break;
      const delay = retryDelay(attempt, p.backoff, undefined);
      ctx.retrying(`attempt ${attempt}/${p.maxAttempts}: ${what}: ${last}; nothing was sent; retrying in ${formatDuration(delay)}`);
      await ctx.sleep(delay);
      continue;
    }
    // Intent before the side effect: from here on, attempt n may have been sent.
    await ctx.journal.record({ attempt } satisfies Journal);
    try {
      res = await send(p.method, p.url, p.body, token);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      last = sendFailure(err, p, what);
    }
    if (res) {
      const verdict = await judgeWhenFree(ctx, p, res);
      if (verdict?.phase === "succeeded" && p.follow) return startFollowing(ctx, p, p.follow, res, attempt, send, tokenFor, refuse);
      if (verdict) return verdict;
      last = describeResponse(res, p, ctx);
      // A cached token the API refuses (revoked, keys rotated) is renewed once, and the same
      // attempt sent again at once: a 401 was not acted on, so this costs no attempt.
      if (res.status === 401 && credentials && token && !renewedAfter401) {
        refuse(token);
        renewedAfter401 = true;
        ctx.progress(`${what} answered 401 to the OAuth2 token; getting a new one`);
        attempt--;
        continue;
      }
      if (!isRetryable(res.status)) {
        const why = p.successCondition ? ` (successCondition \`${p.successCondition.source}\` is false)` : "";
        return { phase: "failed", message: `${what} answered ${last}${why}` };
      }
      retryAfterMs = parseRetryAfter(res.headers["retry-after"], ctx.now());
    }
    if (attempt === p.maxAttempts) break;
    const delay = retryDelay(attempt, p.backoff, retryAfterMs);
    ctx.retrying(`attempt ${attempt}/${p.maxAttempts}: ${what}: ${last}; retrying in ${formatDuration(delay)}`);
    await ctx.sleep(delay);
  }
  return { phase: "failed", message: `${what} failed after ${p.maxAttempts} attempt${p.maxAttempts > 1 ? "s" : ""}; last error: ${last}` };
}

/** Why a request was not answered, as a message; TerminalError when trying again cannot help. */
function sendFailure(err: unknown, p: Prepared, what: string): string {
  if (err instanceof ForbiddenAddressError) throw new TerminalError(`${what}: ${err.message}`);
  // Trying again would meet the same certificate: fail now, saying what to set.
  const refused = tlsRefusal(err, p.tls);
  if (refused) throw new TerminalError(`${what}: ${refused}`);
  // Not sent: too many requests to this host at once; retried like a network error.
  return err instanceof HostBusyError ? err.message : networkError(err, p.timeoutMs) + closedAfterHandshake(err, p.url, p.tls);
}

/** The call succeeded: find where its status is, journal it (the call is done for good), and follow it. */
async function startFollowing(ctx: StepContext, p: Prepared, f: Follow, res: OutboundResponse, attempt: number, send: Sender, tokenFor: TokenSource, refuse: (token: Token) => void): Promise<StepResult> {
  const what = `${p.method} ${p.shownUrl} answered ${res.status}`;
  const call = responseVariable(res);
  let url = f.url;
  if (!url) {
    let text: unknown;
    if (f.urlFrom) {
      try {
        text = await whenFree(() => f.urlFrom!.evaluate({ response: ctx.redact(call) }), (m) => ctx.progress(`${what}; ${m}, trying again`), () => ctx.sleep(ctx.tuning.pollIntervalMs));
      } catch (err) {
        if (isNotYet(err)) return { phase: "failed", message: `${what}, but ${err.message}` };
        throw err;
      }
    } else {
      text = res.headers["location"];
    }
    if (typeof text !== "string" || text === "") {
      return { phase: "failed", message: `${what}, but gave no status URL to follow (${f.urlFrom ? `follow.urlFrom \`${f.urlFrom.source}\` is not a non-empty string` : "no Location header; set follow.urlFrom or follow.url"})` };
    }
    try {
      url = statusUrl(text, p.url, "follow.urlFrom");
    } catch (err) {
      return { phase: "failed", message: `${what}, but ${(err as Error).message}` };
    }
    // A status URL from an answer gets the step's credentials only on the call's own host.
    if (url.origin !== p.url.origin) {
      return { phase: "failed", message: `${what}, but its status URL ${shown(url)} is on another host than the call; the step sends its credentials only to ${p.url.origin} (set follow.url if that host is meant)` };
    }
  }
  const following: Following = { url: url.href, call: journaledCall(call), since: ctx.now() };
  await ctx.journal.record({ attempt, following } satisfies Journal);
  return followStatus(ctx, p, f, following, send, tokenFor, refuse);
}

/** The OAuth2 token for a request (undefined without oauth2); a string says why there is none yet (retry). */
type TokenSource = (what: string) => Promise<Token | string | undefined>;

/** Polls the status URL until a follow condition holds or follow.timeout passes. */
async function followStatus(ctx: StepContext, p: Prepared, f: Follow, following: Following, send: Sender, tokenFor: TokenSource, refuse: (token: Token) => void): Promise<StepResult> {
  let url = new URL(following.url);
  const call = following.call;
  const until = following.since + f.timeoutMs;
  let lastAnswer = "no answer yet";
  let notYet = "";
  for (;;) {
    const where = `following ${shown(url)}`;
    // One status answer, retried like the call on network errors, 5xx and 429; same-host redirects followed.
    let res: OutboundResponse | undefined;
    let retryAfterMs: number | undefined;
    let last = "";
    for (let attempt = 1, redirects = 0, renewed = false; attempt <= p.maxAttempts; attempt++) {
      const token = await tokenFor(where);
      if (typeof token === "string") last = token;
      else {
        try {
          res = await send("GET", url, undefined, token);
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          last = sendFailure(err, p, where);
        }
      }
      if (res && res.status >= 300 && res.status < 400 && res.headers["location"] && redirects < MAX_STATUS_REDIRECTS) {
        const next = new URL(res.headers["location"], url);
        if (next.origin !== url.origin) return { phase: "failed", message: `${where}: it redirects to ${shown(next)}, another host; the step follows redirects only on the same host` };
        url = next;
        redirects++;
        attempt--;
        res = undefined;
        continue;
      }
      // As for the call: a refused OAuth2 token is renewed once and the poll sent again.
      if (res?.status === 401 && token && typeof token !== "string" && !renewed) {
        refuse(token);
        renewed = true;
        attempt--;
        res = undefined;
        continue;
      }
      if (res && !isRetryable(res.status)) break;
      if (res) {
        last = describeResponse(res, p, ctx);
        retryAfterMs = parseRetryAfter(res.headers["retry-after"], ctx.now());
        res = undefined;
      }
      if (attempt === p.maxAttempts) return { phase: "failed", message: `${where}: failed after ${p.maxAttempts} attempt${p.maxAttempts > 1 ? "s" : ""}; last error: ${last}` };
      const delay = retryDelay(attempt, p.backoff, retryAfterMs);
      ctx.progress(`${where}: ${last}; retrying in ${formatDuration(delay)}`);
      await ctx.sleep(delay);
    }
    const answer = res!;
    lastAnswer = describeResponse(answer, p, ctx);
    const vars = { call, response: ctx.redact(responseVariable(answer)) as AnswerVariable };
    const busy = (m: string) => ctx.progress(`${where}: ${m}, trying again`);
    const pause = () => ctx.sleep(ctx.tuning.pollIntervalMs);
    const test = async (c: typeof f.successCondition | undefined): Promise<boolean> => {
      if (!c) return false;
      try {
        return await whenFree(() => c.test(vars), busy, pause);
      } catch (err) {
        if (!isNotYet(err)) throw err;
        notYet = err.message;
        return false;
      }
    };
    notYet = "";
    if (await test(f.failureCondition)) {
      return { phase: "failed", message: `${where}: follow.failureCondition \`${f.failureCondition!.source}\` is true; the status answered ${lastAnswer}` };
    }
    if (await test(f.successCondition)) {
      try {
        const outputs: Record<string, unknown> = { status: call.status };
        for (const [name, expr] of p.outputs) outputs[name] = await whenFree(() => expr.evaluate(vars), busy, pause);
        return { phase: "succeeded", message: `${p.method} ${p.shownUrl} answered ${call.status}; ${where}: done (${await progressOf(f, vars, answer)})`, outputs };
      } catch (err) {
        if (isNotYet(err)) return { phase: "failed", message: `${where}: done, but ${err.message}` };
        throw err;
      }
    }
    if (answer.status >= 300) { // a 4xx, or a 3xx not followed (no Location, or past MAX_STATUS_REDIRECTS)
      return { phase: "failed", message: `${where}: the status answered ${lastAnswer}${notYet ? ` (${notYet})` : ""}` };
    }
    if (f.nextUrlFrom) {
      let next: unknown;
      try { next = await whenFree(() => f.nextUrlFrom!.evaluate(vars), busy, pause); } catch (err) { if (!isNotYet(err)) throw err; notYet = err.message; }
      if (typeof next === "string" && next !== "") {
        const moved = statusUrl(next, url, "follow.nextUrlFrom");
        if (moved.origin !== url.origin && !f.url) return { phase: "failed", message: `${where}: follow.nextUrlFrom points at ${shown(moved)}, another host; the step sends its credentials only to ${url.origin}` };
        if (moved.href !== url.href) {
          url = moved;
          await ctx.journal.record({ following: { ...following, url: url.href } } satisfies Journal);
        }
      }
    }
    const now = ctx.now();
    if (now >= until) {
      return { phase: "failed", message: `${where}: not done after ${formatDuration(f.timeoutMs)} (follow.timeout); the status answered ${lastAnswer}${notYet ? ` (${notYet})` : ""}` };
    }
    ctx.progress(`${p.method} ${p.shownUrl} answered ${call.status}; following ${shown(url)}: ${await progressOf(f, vars, answer)}${notYet ? ` (${notYet})` : ""}`);
    await ctx.sleep(Math.min(until - now, parseRetryAfter(answer.headers["retry-after"], now) ?? f.intervalMs));
  }
}

/** The state follow.progress gives for vela status, else the status answer's code. */
async function progressOf(f: Follow, vars: { call: AnswerVariable; response: AnswerVariable }, res: OutboundResponse): Promise<string> {
  if (!f.progress) return `${res.status}${res.statusText ? " " + res.statusText : ""}`;
  try {
    const v = await f.progress.evaluate(vars);
    return excerpt(typeof v === "string" ? v : JSON.stringify(v), 120);
  } catch {
    return `${res.status}${res.statusText ? " " + res.statusText : ""}`;
  }
}

/** Failure beats success; with no successCondition a 2xx succeeds. Undefined means "not decided". */
async function judge(p: Prepared, res: OutboundResponse, ctx: StepContext): Promise<StepResult | undefined> {
  const what = `${p.method} ${p.shownUrl}`;
  // Again after parsing: JSON escapes (\u0041) may have hidden a secret from the raw text's redaction.
  const vars = { response: ctx.redact(responseVariable(res)) };
  try {
    const failure = p.failureCondition;
    if (failure && (await failure.test(vars))) {
      return { phase: "failed", message: `${what}: failureCondition \`${failure.source}\` is true; the server answered ${describeResponse(res, p, ctx)}` };
    }
    const ok = p.successCondition ? await p.successCondition.test(vars) : res.status >= 200 && res.status < 300;
    if (!ok) return undefined;
    // With follow, the call's success only starts following; outputs come at the end (they may use `call` and `response`).
    if (p.follow) return { phase: "succeeded", message: `${what} answered ${res.status}`, outputs: {} };
    const outputs: Record<string, unknown> = { status: res.status };
    for (const [name, expr] of p.outputs) outputs[name] = await expr.evaluate(vars);
    return { phase: "succeeded", message: `${what} answered ${res.status}${res.statusText ? " " + res.statusText : ""}`, outputs };
  } catch (err) {
    if (err instanceof ExpressionEvalError || err instanceof ExpressionLimitError) {
      // A body cut at the size limit is text, not JSON: say so rather than "field not found".
      const cut = res.truncated && typeof vars.response.body === "string" ? `; the response body is larger than ${formatBytes(httpClientDefaults.maxResponseBytes)} and was cut there, so it is text, not JSON` : "";
      return { phase: "failed", message: `${what} answered ${res.status}, but ${err.message}${cut}` };
    }
    throw err;
  }
}

/** The answer is in hand and must not be asked for again: when the CEL evaluators are busy, wait for them. */
async function judgeWhenFree(ctx: StepContext, p: Prepared, res: OutboundResponse): Promise<StepResult | undefined> {
  return whenFree(() => judge(p, res, ctx), (m) => ctx.progress(`${p.method} ${p.shownUrl} answered ${res.status}; ${m}, trying again`), () => ctx.sleep(ctx.tuning.pollIntervalMs));
}

function networkError(err: unknown, timeoutMs: number): string {
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError" || e.code === "UND_ERR_HEADERS_TIMEOUT" || e.code === "UND_ERR_BODY_TIMEOUT") {
    return `no answer within ${formatDuration(timeoutMs)} (timeout)`;
  }
  const code = e.code ?? e.cause?.code;
  const detail = describeError(err);
  return code && !detail.includes(code) ? `${code} ${detail}` : detail;
}

export const httpRequest: StepKind<HttpRequestParameter, Prepared> = {
  kind: "http-request",
  description: "Call an HTTP endpoint with retries, CEL success/failure conditions and outputs",
  schema: schemas["http-request"],
  prepare,
  execute,
};
