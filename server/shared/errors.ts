// Typed errors mapped to HTTP answers by one middleware (app.ts), so handlers just throw.
// Every message is written for the Application author: it says what to fix.

export class StepExecutorError extends Error {
  readonly status: number = 500;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request or a step parameter is invalid: the step fails at once (422). */
export class InputError extends StepExecutorError {
  override readonly status = 422;
}

/** Missing or wrong credentials (401). The message never says which part was wrong. */
export class AuthError extends StepExecutorError {
  override readonly status = 401;
}

/** Unknown route or step kind (404). */
export class NotFoundError extends StepExecutorError {
  override readonly status = 404;
}

/** The request body is larger than the executor accepts (413). */
export class PayloadTooLargeError extends StepExecutorError {
  override readonly status = 413;
}

/** The executor is shutting down and takes no new runs (503): KubeVela polls again later. */
export class UnavailableError extends StepExecutorError {
  override readonly status = 503;
}

/**
 * A failure that no retry can fix (bad configuration, a failure condition met): the run ends
 * `failed`. Anything else thrown by a step is treated as transient by the step itself.
 */
export class TerminalError extends StepExecutorError {}

/** Describes any thrown value in one line without a stack trace. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error && err.cause.message && !err.message.includes(err.cause.message)
      ? `: ${err.cause.message}` : "";
    return `${err.message}${cause}`;
  }
  return String(err);
}

export interface KubeApiError {
  code: number;
  reason: string;
  message: string;
  /** A 404 for a missing object (not a missing resource type). */
  objectNotFound: boolean;
}

/** Status code, reason and message of an API error; code 0 for transport errors and timeouts. */
export function apiError(err: unknown): KubeApiError {
  const e = err as { code?: unknown; body?: unknown; message?: string };
  if (typeof e?.code !== "number") return { code: 0, reason: "", message: describeError(err), objectNotFound: false };
  let body: { reason?: string; message?: string; details?: { name?: string } } | undefined;
  try {
    body = typeof e.body === "string" ? JSON.parse(e.body) : (e.body as typeof body);
  } catch { /* not JSON */ }
  return {
    code: e.code,
    reason: body?.reason ?? "",
    message: body?.message ?? e.message ?? "",
    objectNotFound: e.code === 404 && body?.reason === "NotFound" && !!body.details?.name,
  };
}
