// The executor's Kubernetes client: JSON over one kept-alive HTTPS agent, and watches. Not
// @kubernetes/client-node: importing it costs ≈ 75 MiB of RSS (its generated models), more than
// all the rest of the executor, and it made a new TLS connection per request (BENCHMARKS.md §3).
// Objects stay the API server's JSON as sent: conditions are written against what
// `kubectl get -o json` shows, and a typed client would drop newer fields and turn timestamps into
// Date objects (which CEL sees as empty maps).
import http from "node:http";
import https from "node:https";
import { createInterface } from "node:readline";
import { loadKubeAccess, type KubeAccess } from "./kubeconfig.js";

/** The API server answered with a status outside 2xx; `body` is its Status object (or text). */
export class KubeStatusError extends Error {
  override name = "KubeStatusError";
  /** The Status's message ("" when there is none). */
  readonly detail: string;
  constructor(readonly code: number, readonly body: unknown) {
    const detail = typeof body === "object" && body && typeof (body as { message?: unknown }).message === "string" ? (body as { message: string }).message : "";
    super(`HTTP ${code}${detail ? ` ${detail}` : ""}`);
    this.detail = detail;
  }
  /** The Status's reason (NotFound, AlreadyExists, Conflict, …), "" when there is none. */
  get reason(): string {
    const r = (this.body as { reason?: unknown } | undefined)?.reason;
    return typeof r === "string" ? r : "";
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  /** Default application/json; patches say which kind they are. */
  contentType?: "application/json" | "application/merge-patch+json" | "application/json-patch+json";
  timeoutMs?: number;
}

export const MERGE_PATCH = "application/merge-patch+json";
export const JSON_PATCH = "application/json-patch+json";

/** A watch event as the API server sends it. */
export type WatchHandler = (type: string, object: unknown) => void;

/** Path of a custom resource collection (or of one object, with `name`), each segment escaped. */
export function resourcePath(r: { group: string; version: string; plural: string; namespace?: string; name?: string }): string {
  const parts = r.group ? ["apis", r.group, r.version] : ["api", r.version];
  if (r.namespace !== undefined) parts.push("namespaces", r.namespace);
  parts.push(r.plural);
  if (r.name !== undefined) parts.push(r.name);
  return "/" + parts.map(encodeURIComponent).join("/");
}

/** A whole answer: its JSON, or its text when it is not JSON (undefined when empty). */
function readBody(res: http.IncomingMessage, onBody: (parsed: unknown) => void, onError: (err: Error) => void): void {
  const chunks: Buffer[] = [];
  res.on("data", (c: Buffer) => chunks.push(c));
  res.on("error", onError);
  res.on("end", () => {
    const text = Buffer.concat(chunks).toString("utf8");
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON: kept as text */ }
    onBody(parsed);
  });
}

/**
 * Connections to one API server, shared by the root client and its impersonating ones. Requests
 * reuse at most MAX_REQUEST_CONNECTIONS kept-alive connections and queue beyond: a TLS handshake
 * per request was most of the executor's CPU per poll (BENCHMARKS.md §3), and without a bound a
 * burst (hundreds of steps starting at once, each writing its StepRun) opened a connection per
 * request in flight: more memory the process keeps as high-water RSS (2,000 starting steps: 345 vs
 * 271 MiB with 16), and as many connections on the API server everyone deploys through. Watches are long-lived,
 * one connection each, on their own agent so that they never hold the requests' connections.
 */
interface Agents {
  requests: http.Agent;
  watches: http.Agent;
}

/** client-go's HTTP/1.1 transport keeps 25 idle connections per host; vela-core's client allows 100 requests in a burst. */
export const MAX_REQUEST_CONNECTIONS = 32;

function newAgents(access: KubeAccess): Agents {
  const tls = { ca: access.ca, cert: access.cert, key: access.key, rejectUnauthorized: !access.insecure, servername: access.serverName };
  const https_ = access.server.startsWith("https:");
  const agent = (o: http.AgentOptions) => (https_ ? new https.Agent({ ...o, ...tls }) : new http.Agent(o));
  return { requests: agent({ keepAlive: true, maxSockets: MAX_REQUEST_CONNECTIONS }), watches: agent({ keepAlive: false }) };
}

export class KubeClient {
  /** Loads the executor's access (server/kube/kubeconfig.ts): `path`, else $KUBECONFIG, ~/.kube/config, the pod's ServiceAccount. */
  static load(path?: string): KubeClient {
    return new KubeClient(loadKubeAccess(path));
  }

  private readonly agents: Agents;
  private readonly impersonate: Record<string, string | string[]>;

  constructor(readonly access: KubeAccess, as?: { user: string; groups: readonly string[] }, agents?: Agents) {
    this.agents = agents ?? newAgents(access);
    this.impersonate = as ? { "Impersonate-User": as.user, ...(as.groups.length ? { "Impersonate-Group": [...as.groups] } : {}) } : {};
  }

  /** The same access, acting as `user` (a ServiceAccount's groups are added by the API server) with `groups`, one header each. */
  impersonating(user: string, groups: readonly string[] = []): KubeClient {
    return new KubeClient(this.access, { user, groups }, this.agents);
  }

  get server(): string {
    return this.access.server;
  }

  private async open(agent: http.Agent, method: string, path: string, query: RequestOptions["query"], headers: Record<string, string | string[]>, timeoutMs: number, onResponse: (res: http.IncomingMessage) => void, onError: (err: Error) => void): Promise<http.ClientRequest> {
    const url = new URL(this.access.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const authorization = await this.access.authorization();
    const all: Record<string, string | string[]> = { accept: "application/json", "user-agent": "step-executor", ...this.impersonate, ...headers };
    if (authorization) all.authorization = authorization;
    const req = (url.protocol === "https:" ? https : http).request(url, { method, headers: all, agent }, onResponse);
    req.on("error", onError);
    if (timeoutMs > 0) {
      // From now, not from when a connection is free: a request may wait for one (MAX_REQUEST_CONNECTIONS).
      // A request still waiting emits its error only once it gets a connection: reject now.
      const timer = setTimeout(() => {
        const err = new Error(`the API server did not answer within ${timeoutMs / 1000} s`);
        req.destroy(err);
        onError(err);
      }, timeoutMs);
      req.once("close", () => clearTimeout(timer));
    }
    return req;
  }

  /** One request; resolves with the parsed JSON of a 2xx answer, rejects with KubeStatusError for any other. */
  async request<T = unknown>(method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE", path: string, o: RequestOptions = {}): Promise<T> {
    const body = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const headers: Record<string, string> = body ? { "content-type": o.contentType ?? "application/json", "content-length": String(body.length) } : {};
    const timeoutMs = o.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      this.open(this.agents.requests, method, path, o.query, headers, timeoutMs, (res) => readBody(res, (parsed) => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) resolve(parsed as T);
        else reject(new KubeStatusError(code, parsed));
      }, reject), reject).then((req) => req.end(body), reject);
    });
  }

  /**
   * Follows `path` with ?watch=true: `onEvent` for each event, `done` once when the watch ends
   * (null: the server closed it or it was aborted; else the error, a KubeStatusError when the
   * API server refused it). Abort the returned controller, or `signal`, to stop.
   */
  watch(path: string, query: RequestOptions["query"], onEvent: WatchHandler, done: (err: Error | null) => void, signal?: AbortSignal): AbortController {
    const controller = new AbortController();
    let ended = false;
    let req: http.ClientRequest | undefined;
    const stop = () => controller.abort();
    const end = (err: Error | null) => {
      if (ended) return;
      ended = true;
      signal?.removeEventListener("abort", stop);
      req?.destroy();
      done(controller.signal.aborted ? null : err);
    };
    controller.signal.addEventListener("abort", () => end(null), { once: true });
    // The caller's stop (e.g. the executor shutting down) ends the watch as an abort does.
    if (signal?.aborted) controller.abort();
    else signal?.addEventListener("abort", stop, { once: true });
    if (ended) return controller;
    // No timeout: the API server ends a watch after its timeoutSeconds; callers guard against silence.
    this.open(this.agents.watches, "GET", path, { ...query, watch: true }, {}, 0, (res) => {
      if (res.statusCode !== 200) return readBody(res, (parsed) => end(new KubeStatusError(res.statusCode ?? 0, parsed)), end);
      res.socket?.setKeepAlive(true, 30_000);
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      lines.on("line", (line) => {
        if (ended || !line) return;
        let event: { type?: string; object?: unknown };
        try { event = JSON.parse(line); } catch { return; }
        if (typeof event.type === "string") onEvent(event.type, event.object);
      });
      lines.on("close", () => end(null));
      // readline re-emits its input's errors (an aborted response): both are the watch's end.
      lines.on("error", end);
      res.on("error", end);
    }, end).then((r) => {
      req = r;
      if (ended) r.destroy();
      else r.end();
    }, end);
    return controller;
  }
}
