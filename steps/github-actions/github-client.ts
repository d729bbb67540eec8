// GitHub REST API access in one place: octokit clients (token or GitHub App credentials, a pinned
// API version, retry and rate-limit throttling), cached per apiURL + credentials, and one shared
// poller per repository that follows the runs waiting steps care about with conditional requests
// at a rate-limit-aware interval.
import { createHash } from "node:crypto";
import { createHttpClient, ForbiddenAddressError, type HttpClient, type HttpClientOptions } from "../../server/outbound/http-client.js";
import { excerpt } from "../../server/shared/redact.js";

/** The REST API version every request asks for; GHES 3.20 knows only this one. */
export const GITHUB_API_VERSION = "2022-11-28";
/** Runs created this long before the dispatch still count as ours (clock skew between us and GitHub). */
export const CLOCK_SKEW_MS = 60_000;
/** Largest page GitHub serves. */
const MAX_PAGE_SIZE = 100;

export interface GithubOptions {
  /** Sent as the User-Agent prefix (GitHub requires one). */
  userAgent: string;
  /** How often one repository's poller asks GitHub about the runs it follows. */
  pollIntervalMs: number;
  /** How often it looks while a step searches for a run GitHub did not name (runs appear within seconds). */
  searchIntervalMs: number;
  /** Longest interval the poller backs off to after errors. */
  maxPollIntervalMs: number;
  /** Fraction of the interval added or removed at random, so pollers do not fire in lockstep. */
  jitter: number;
  /** Primary rate-limit requests left untouched; below it the poller waits for the reset. */
  rateLimitReserve: number;
  /** Page size of the list call that covers several followed runs at once (plus one per run). */
  listPageSize: number;
  /** One HTTP exchange may take this long. */
  requestTimeoutMs: number;
  /** plugin-retry: retries of a request that may be repeated (never the dispatch) on 5xx/network errors. */
  retries: number;
  /** plugin-retry: its delay unit, (n+1)^2 units before retry n. */
  retryBaseMs: number;
  /** plugin-throttling: retries of a rate-limited request (GitHub did not process it). */
  rateLimitRetries: number;
  /** plugin-throttling: the unit of Retry-After / reset waits (1000 = honour them verbatim). */
  throttleBaseMs: number;
  /** A primary rate-limit reset further away than this is not waited for inside a request. */
  maxRateLimitWaitMs: number;
  /** GitHub App installation tokens are replaced this long before they expire. */
  tokenRefreshMarginMs: number;
  /** Clients unused for this long are dropped (their tokens and ETag caches with them). */
  clientIdleMs: number;
  /** The outbound policy and limits of the hub's own HttpClient, when it is not given one. */
  outbound: Partial<HttpClientOptions>;
  /** Warnings from octokit (deprecations, retries). */
  warn: (message: string) => void;
  /** Told GitHub's x-ratelimit-resource header (null when absent) and x-ratelimit-remaining of every answer that has them (metrics). */
  onRateLimit: (resource: string | null, remaining: number) => void;
  now: () => number;
  random: () => number;
}

export const githubDefaults = {
  userAgent: "step-executor-github-actions",
  pollIntervalMs: 10_000,
  searchIntervalMs: 3_000,
  maxPollIntervalMs: 120_000,
  jitter: 0.1,
  rateLimitReserve: 100,
  listPageSize: 20,
  requestTimeoutMs: 30_000,
  retries: 3,
  retryBaseMs: 1_000,
  rateLimitRetries: 2,
  throttleBaseMs: 1_000,
  maxRateLimitWaitMs: 15 * 60_000,
  tokenRefreshMarginMs: 5 * 60_000,
  clientIdleMs: 60 * 60_000,
  outbound: {},
  warn: () => {},
  onRateLimit: () => {},
  now: Date.now,
  random: Math.random,
} satisfies GithubOptions;

export type GithubCredentials =
  | { kind: "token"; token: string }
  | { kind: "app"; appId: string; privateKey: string; installationId: number };

/** The fields of a workflow run the step uses; ids as decimal strings (GitHub's are int64). */
export interface WorkflowRun {
  id: string;
  status: string;
  conclusion: string | null;
  htmlUrl: string;
  name: string;
  displayTitle: string;
  event: string;
  createdAt: number;
  runAttempt: number;
}

/** Why a GitHub call failed, in the terms the step decides on. */
export interface GithubFailure {
  /** HTTP status; 0 when no answer came back (network error, timeout). */
  status: number;
  /** GitHub's own message (`message` of the error body), or the network error. */
  message: string;
  /** A rate limit refused it (primary: remaining 0; secondary: the message says so). */
  rateLimited: boolean;
  /** Milliseconds GitHub asked us to wait (Retry-After, or until x-ratelimit-reset). */
  retryAfterMs?: number;
  /** The request provably never left (connection refused, DNS failure, refused address). */
  notSent: boolean;
  /** The executor's outbound policy refused the address (nothing was sent; retrying cannot help). */
  forbidden?: boolean;
}

/** How much of GitHub's error message a failure quotes (long enough for a 422's list of unexpected inputs). */
const MESSAGE_EXCERPT_CHARS = 1000;

const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT", "ERR_FORBIDDEN_ADDRESS", "ERR_HOST_BUSY"]);

/** Classifies anything octokit throws. */
export function describeGithubError(err: unknown, now: number = Date.now()): GithubFailure {
  const e = err as { status?: unknown; message?: string; response?: { status: number; headers: Record<string, string | undefined>; data?: unknown }; cause?: unknown };
  const res = e?.response;
  if (res && typeof res.status === "number") {
    const data = res.data as { message?: unknown } | string | undefined;
    // Cut: the server may be the tenant's (apiURL) and answer anything; the Redactor masks a token cut at the "...".
    const text = typeof data === "object" && data && typeof data.message === "string" ? data.message
      : typeof data === "string" && data.trim() && !/^\s*</.test(data) ? data.trim() : (statusText(res.status));
    const message = excerpt(text, MESSAGE_EXCERPT_CHARS);
    const h = res.headers ?? {};
    const secondary = /\bsecondary rate\b/i.test(message);
    const primary = (res.status === 403 || res.status === 429) && h["x-ratelimit-remaining"] === "0";
    let retryAfterMs: number | undefined;
    if (h["retry-after"] && /^\d+$/.test(h["retry-after"])) retryAfterMs = Number(h["retry-after"]) * 1000;
    else if (primary && h["x-ratelimit-reset"]) retryAfterMs = Math.max(0, Number(h["x-ratelimit-reset"]) * 1000 - now);
    const failure: GithubFailure = { status: res.status, message, rateLimited: secondary || primary || res.status === 429, notSent: false };
    if (retryAfterMs !== undefined) failure.retryAfterMs = retryAfterMs;
    return failure;
  }
  for (let c = err as { cause?: unknown } | undefined, depth = 0; c && depth < 5; c = c.cause as typeof c, depth++) {
    if (c instanceof ForbiddenAddressError) return { status: 0, message: c.message, rateLimited: false, notSent: true, forbidden: true };
  }
  const code = networkCode(err);
  const message = e?.message ?? String(err);
  return { status: 0, message: code && !message.includes(code) ? `${code} ${message}` : message, rateLimited: false, notSent: code !== undefined && NOT_SENT_CODES.has(code) };
}

function networkCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

function statusText(status: number): string {
  return { 304: "Not Modified", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" }[status] ?? `HTTP ${status}`;
}

export function toWorkflowRun(raw: Record<string, unknown>): WorkflowRun {
  return {
    id: String(raw.id),
    status: String(raw.status ?? "unknown"),
    conclusion: raw.conclusion == null ? null : String(raw.conclusion),
    htmlUrl: String(raw.html_url ?? ""),
    name: String(raw.name ?? ""),
    displayTitle: String(raw.display_title ?? ""),
    event: String(raw.event ?? ""),
    createdAt: Date.parse(String(raw.created_at ?? "")) || 0,
    runAttempt: Number(raw.run_attempt ?? 1),
  };
}

/** Rate-limit state of one credential, from the x-ratelimit-* headers of its latest answer. */
export interface RateState {
  limit?: number;
  remaining?: number;
  /** Epoch ms. */
  resetAt?: number;
  /** A secondary limit asked us to hold off until then (epoch ms). */
  holdUntil?: number;
}

/**
 * Octokit and its plugins, imported when the first github-actions step needs a client: they cost
 * the executor memory and start-up time even when no step uses GitHub.
 */
async function importOctokit() {
  const [{ Octokit }, { retry }, { throttling }, { createAppAuth }] = await Promise.all([
    import("@octokit/core"),
    import("@octokit/plugin-retry"),
    import("@octokit/plugin-throttling"),
    import("@octokit/auth-app"),
  ]);
  return { GithubOctokit: Octokit.plugin(retry, throttling), createAppAuth };
}
type OctokitModules = Awaited<ReturnType<typeof importOctokit>>;
type GithubOctokitInstance = InstanceType<OctokitModules["GithubOctokit"]>;

let octokitModules: Promise<OctokitModules> | undefined;
function loadOctokit(): Promise<OctokitModules> {
  // A failed import is not cached, so the next step tries again.
  return (octokitModules ??= importOctokit().catch((err: unknown) => {
    octokitModules = undefined;
    throw err;
  }));
}

/** One credential against one API: an octokit instance, its rate-limit state, ETag cache and pollers. */
export class GithubClient {
  readonly octokit: GithubOctokitInstance;
  /** Every HTTP exchange with GitHub (retries and token requests included); 304s counted apart too. */
  readonly stats = { requests: 0, notModified: 0 };
  readonly rate: RateState = {};
  lastUsed: number;
  private readonly etags = new Map<string, { key: string; etag: string; data: unknown }>();
  private readonly pollers = new Map<string, RepoPoller>();
  /** Facts learned from GitHub's refusals: `runDetails` (return_run_details unsupported) and `distinctId:<o/r/wf>`. */
  private readonly learned = new Map<string, number>();

  constructor(
    readonly apiURL: string,
    credentials: GithubCredentials,
    readonly options: GithubOptions,
    fetchImpl: typeof fetch,
    throttleId: string,
    { GithubOctokit, createAppAuth }: OctokitModules,
  ) {
    this.lastUsed = options.now();
    const countingFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      this.stats.requests++;
      // The timeout is per exchange, so rate-limit and retry waits between exchanges do not eat it.
      const timeout = AbortSignal.timeout(options.requestTimeoutMs);
      const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      // Pinned here, below octokit, so auth-app's own token requests carry it too.
      const headers = { ...(init?.headers as Record<string, string> | undefined), "x-github-api-version": GITHUB_API_VERSION };
      const res = await fetchImpl(url, { ...init, headers, signal });
      this.recordRate(res.headers);
      if (res.status === 304) this.stats.notModified++;
      return res;
    }) as typeof fetch;
    const o = options;
    const auth = credentials.kind === "token"
      ? { auth: credentials.token }
      : {
          authStrategy: createAppAuth,
          auth: {
            appId: credentials.appId,
            privateKey: credentials.privateKey,
            installationId: credentials.installationId,
            cache: expiryAwareCache(o.tokenRefreshMarginMs, o.now),
          },
        };
    this.octokit = new GithubOctokit({
      baseUrl: apiURL,
      userAgent: o.userAgent,
      ...auth,
      request: { fetch: countingFetch },
      log: { debug: () => {}, info: () => {}, warn: o.warn, error: o.warn },
      retry: { retries: o.retries, retryAfterBaseValue: o.retryBaseMs, doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451] },
      throttle: {
        id: throttleId,
        retryAfterBaseValue: o.throttleBaseMs,
        onSecondaryRateLimit: (retryAfter: number, _opts: unknown, _o: unknown, retryCount: number) => {
          this.rate.holdUntil = o.now() + retryAfter * o.throttleBaseMs;
          return retryCount < o.rateLimitRetries;
        },
        onRateLimit: (retryAfter: number, _opts: unknown, _o: unknown, retryCount: number) =>
          retryCount < o.rateLimitRetries && retryAfter * o.throttleBaseMs <= o.maxRateLimitWaitMs,
      },
    });
  }

  private recordRate(h: Headers) {
    const remaining = h.get("x-ratelimit-remaining");
    const reset = h.get("x-ratelimit-reset");
    const limit = h.get("x-ratelimit-limit");
    if (remaining !== null && /^\d+$/.test(remaining)) {
      this.rate.remaining = Number(remaining);
      this.options.onRateLimit(h.get("x-ratelimit-resource"), this.rate.remaining);
    }
    if (reset !== null && /^\d+$/.test(reset)) this.rate.resetAt = Number(reset) * 1000;
    if (limit !== null && /^\d+$/.test(limit)) this.rate.limit = Number(limit);
  }

  /**
   * A GET answered from the ETag cache when GitHub says 304 Not Modified (free of primary limit).
   * `project` keeps what the callers read: the cache holds that, not GitHub's whole answer (a page
   * of 100 workflow runs is ~1 MB of JSON, most of it repository objects).
   */
  async getCached<T>(route: string, params: Record<string, unknown>, project: (data: unknown) => T, signal?: AbortSignal): Promise<T> {
    this.lastUsed = this.options.now();
    const key = `${route} ${JSON.stringify(params)}`;
    // One entry per resource: a list asked for with another page size replaces the older page (the
    // page size grows with the runs followed, and every size would otherwise keep a page).
    const { per_page: _pageSize, ...resource } = params;
    const slot = `${route} ${JSON.stringify(resource)}`;
    const entry = this.etags.get(slot);
    const cached = entry?.key === key ? entry : undefined;
    try {
      const res = await this.octokit.request(route, {
        ...params,
        headers: cached ? { "if-none-match": cached.etag } : {},
        ...(signal ? { request: { signal } } : {}),
      });
      const etag = res.headers.etag;
      const data = project(res.data);
      this.etags.delete(slot);
      if (etag) {
        this.etags.set(slot, { key, etag, data });
        if (this.etags.size > 500) this.etags.delete(this.etags.keys().next().value!);
      }
      return data;
    } catch (err) {
      if ((err as { status?: number }).status === 304 && cached) return cached.data as T;
      throw err;
    }
  }

  /** A POST that is never repeated by plugin-retry (a dispatch must not happen twice). */
  async postOnce(route: string, params: Record<string, unknown>, signal?: AbortSignal) {
    this.lastUsed = this.options.now();
    return this.octokit.request(route, { ...params, request: { retries: 0, ...(signal ? { signal } : {}) } });
  }

  /** A POST that may be repeated (cancel). */
  async post(route: string, params: Record<string, unknown>, signal?: AbortSignal) {
    this.lastUsed = this.options.now();
    return this.octokit.request(route, { ...params, ...(signal ? { request: { signal } } : {}) });
  }

  /** The one poller of `owner/repo` for this credential. */
  poller(owner: string, repo: string): RepoPoller {
    const key = `${owner}/${repo}`.toLowerCase();
    let p = this.pollers.get(key);
    if (!p) {
      p = new RepoPoller(this, owner, repo, () => this.pollers.delete(key));
      this.pollers.set(key, p);
    }
    return p;
  }

  get activePollers(): number {
    return Math.max(1, this.pollers.size);
  }

  get busy(): boolean {
    return this.pollers.size > 0;
  }

  /** Remembers for `ttlMs` that GitHub refused something (so the next dispatch skips the probe). */
  learn(fact: string, ttlMs = 10 * 60_000) {
    this.learned.set(fact, this.options.now() + ttlMs);
  }

  knows(fact: string): boolean {
    const until = this.learned.get(fact);
    if (until === undefined) return false;
    if (until < this.options.now()) {
      this.learned.delete(fact);
      return false;
    }
    return true;
  }
}

/**
 * auth-app caches installation tokens for 59 minutes regardless of `expires_at`. This cache keeps
 * each token until `expires_at - margin`, so a token is always replaced before GitHub expires it
 * (and a server that issues shorter-lived tokens is handled too).
 */
function expiryAwareCache(marginMs: number, now: () => number) {
  const entries = new Map<string, { value: string; until: number }>();
  return {
    get(key: string): string | undefined {
      const e = entries.get(key);
      if (!e) return undefined;
      if (now() >= e.until) {
        entries.delete(key);
        return undefined;
      }
      return e.value;
    },
    set(key: string, value: string) {
      // auth-app stores "token|createdAt|expiresAt|…"; without a readable expiry keep it 59 min as auth-app does.
      const expiresAt = Date.parse(value.split("|")[2] ?? "");
      const until = Number.isNaN(expiresAt) ? now() + 59 * 60_000 : expiresAt - marginMs;
      entries.set(key, { value, until });
    },
  };
}

interface Watch {
  runId: string;
  since: number;
  onUpdate(run: WorkflowRun | undefined, failure: GithubFailure | undefined, nextCheckMs: number): void;
  resolve(run: WorkflowRun): void;
  reject(err: unknown): void;
}

interface Search {
  matches(run: WorkflowRun): boolean;
  since: number;
  onUpdate(failure: GithubFailure | undefined, nextCheckMs: number): void;
  resolve(runs: WorkflowRun[]): void;
  reject(err: unknown): void;
}

/** A followed run answered 404 for longer than this after the watch began: it is gone. */
export const RUN_APPEAR_GRACE_MS = 60_000;

/** GitHub answered something no wait can fix (401, 403, 404): the waiting steps fail with it. */
export class GithubCallError extends Error {
  constructor(readonly failure: GithubFailure, readonly what: string) {
    super(`${what}: GitHub answered ${failure.status ? `${failure.status} ` : ""}${failure.message}`);
    this.name = "GithubCallError";
  }
}

/**
 * Follows every run the waiting steps of one repository care about, one request per tick: the
 * run itself (conditional GET) when one run is followed, else one list of the repository's recent
 * runs plus a GET for any followed run that fell off that page. Step searches for runs GitHub did
 * not name ride on the same list.
 */
export class RepoPoller {
  private readonly watches = new Set<Watch>();
  private readonly searches = new Set<Search>();
  private timer: NodeJS.Timeout | undefined;
  private dueAt = 0;
  private ticking = false;
  private backoff = 0;
  /** Ticks run so far (for tests and the cost report). */
  ticks = 0;

  constructor(private readonly client: GithubClient, readonly owner: string, readonly repo: string, private readonly onIdle: () => void) {}

  /** Resolves with the run once GitHub reports it `completed`; rejects on abort or a GithubCallError. */
  waitForCompletion(runId: string, opts: { signal: AbortSignal; onUpdate: Watch["onUpdate"] }): Promise<WorkflowRun> {
    return this.register<WorkflowRun>(opts.signal, (resolve, reject) => {
      const w: Watch = { runId, since: this.client.options.now(), onUpdate: opts.onUpdate, resolve, reject };
      this.watches.add(w);
      return () => this.watches.delete(w);
    });
  }

  /** Resolves with the runs (oldest first) created since `since` that `matches` accepts, once there is one. */
  findRuns(opts: { signal: AbortSignal; since: number; matches: Search["matches"]; onUpdate: Search["onUpdate"] }): Promise<WorkflowRun[]> {
    return this.register<WorkflowRun[]>(opts.signal, (resolve, reject) => {
      const s: Search = { matches: opts.matches, since: opts.since, onUpdate: opts.onUpdate, resolve, reject };
      this.searches.add(s);
      // A search should not wait out a long watch interval already scheduled.
      const soon = this.client.options.searchIntervalMs;
      if (this.timer && this.dueAt > this.client.options.now() + soon) this.schedule(soon);
      return () => this.searches.delete(s);
    });
  }

  private register<T>(signal: AbortSignal, add: (resolve: (v: T) => void, reject: (e: unknown) => void) => () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let remove = () => {};
      const done = () => { remove(); signal.removeEventListener("abort", onAbort); this.idleCheck(); };
      const onAbort = () => { done(); reject(signal.reason); };
      remove = add((v) => { done(); resolve(v); }, (e) => { done(); reject(e); });
      signal.addEventListener("abort", onAbort, { once: true });
      // A new interest is served promptly, unless a tick is already under way or due sooner.
      if (!this.ticking && !this.timer) this.schedule(0);
    });
  }

  private idleCheck() {
    if (this.watches.size === 0 && this.searches.size === 0 && !this.ticking) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.onIdle();
    }
  }

  private schedule(delayMs: number) {
    clearTimeout(this.timer);
    this.dueAt = this.client.options.now() + delayMs;
    this.timer = setTimeout(() => { this.timer = undefined; void this.tick(); }, delayMs);
  }

  /** The next interval: base (faster while searching), doubled per failed tick, stretched to fit the rate limit. */
  nextDelay(): number {
    const o = this.client.options;
    const now = o.now();
    const base = this.searches.size > 0 ? Math.min(o.searchIntervalMs, o.pollIntervalMs) : o.pollIntervalMs;
    let d = Math.min(o.maxPollIntervalMs, base * 2 ** Math.min(this.backoff, 10));
    const r = this.client.rate;
    if (r.remaining !== undefined && r.resetAt !== undefined && r.resetAt > now) {
      const budget = r.remaining - o.rateLimitReserve;
      // Spread what is left over the pollers sharing this credential until the window resets.
      d = budget <= 0 ? Math.max(d, r.resetAt - now + 1000) : Math.max(d, ((r.resetAt - now) * this.client.activePollers) / budget);
    }
    if (r.holdUntil !== undefined && r.holdUntil > now) d = Math.max(d, r.holdUntil - now);
    return Math.round(d * (1 + (o.random() * 2 - 1) * o.jitter));
  }

  private async tick() {
    if (this.watches.size === 0 && this.searches.size === 0) return this.idleCheck();
    this.ticking = true;
    this.ticks++;
    let failure: GithubFailure | undefined;
    const latest = new Map<Watch, WorkflowRun>();
    try {
      await this.poll(latest);
      this.backoff = 0;
    } catch (err) {
      failure = describeGithubError(err, this.client.options.now());
      if (isTerminal(failure)) {
        const e = new GithubCallError(failure, `error reading the workflow runs of ${this.owner}/${this.repo}`);
        for (const w of [...this.watches]) w.reject(e);
        for (const s of [...this.searches]) s.reject(e);
      } else {
        this.backoff++;
      }
    } finally {
      this.ticking = false;
    }
    if (this.watches.size === 0 && this.searches.size === 0) return this.idleCheck();
    const next = this.nextDelay();
    for (const w of this.watches) w.onUpdate(latest.get(w), failure, next);
    for (const s of this.searches) s.onUpdate(failure, next);
    this.schedule(next);
  }

  private async poll(latest: Map<Watch, WorkflowRun>) {
    const client = this.client;
    const byId = new Map<string, Watch[]>();
    for (const w of this.watches) byId.set(w.runId, [...(byId.get(w.runId) ?? []), w]);
    const seen = new Set<string>();
    const deliver = (run: WorkflowRun) => {
      seen.add(run.id);
      for (const w of byId.get(run.id) ?? []) {
        if (run.status === "completed") w.resolve(run);
        else latest.set(w, run);
      }
    };
    if (this.searches.size > 0 || byId.size > 1) {
      const perPage = Math.min(MAX_PAGE_SIZE, client.options.listPageSize + byId.size);
      const runs = await client.getCached(
        "GET /repos/{owner}/{repo}/actions/runs",
        { owner: this.owner, repo: this.repo, per_page: perPage, exclude_pull_requests: true },
        (page) => (page as { workflow_runs: Record<string, unknown>[] }).workflow_runs.map(toWorkflowRun),
      );
      for (const s of [...this.searches]) {
        const found = runs.filter((r) => r.createdAt >= s.since - CLOCK_SKEW_MS && s.matches(r));
        if (found.length > 0) s.resolve(found.sort((a, b) => a.createdAt - b.createdAt || compareIds(a.id, b.id)));
      }
      for (const run of runs) if (byId.has(run.id)) deliver(run);
    }
    for (const [runId, watches] of byId) {
      if (seen.has(runId)) continue;
      try {
        deliver(await client.getCached(
          "GET /repos/{owner}/{repo}/actions/runs/{run_id}",
          { owner: this.owner, repo: this.repo, run_id: runId, exclude_pull_requests: true },
          (raw) => toWorkflowRun(raw as Record<string, unknown>),
        ));
      } catch (err) {
        const f = describeGithubError(err, client.options.now());
        if (f.status !== 404) throw err;
        // A run GitHub just named may take a moment to be readable; after the grace it is gone.
        for (const w of watches) {
          if (client.options.now() - w.since > RUN_APPEAR_GRACE_MS) w.reject(new GithubCallError(f, `error reading run ${runId} of ${this.owner}/${this.repo} (was it deleted?)`));
        }
      }
    }
  }
}

/** Failures no waiting fixes: bad credentials, no permission (not a rate limit), no such repository. */
function isTerminal(f: GithubFailure): boolean {
  return f.status === 401 || f.status === 404 || f.status === 410 || (f.status === 403 && !f.rateLimited) || f.status === 422;
}

function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** Hands out one client per apiURL + credentials; all steps of the executor share them. */
export class GithubHub {
  readonly options: GithubOptions;
  private readonly clients = new Map<string, GithubClient>();
  private readonly http: HttpClient;
  /** The hub made its own HttpClient (no `http` given) and closes it. */
  private readonly ownsHttp: boolean;

  /** `http`: the executor's outbound client, so GitHub calls obey the same policy and host limits. */
  constructor(options: Partial<GithubOptions> & { http?: HttpClient } = {}) {
    const { http, ...rest } = options;
    this.options = { ...githubDefaults, ...rest };
    this.ownsHttp = !http;
    this.http = http ?? createHttpClient({ ...this.options.outbound, connectTimeoutMs: 10_000 });
  }

  /** The client for these credentials (created on first use, shared after; the first loads Octokit). */
  async client(apiURL: string, credentials: GithubCredentials): Promise<GithubClient> {
    const octokit = await loadOctokit();
    // From here on synchronous: steps asking at once for the same credentials share one client.
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([apiURL, credentials.kind === "token" ? credentials.token : [credentials.appId, credentials.installationId, credentials.privateKey]]))
      .digest("hex")
      .slice(0, 32);
    this.prune();
    let c = this.clients.get(fingerprint);
    if (!c) {
      c = new GithubClient(apiURL, credentials, this.options, this.http.fetch, `step-executor-${fingerprint}`, octokit);
      this.clients.set(fingerprint, c);
    }
    c.lastUsed = this.options.now();
    return c;
  }

  private prune() {
    const cutoff = this.options.now() - this.options.clientIdleMs;
    for (const [k, c] of this.clients) if (!c.busy && c.lastUsed < cutoff) this.clients.delete(k);
  }

  /** Requests sent by every client so far. */
  get requests(): number {
    let n = 0;
    for (const c of this.clients.values()) n += c.stats.requests;
    return n;
  }

  async close() {
    this.clients.clear();
    if (this.ownsHttp) await this.http.close();
  }
}
