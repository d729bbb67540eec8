// OAuth2 client credentials (RFC 6749 §4.4) for steps that call APIs behind a token endpoint:
// a token is fetched through the executor's outbound client (its policy and host limits apply),
// cached per tenant namespace and credentials until shortly before it expires, and dropped when
// the API refuses it. Tokens are secrets: callers register them with the run's redaction.
import { createHash } from "node:crypto";
import { ForbiddenAddressError, type HttpClient } from "./http-client.js";

export interface ClientCredentials {
  /** The tenant namespace the credentials come from: tokens are never shared across namespaces. */
  namespace: string;
  tokenURL: URL;
  clientID: string;
  clientSecret: string;
  scopes: readonly string[];
  /** Extra form parameters for the token endpoint (e.g. audience, resource). */
  params: Readonly<Record<string, string>>;
  /** basic: HTTP Basic with the client id and secret (RFC 6749 §2.3.1); body: both in the form. */
  authStyle: "basic" | "body";
}

export interface Token {
  accessToken: string;
  /** Epoch ms after which the token is not used any more (refreshed before it expires). */
  expiresAt: number;
}

/** The token endpoint refused the credentials or answered something that is not a token: retrying changes nothing. */
export class TokenRefusedError extends Error {}
/** The token endpoint could not be reached or failed (5xx, 429, network): worth another try. */
export class TokenUnavailableError extends Error {}

export const oauth2Defaults = {
  /** A token is refreshed this long before it expires (or at half its lifetime, if that is shorter). */
  refreshMarginMs: 60_000,
  /** Lifetime assumed when the endpoint gives no expires_in. */
  defaultLifetimeMs: 5 * 60_000,
  /** Tokens cached at once (least recently used dropped). */
  maxTokens: 1_000,
  timeoutMs: 10_000,
};

export class TokenCache {
  private readonly tokens = new Map<string, Token>();
  /** Fetches under way, so that steps asking at once share one request. */
  private readonly pending = new Map<string, Promise<Token>>();
  private readonly o: typeof oauth2Defaults;

  constructor(private readonly http: HttpClient, options: Partial<typeof oauth2Defaults> = {}, private readonly now: () => number = Date.now) {
    this.o = { ...oauth2Defaults, ...options };
  }

  /** A valid token for the credentials: cached, or fetched now. */
  async token(c: ClientCredentials, signal?: AbortSignal): Promise<Token> {
    const key = cacheKey(c);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.now()) {
      this.tokens.delete(key); // most recently used last
      this.tokens.set(key, cached);
      return cached;
    }
    let fetching = this.pending.get(key);
    if (!fetching) {
      fetching = this.fetch(c, signal).finally(() => this.pending.delete(key));
      this.pending.set(key, fetching);
    }
    const token = await fetching;
    this.tokens.set(key, token);
    if (this.tokens.size > this.o.maxTokens) this.tokens.delete(this.tokens.keys().next().value!);
    return token;
  }

  /** The API refused `token` (401): it is not used again; the next token() fetches a new one. */
  invalidate(c: ClientCredentials, token: Token): void {
    const key = cacheKey(c);
    if (this.tokens.get(key)?.accessToken === token.accessToken) this.tokens.delete(key);
  }

  private async fetch(c: ClientCredentials, signal?: AbortSignal): Promise<Token> {
    const form = new URLSearchParams({ grant_type: "client_credentials", ...c.params });
    if (c.scopes.length > 0) form.set("scope", c.scopes.join(" "));
    const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" };
    if (c.authStyle === "basic") {
      // RFC 6749 §2.3.1: each part form-urlencoded before Basic encoding.
      const part = (v: string) => encodeURIComponent(v).replace(/%20/g, "+");
      headers.Authorization = `Basic ${Buffer.from(`${part(c.clientID)}:${part(c.clientSecret)}`).toString("base64")}`;
    } else {
      form.set("client_id", c.clientID);
      form.set("client_secret", c.clientSecret);
    }
    const where = `${c.tokenURL.origin}${c.tokenURL.pathname}`;
    const started = this.now();
    let res;
    try {
      res = await this.http.send({ method: "POST", url: c.tokenURL, headers, body: form.toString(), timeoutMs: this.o.timeoutMs, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof ForbiddenAddressError) throw new TokenRefusedError(`token endpoint ${where}: ${(err as Error).message}`);
      throw new TokenUnavailableError(`token endpoint ${where}: ${(err as Error).message}`);
    }
    let body: { access_token?: unknown; token_type?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try { body = JSON.parse(res.body) as typeof body; } catch { /* described below */ }
    if (res.status >= 500 || res.status === 429 || res.status === 408) throw new TokenUnavailableError(`token endpoint ${where} answered ${res.status}`);
    if (res.status !== 200) {
      // RFC 6749 §5.2: error and error_description name what is wrong (never the credentials).
      const why = typeof body.error === "string" ? `${body.error}${typeof body.error_description === "string" ? `: ${body.error_description.slice(0, 200)}` : ""}` : `status ${res.status}`;
      throw new TokenRefusedError(`token endpoint ${where} refused the client credentials (${why})`);
    }
    if (typeof body.access_token !== "string" || body.access_token === "") throw new TokenRefusedError(`token endpoint ${where} answered 200 without an access_token`);
    if (typeof body.token_type === "string" && body.token_type.toLowerCase() !== "bearer") {
      throw new TokenRefusedError(`token endpoint ${where} issued a "${body.token_type.slice(0, 40)}" token; only bearer tokens are supported`);
    }
    const lifetime = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in * 1000 : this.o.defaultLifetimeMs;
    return { accessToken: body.access_token, expiresAt: started + lifetime - Math.min(this.o.refreshMarginMs, lifetime / 2) };
  }
}

function cacheKey(c: ClientCredentials): string {
  return createHash("sha256").update(JSON.stringify([c.namespace, c.tokenURL.href, c.clientID, c.clientSecret, [...c.scopes].sort(), Object.entries(c.params).sort(), c.authStyle])).digest("hex");
}

/** One cache per outbound client, i.e. per executor: every step that calls out through it shares its tokens. */
const caches = new WeakMap<HttpClient, TokenCache>();

export function tokenCacheOf(http: HttpClient): TokenCache {
  let cache = caches.get(http);
  if (!cache) caches.set(http, (cache = new TokenCache(http)));
  return cache;
}
