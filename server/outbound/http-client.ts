// Outbound HTTP in one place: undici with connect and per-attempt timeouts, response size caps,
// bounded concurrency and queue per target host, and the outbound policy (outbound-policy.ts)
// enforced on every connection the executor opens — after DNS, so a name cannot smuggle a
// forbidden address (DNS rebinding), and for every redirect hop, since each hop connects anew.
// http-request uses `send`; the GitHub client uses `fetch` (octokit needs a fetch).
import { createHash } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { STATUS_CODES } from "node:http";
import { isIP } from "node:net";
import { Agent, buildConnector, fetch as undiciFetch, request } from "undici";
import { hostClass, type Metrics } from "../observe/metrics.js";
import { classifyAddress, OutboundPolicy } from "./outbound-policy.js";

/** dns.lookup's shape: tests inject a resolver that asks a DNS server of their own. */
export type LookupFunction = (hostname: string, options: { all: true }, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

export const httpClientDefaults = {
  /** TCP+TLS connect timeout. */
  connectTimeoutMs: 5_000,
  /** Largest response body `send` keeps; the rest is discarded and the body marked truncated. */
  maxResponseBytes: 1 << 20,
  /** Largest response body `fetch` accepts (GitHub API pages); a larger one fails the exchange. */
  maxFetchResponseBytes: 16 << 20,
  /** Link-local addresses (169.254/16 incl. cloud metadata, fe80::/10) are refused unless allowed. */
  allowLinkLocal: false,
  /** Loopback, private and cluster-internal targets allowed anyway: CIDRs, addresses, host names, `*.suffix`. */
  allow: [] as readonly string[],
  /** Requests in flight to one host; more wait in its queue. */
  hostConcurrency: 16,
  /** Requests waiting for one host; beyond it a request is refused at once (HostBusyError). */
  hostQueue: 256,
  /** Name resolution (dns.lookup); tests point it at a local DNS server. */
  lookup: dnsLookup as unknown as LookupFunction,
  /** Connection pools kept for requests with TLS material of their own (one per distinct material); the least recently used beyond it is closed. */
  maxTlsPools: 32,
};
export type HttpClientOptions = typeof httpClientDefaults;

export interface OutboundRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
  /** Covers the wait for a free slot to the host, the exchange and reading the body. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** TLS material of this request: CAs to trust instead of the public ones, a client certificate (mutual TLS). */
  tls?: TlsMaterial;
}

/** PEM texts, as node:tls takes them. */
export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface OutboundResponse {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: string;
  truncated: boolean;
}

export interface HttpClient {
  send(req: OutboundRequest): Promise<OutboundResponse>;
  /** A fetch under the same policy and host limits; follows redirects (each hop is checked). */
  fetch: typeof fetch;
  close(): Promise<void>;
}

/** The target address is not allowed by the executor's outbound policy. Nothing was sent. */
export class ForbiddenAddressError extends Error {
  readonly code = "ERR_FORBIDDEN_ADDRESS";
}

/** Too many requests to one host are in flight and queued: this one was not sent (retry later). */
export class HostBusyError extends Error {
  readonly code = "ERR_HOST_BUSY";
}

/** A link-local address literal (for callers that check a literal early). */
export function isLinkLocal(address: string): boolean {
  return isIP(address.replace(/^\[|\]$/g, "").replace(/%.*$/, "")) !== 0 && classifyAddress(address) === "link-local";
}

/**
 * Per-host bounded concurrency with a bounded FIFO queue: a slow or hostile target can tie up
 * `hostConcurrency` sockets and `hostQueue` waiting requests of the executor, no more, and other
 * hosts are not affected.
 */
export class HostLimiter {
  private readonly hosts = new Map<string, { active: number; queue: (() => void)[] }>();
  constructor(readonly concurrency: number, readonly queueSize: number) {}

  /** Resolves with a release function once a slot is free; rejects when the queue is full or `signal` aborts. */
  async acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    let h = this.hosts.get(host);
    if (!h) this.hosts.set(host, (h = { active: 0, queue: [] }));
    const entry = h;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const next = entry.queue.shift();
      if (next) next();
      else if (--entry.active === 0) this.hosts.delete(host);
    };
    if (entry.active < this.concurrency) {
      entry.active++;
      return release;
    }
    if (entry.queue.length >= this.queueSize) {
      throw new HostBusyError(`${this.concurrency} requests to ${host} are in flight and ${this.queueSize} more are waiting, the executor's limit per host (flags --outbound-host-concurrency, --outbound-host-queue); this one was not sent`);
    }
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const go = () => { signal?.removeEventListener("abort", abort); resolve(); };
      const abort = () => {
        const i = entry.queue.indexOf(go);
        if (i >= 0) entry.queue.splice(i, 1);
        const reason = signal!.reason as Error;
        reject(reason?.name === "TimeoutError"
          ? new HostBusyError(`no free connection to ${host} within the timeout: ${this.concurrency} requests to it were in flight (executor flag --outbound-host-concurrency); this one was not sent`)
          : reason);
      };
      entry.queue.push(go);
      signal?.addEventListener("abort", abort, { once: true });
    });
    return release;
  }

  /** Requests in flight and waiting for `host` (tests, metrics). */
  load(host: string): { active: number; queued: number } {
    const h = this.hosts.get(host);
    return { active: h?.active ?? 0, queued: h?.queue.length ?? 0 };
  }
}

/**
 * The one place the outbound policy is enforced: a connector for undici that refuses forbidden
 * names and address literals before connecting, and a lookup that refuses forbidden addresses
 * after DNS. Node skips `lookup` for address literals, hence the check in the connector too.
 */
function guardedConnector(policy: OutboundPolicy, o: HttpClientOptions, tls: TlsMaterial = {}): buildConnector.connector {
  const lookup = (hostname: string, opts: { all?: boolean }, cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    o.lookup(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err) return cb(err, []);
      for (const a of addresses) {
        const why = policy.refusal(hostname, a.address);
        if (why) return cb(new ForbiddenAddressError(why), []);
      }
      if (addresses.length === 0) return cb(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), []);
      if (opts.all) return cb(null, addresses);
      cb(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  const connect = buildConnector({ timeout: o.connectTimeoutMs, lookup, ...tls } as never);
  return (opts, cb) => {
    const host = opts.hostname.replace(/^\[|\]$/g, "");
    const why = isIP(host) ? policy.refusal(host, host) : policy.nameRefusal(host);
    if (why) {
      process.nextTick(cb, new ForbiddenAddressError(why), null);
      return;
    }
    connect(opts, cb);
  };
}

export function createHttpClient(options: Partial<HttpClientOptions> = {}, metrics?: Metrics): HttpClient {
  const o = { ...httpClientDefaults, ...options };
  const policy = new OutboundPolicy({ allowLinkLocal: o.allowLinkLocal, allow: o.allow });
  const limiter = new HostLimiter(o.hostConcurrency, o.hostQueue);
  const connect = guardedConnector(policy, o);
  const agent = new Agent({ connect, keepAliveTimeout: 10_000 });
  // A second pool for fetch: undici fails an exchange whose body passes maxResponseSize, where
  // `send` keeps a truncated body instead.
  const fetchAgent = new Agent({ connect, keepAliveTimeout: 10_000, maxResponseSize: o.maxFetchResponseBytes });
  // Requests with TLS material of their own get a pool of their own (the material is part of
  // every connection), shared by requests with the same material; bounded, least recent closed.
  const tlsAgents = new Map<string, Agent>();
  const agentFor = (tls: TlsMaterial | undefined): Agent => {
    if (!tls || (!tls.ca && !tls.cert && !tls.key)) return agent;
    const id = createHash("sha256").update(JSON.stringify([tls.ca ?? "", tls.cert ?? "", tls.key ?? ""])).digest("hex");
    let a = tlsAgents.get(id);
    if (a) tlsAgents.delete(id); // re-inserted below: most recently used last
    else a = new Agent({ connect: guardedConnector(policy, o, tls), keepAliveTimeout: 10_000 });
    tlsAgents.set(id, a);
    if (tlsAgents.size > o.maxTlsPools) {
      const [oldest, pool] = tlsAgents.entries().next().value!;
      tlsAgents.delete(oldest);
      void pool.close(); // lets requests in flight finish
    }
    return a;
  };
  const count = (url: URL, status: string) => metrics?.outbound.inc({ host_class: hostClass(url.hostname), status });
  const outcome = (err: unknown) => err instanceof ForbiddenAddressError || (err as { cause?: unknown })?.cause instanceof ForbiddenAddressError ? "refused"
    : err instanceof HostBusyError ? "busy" : "error";

  async function send(req: OutboundRequest): Promise<OutboundResponse> {
    // One controller for the timeout and the caller's signal, not AbortSignal.timeout + any: every
    // waiting http-request holds a call in flight, and AbortSignal.any keeps Sets and WeakRefs per source.
    const abort = new AbortController();
    const { signal } = abort;
    const timer = setTimeout(() => abort.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), req.timeoutMs).unref();
    const onAbort = () => abort.abort(req.signal!.reason);
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener("abort", onAbort, { once: true });
    let release: (() => void) | undefined;
    try {
      release = await limiter.acquire(req.url.host, signal);
      const res = await request(req.url, {
        method: req.method as never,
        headers: req.headers,
        body: req.body,
        dispatcher: agentFor(req.tls),
        signal,
      } as never);
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        if (size + buf.length > o.maxResponseBytes) {
          chunks.push(buf.subarray(0, o.maxResponseBytes - size));
          truncated = true;
          res.body.destroy();
          break;
        }
        chunks.push(buf);
        size += buf.length;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) {
        if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : String(v);
      }
      return {
        status: res.statusCode,
        statusText: STATUS_CODES[res.statusCode] ?? "",
        headers,
        body: Buffer.concat(chunks).toString("utf8"),
        truncated,
      };
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener("abort", onAbort);
      release?.();
    }
  }

  const guardedFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    try {
      // The slot is held until the answer's headers: octokit reads the body later.
      const release = await limiter.acquire(url.host, init?.signal ?? undefined);
      try {
        const res = await undiciFetch(input as never, { ...(init as object), dispatcher: fetchAgent } as never);
        count(url, String(res.status));
        return res;
      } finally {
        release();
      }
    } catch (err) {
      count(url, outcome(err));
      throw err;
    }
  }) as unknown as typeof fetch;

  return {
    async send(req) {
      try {
        const res = await send(req);
        count(req.url, String(res.status));
        return res;
      } catch (err) {
        count(req.url, outcome(err));
        throw err;
      }
    },
    fetch: guardedFetch,
    close: async () => { await Promise.all([agent.close(), fetchAgent.close(), ...[...tlsAgents.values()].map((a) => a.close())]); },
  };
}
