// Outbound HTTP in one place: undici with connect and per-attempt timeouts, a response size
// cap, and no address the operator has not allowed (link-local / cloud metadata by default).
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { STATUS_CODES } from "node:http";
import { isIP } from "node:net";
import { Agent, request } from "undici";
import { hostClass, type Metrics } from "./metrics.js";

export const httpClientDefaults = {
  /** TCP+TLS connect timeout. */
  connectTimeoutMs: 5_000,
  /** Largest response body kept; the rest is discarded and the body marked truncated. */
  maxResponseBytes: 1 << 20,
  /** Link-local addresses (169.254/16 incl. cloud metadata, fe80::/10) are refused unless allowed. */
  allowLinkLocal: false,
};
export type HttpClientOptions = typeof httpClientDefaults;

export interface OutboundRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  signal?: AbortSignal;
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
  close(): Promise<void>;
}

/** The target address is not allowed by the executor's outbound policy. */
export class ForbiddenAddressError extends Error {}

export function isLinkLocal(address: string): boolean {
  const v = isIP(address);
  if (v === 4) return address.startsWith("169.254.");
  if (v === 6) {
    const a = address.toLowerCase();
    return /^fe[89ab]/.test(a) || a.startsWith("::ffff:169.254.") || a === "fd00:ec2::254";
  }
  return false;
}

export function createHttpClient(options: Partial<HttpClientOptions> = {}, metrics?: Metrics): HttpClient {
  const o = { ...httpClientDefaults, ...options };
  const count = (url: URL, status: string) => metrics?.outbound.inc({ host_class: hostClass(url.hostname), status });
  // Check the address actually dialled, after DNS, so a name cannot smuggle a forbidden target.
  const lookup = (hostname: string, opts: object, cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err) return cb(err, []);
      const list = addresses as LookupAddress[];
      const bad = o.allowLinkLocal ? undefined : list.find((a) => isLinkLocal(a.address));
      if (bad) return cb(new ForbiddenAddressError(`${hostname} resolves to link-local address ${bad.address}, which the executor refuses (cloud metadata)`), []);
      const wantAll = (opts as { all?: boolean }).all;
      if (wantAll) return cb(null, list);
      cb(null, list[0]!.address, list[0]!.family);
    });
  };
  const agent = new Agent({ connect: { timeout: o.connectTimeoutMs, lookup: lookup as never }, keepAliveTimeout: 10_000 });

  return {
    async send(req) {
      try {
        const res = await send(req);
        count(req.url, String(res.status));
        return res;
      } catch (err) {
        count(req.url, err instanceof ForbiddenAddressError ? "refused" : "error");
        throw err;
      }
    },
    close: () => agent.close(),
  };

  async function send(req: OutboundRequest): Promise<OutboundResponse> {
    if (!o.allowLinkLocal && isLinkLocal(req.url.hostname.replace(/^\[|\]$/g, ""))) {
      throw new ForbiddenAddressError(`${req.url.hostname} is a link-local address, which the executor refuses (cloud metadata)`);
    }
    const signals = [AbortSignal.timeout(req.timeoutMs), ...(req.signal ? [req.signal] : [])];
    const res = await request(req.url, {
      method: req.method as never,
      headers: req.headers,
      body: req.body,
      dispatcher: agent,
      signal: AbortSignal.any(signals),
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
  }
}
