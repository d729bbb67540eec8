// Retry timing in one place: exponential backoff with full jitter, capped, and Retry-After.

export interface BackoffOptions {
  /** Delay before the first retry, in ms; doubles on each retry. */
  initialMs: number;
  /** Upper bound of any computed delay, in ms. */
  maxMs: number;
  /** Longest Retry-After the server may ask for before we stop honouring it verbatim. */
  maxRetryAfterMs: number;
  /** Source of randomness, replaceable in tests. */
  random: () => number;
}

export const backoffDefaults = {
  initialMs: 1000,
  maxMs: 30_000,
  maxRetryAfterMs: 120_000,
  random: Math.random,
} satisfies BackoffOptions;

/**
 * Delay before retry number `retry` (1-based): a uniformly random value in [d/2, d] where
 * d = min(maxMs, initialMs * 2^(retry-1)) — jitter keeps many steps from retrying in lockstep,
 * the lower half-bound keeps the delay meaningful. A server's Retry-After wins when given.
 */
export function retryDelay(retry: number, options: Partial<BackoffOptions> = {}, retryAfterMs?: number): number {
  const o: BackoffOptions = { ...backoffDefaults, ...options };
  if (retryAfterMs !== undefined && retryAfterMs >= 0) return Math.min(retryAfterMs, o.maxRetryAfterMs);
  const d = Math.min(o.maxMs, o.initialMs * 2 ** Math.max(0, retry - 1));
  return Math.round(d / 2 + o.random() * (d / 2));
}

/** Parses a Retry-After header: delta-seconds or an HTTP date. Undefined when absent or invalid. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Resolves after `ms`, or rejects early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Rejects after `timeoutMs` (the call itself is not cancelled; its answer is ignored). */
export async function timed<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer from the API server within ${timeoutMs} ms`)), timeoutMs);
    })]);
  } finally {
    clearTimeout(timer);
  }
}
