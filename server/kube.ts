// Reads from the Kubernetes API. Writes are KubeVela's job (kube.#Apply in the templates), so
// objects stay tracked and garbage-collected with their Application.
import { createHash } from "node:crypto";
import http from "node:http";
import https, { Agent as HttpsAgent, type AgentOptions } from "node:https";
import { ApiException, CoreV1Api, KubeConfig, KubernetesObjectApi, type Cluster, type KubernetesObject } from "@kubernetes/client-node";
import { ApplicationLookup, type ApplicationMeta } from "./applications.js";
import { TerminalError } from "./errors.js";
import { sleep } from "./retry.js";
import { ObjectWatches, WatchDenied, type ObjectFeed, type WatchSource } from "./object-watch.js";

/** KubeVela applies an Application's resources as this ServiceAccount when the annotation is set. */
export const SERVICE_ACCOUNT_ANNOTATION = "app.oam.dev/service-account-name";

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
}

export type KubeObject = KubernetesObject & { [key: string]: unknown };

export interface KubeReader {
  /** The live object, or undefined when it does not exist (yet). */
  readObject(ref: ObjectRef): Promise<KubeObject | undefined>;
  /** Follows the object (a watch shared by every step waiting on it; server/object-watch.ts). Close the feed when done. */
  watchObject(ref: ObjectRef): ObjectFeed;
  /** A Secret's decoded data, or undefined when the Secret does not exist. */
  readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** The same reads, made as ServiceAccount `namespace/name` (Kubernetes impersonation). */
  impersonating(namespace: string, name: string): KubeReader;
  /** A KubeVela Application's uid and annotations, read by the executor itself (shared, cached: server/applications.ts); null when there is none. */
  application(namespace: string, name: string): Promise<ApplicationMeta | null>;
}

/**
 * The impersonated ServiceAccount may not do a read (or the executor may not impersonate it): a
 * fix of RBAC, not something waiting cures, so the step fails with what to grant.
 */
export class ForbiddenReadError extends TerminalError {}

/** The API server does not serve this apiVersion/kind (a typo, or a CRD not installed yet). */
export class UnknownKindError extends Error {}

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  reuseConnections(kc);
  return kc;
}

type AgentFactory = (cluster: Cluster | null, options: AgentOptions) => unknown;

/**
 * client-node 1.x makes a new https.Agent for every request, so every API call pays a TCP and TLS
 * handshake (most of the executor's CPU per poll, and load on the apiserver: BENCHMARKS.md §3).
 * Requests share one kept-alive agent per cluster and TLS identity instead; a rotated client
 * certificate or CA gets a new agent. Proxied clusters keep the library's own agents.
 */
function reuseConnections(kc: KubeConfig): void {
  const target = kc as unknown as { createAgent: AgentFactory };
  const create = target.createAgent.bind(kc);
  const agents = new Map<string, HttpsAgent>();
  target.createAgent = (cluster, options) => {
    if (!cluster || cluster.proxyUrl || !cluster.server.startsWith("https:")) return create(cluster, options);
    const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = options;
    const id = createHash("sha256").update(JSON.stringify([cluster.server, ca, cert, key, pfx, passphrase, rejectUnauthorized, servername])).digest("hex");
    let agent = agents.get(id);
    if (!agent) {
      // A handful of identities at most (rotation); drop the old ones rather than grow.
      if (agents.size >= 4) agents.clear();
      agent = new HttpsAgent({ ...options, keepAlive: true });
      agents.set(id, agent);
    }
    return agent;
  };
}

/** Reads as the kubeconfig's user; `watches` and `applications` are shared by the whole executor. */
export function createKubeReader(kc: KubeConfig, watches = new ObjectWatches(), applications = new ApplicationLookup(kc)): KubeReader {
  const impersonated = new Map<string, KubeReader>();
  const shared = { watches, application: applications.get.bind(applications) };
  const root = makeReader(kc, undefined, shared, (namespace, name) => {
    const key = `${namespace}/${name}`;
    let r = impersonated.get(key);
    if (!r) {
      // Bounded: a client per ServiceAccount in use; the oldest goes first.
      if (impersonated.size >= 256) impersonated.delete(impersonated.keys().next().value!);
      impersonated.set(key, (r = makeReader(impersonatingConfig(kc, `system:serviceaccount:${namespace}:${name}`), { namespace, name }, shared, root.impersonating)));
    }
    return r;
  });
  return root;
}

/** A copy of `kc` whose current user sends Impersonate-User (the API server adds the ServiceAccount's groups). */
function impersonatingConfig(kc: KubeConfig, user: string): KubeConfig {
  const current = kc.getCurrentUser();
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: kc.clusters,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
    users: kc.users.map((u) => (u.name === current?.name ? { ...u, impersonateUser: user } : u)),
  });
  reuseConnections(copy);
  return copy;
}

/**
 * The reads of one run: as the Application's ServiceAccount when the Application names one
 * (annotation app.oam.dev/service-account-name, as KubeVela does for its applies), else as the
 * executor. The Application is looked up on the run's first read; a failed look is retried.
 */
export function kubeReaderForRun(kube: KubeReader, run: { namespace: string; application: string }): KubeReader {
  let resolved: Promise<KubeReader> | undefined;
  const reader = () => {
    resolved ??= kube.application(run.namespace, run.application).then((app) => {
      const sa = app?.annotations[SERVICE_ACCOUNT_ANNOTATION];
      return sa ? kube.impersonating(run.namespace, sa) : kube;
    }, (err: unknown) => {
      resolved = undefined;
      throw err;
    });
    return resolved;
  };
  return {
    readObject: async (ref) => (await reader()).readObject(ref),
    watchObject: (ref) => lazyFeed(async () => (await reader()).watchObject(ref)),
    readSecret: async (namespace, name) => (await reader()).readSecret(namespace, name),
    impersonating: (namespace, name) => kube.impersonating(namespace, name),
    application: (namespace, name) => kube.application(namespace, name),
  };
}

/** A feed opened once its reader is known; until then a failed look (the Application could not be read) is the feed's error, retried on the next read. */
function lazyFeed(open: () => Promise<ObjectFeed>): ObjectFeed {
  let feed: ObjectFeed | undefined;
  let closed = false;
  let failures = 0;
  return {
    async read() {
      if (!feed) {
        try {
          feed = await open();
        } catch (error) {
          return { object: undefined, error, version: -++failures };
        }
        if (closed) feed.close();
      }
      return feed.read();
    },
    changed: (version, ms, signal) => feed ? feed.changed(version, ms, signal) : sleep(Math.min(ms, 1_000), signal),
    close() {
      closed = true;
      feed?.close();
    },
  };
}

function makeReader(kc: KubeConfig, as: { namespace: string; name: string } | undefined, shared: { watches: ObjectWatches; application: KubeReader["application"] }, impersonating: KubeReader["impersonating"]): KubeReader {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const wrap = (err: unknown, what: string) => as ? forbidden(err, what, as) ?? wrapError(err, what) : wrapError(err, what);
  // The client's discovery (cached) turns apiVersion/kind into a path; the method is protected in its typings only.
  const pathOf = (ref: ObjectRef, action: "read" | "list") => (objects as unknown as { specUriPath(spec: KubernetesObject, action: string): Promise<string> })
    .specUriPath({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } }, action);
  const readError = (err: unknown, ref: ObjectRef): Error => {
    // Before the kind check: a refused impersonation fails discovery too, with a 403.
    const denied = as && forbidden(err, `error reading ${ref.kind} ${ref.namespace}/${ref.name}`, as);
    if (denied) return denied;
    if (err instanceof Error && /Unrecognized API version and kind|Failed to fetch resource metadata/i.test(err.message)) {
      return new UnknownKindError(`the API server does not serve kind ${ref.kind} in ${ref.apiVersion}`, { cause: err });
    }
    return wrap(err, `error reading ${ref.kind} ${ref.namespace}/${ref.name}`);
  };
  const readObject = async (ref: ObjectRef): Promise<KubeObject | undefined> => {
    try {
      return withKind((await getJson(kc, await pathOf(ref, "read"))) as KubeObject, ref);
    } catch (err) {
      if (isObjectNotFound(err)) return undefined;
      throw readError(err, ref);
    }
  };
  const source: WatchSource = {
    kc,
    read: readObject,
    collectionPath: (ref) => pathOf(ref, "list"),
    async list(ref) {
      try {
        const list = (await getJson(kc, await pathOf(ref, "list"), { fieldSelector: `metadata.name=${ref.name}` })) as { items?: KubeObject[]; metadata?: { resourceVersion?: string } };
        const item = list.items?.[0];
        return { object: item && withKind(item, ref), resourceVersion: list.metadata?.resourceVersion ?? "" };
      } catch (err) {
        if (err instanceof ApiException && err.code === 403) throw new WatchDenied(`may not list ${ref.kind}`);
        throw readError(err, ref);
      }
    },
  };
  return {
    impersonating,
    readObject,
    watchObject: (ref) => shared.watches.feed(as ? `${as.namespace}/${as.name}` : "", source, ref),
    application: shared.application,
    async readSecret(namespace, name) {
      try {
        const secret = await core.readNamespacedSecret({ name, namespace });
        const data: Record<string, string> = {};
        for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, "base64").toString("utf8");
        for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = v;
        return data;
      } catch (err) {
        if (isObjectNotFound(err)) return undefined;
        throw wrap(err, `error reading Secret ${namespace}/${name}`);
      }
    },
  };
}

/** List items come without apiVersion and kind; conditions may use them. */
function withKind(obj: KubeObject, ref: ObjectRef): KubeObject {
  return { ...obj, apiVersion: obj.apiVersion ?? ref.apiVersion, kind: obj.kind ?? ref.kind };
}

/**
 * The API server's JSON as sent. The typed client would drop fields its models lack (newer
 * fields) and turn timestamps into Date objects, which CEL sees as empty maps; conditions are
 * written against what `kubectl get -o json` shows, and watch events carry exactly that.
 */
async function getJson(kc: KubeConfig, path: string, query: Record<string, string> = {}, timeoutMs = 30_000): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const url = new URL(cluster.server.replace(/\/$/, "") + path);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const options: https.RequestOptions = { method: "GET", headers: { accept: "application/json" } };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = (url.protocol === "https:" ? https : http).request(url, { ...options, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try { body = JSON.parse(text); } catch { /* not JSON: kept as text */ }
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300 && typeof body === "object") resolve(body);
        else reject(new ApiException(code, "Unsuccessful HTTP Request", body, res.headers as Record<string, string>));
      });
    });
    req.on("timeout", () => req.destroy(new Error(`the API server did not answer within ${timeoutMs / 1000} s`)));
    req.on("error", reject);
    req.end();
  });
}

/** A 404 for the object itself; a 404 from API discovery (unknown group/version) is not one. */
function isObjectNotFound(err: unknown): boolean {
  if (!(err instanceof ApiException) || err.code !== 404) return false;
  try {
    const body = typeof err.body === "string" ? JSON.parse(err.body) : err.body;
    return body?.reason === "NotFound";
  } catch {
    return false;
  }
}

/** A 403 met while impersonating, explained: who was refused what, and what to grant. */
function forbidden(err: unknown, what: string, as: { namespace: string; name: string }): ForbiddenReadError | undefined {
  if (!(err instanceof ApiException) || err.code !== 403) return undefined;
  let reason = "";
  try {
    const body = typeof err.body === "string" ? JSON.parse(err.body) : err.body;
    reason = typeof body?.message === "string" ? body.message : "";
  } catch { /* body was not JSON */ }
  const sa = `ServiceAccount ${as.namespace}/${as.name}`;
  const from = `(the Application's annotation ${SERVICE_ACCOUNT_ANNOTATION}; the executor reads as it, as KubeVela applies as it)`;
  if (/cannot impersonate/.test(reason)) {
    return new ForbiddenReadError(`${what}: the executor may not impersonate ${sa} ${from}: ${reason}; grant the executor's ClusterRole impersonate on serviceaccounts (addon/resources/rbac.cue)`);
  }
  const m = /cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?/.exec(reason);
  const grant = m ? `grant ${sa} ${m[1]} on ${m[2]}${m[3] ? ` (API group ${m[3]})` : ""} in namespace ${as.namespace} (a Role and RoleBinding)` : `grant ${sa} read access to it`;
  return new ForbiddenReadError(`${what}: ${sa} ${from} may not read it (${reason || "HTTP 403 Forbidden"}); ${grant}`);
}

/** Keeps the API server's reason but not the whole response dump the client puts in messages. */
function wrapError(err: unknown, what: string): Error {
  if (err instanceof ApiException) {
    let reason = "";
    try {
      const body = typeof err.body === "string" ? JSON.parse(err.body) : err.body;
      reason = body?.message ?? "";
    } catch { /* body was not JSON */ }
    return new Error(`${what}: HTTP ${err.code}${reason ? ` ${reason}` : ""}`);
  }
  return new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
