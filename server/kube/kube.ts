// Reads from the Kubernetes API. Writes are KubeVela's job (kube.#Apply in the templates), so
// objects stay tracked and garbage-collected with their Application.
import { createHash } from "node:crypto";
import http from "node:http";
import https, { Agent as HttpsAgent, type AgentOptions } from "node:https";
import { ApiException, KubeConfig, KubernetesObjectApi, type Cluster, type KubernetesObject } from "@kubernetes/client-node";
import { ApplicationLookup, type ApplicationMeta } from "../kubevela/applications.js";
import { TerminalError } from "../shared/errors.js";
import { apiVersionProblem, clusterProblem, isSecretResource, kindProblem, namespaceProblem, nameProblem, type KubeObject, type ObjectRef } from "./object-ref.js";
import { sleep } from "../shared/retry.js";
import { ObjectWatches, WatchDenied, type ObjectFeed, type WatchSource } from "./object-watch.js";

/** KubeVela applies an Application's resources as this ServiceAccount when the annotation is set. */
export const SERVICE_ACCOUNT_ANNOTATION = "app.oam.dev/service-account-name";
/** … and as this user (with the groups of GROUP_ANNOTATION, comma-separated), which wins over the ServiceAccount. */
export const USERNAME_ANNOTATION = "app.oam.dev/username";
export const GROUP_ANNOTATION = "app.oam.dev/group";
/**
 * Who KubeVela acts as for an Application with neither annotation when its AuthenticateApplication
 * feature is on: vela-core's --authentication-default-user (pkg/controller/flags.go), by default this user.
 */
export const DEFAULT_APPLICATION_USER = "kubevela:vela-core";

/** Whom a reader impersonates: a ServiceAccount, or a user with groups; `namespace` is the Application's. */
interface Impersonation {
  namespace: string;
  name: string;
  user?: { name: string; groups: readonly string[] };
}

function describeIdentity(as: Impersonation): string {
  return as.user ? `user ${as.user.name}${as.user.groups.length ? ` (groups ${as.user.groups.join(", ")})` : ""}` : `ServiceAccount ${as.namespace}/${as.name}`;
}

export interface KindInfo {
  group: string;
  /** The plural resource name, e.g. deployments. */
  resource: string;
  namespaced: boolean;
}

export interface KubeReader {
  /** The live object, or undefined when it does not exist (yet). */
  readObject(ref: ObjectRef): Promise<KubeObject | undefined>;
  /** Follows the object (a watch shared by every step waiting on it; server/kube/object-watch.ts). Close the feed when done. */
  watchObject(ref: ObjectRef): ObjectFeed;
  /** A Secret's decoded data, or undefined when the Secret does not exist. */
  readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** The same reads, made as ServiceAccount `namespace/name` (Kubernetes impersonation). */
  impersonating(namespace: string, name: string): KubeReader;
  /** The same reads, made as user `user` with `groups` (an Application's app.oam.dev/username and app.oam.dev/group); `namespace` is the Application's, for messages. */
  impersonatingUser(namespace: string, user: string, groups: readonly string[]): KubeReader;
  /** What discovery says of a kind (in a managed cluster, through cluster-gateway): its resource (never a subresource) and scope; undefined when the API server does not serve it. */
  describeKind(apiVersion: string, kind: string, cluster?: string): Promise<KindInfo | undefined>;
  /** A KubeVela Application's uid and annotations, read by the executor itself (shared, cached: server/kubevela/applications.ts); null when there is none. */
  application(namespace: string, name: string): Promise<ApplicationMeta | null>;
}

/**
 * The impersonated ServiceAccount may not do a read (or the executor may not impersonate it): a
 * fix of RBAC, not something waiting cures, so the step fails with what to grant.
 */
export class ForbiddenReadError extends TerminalError {}

/** The reference could leave the object it names (server/kube/object-ref.ts): never sent, the step fails. */
export class RefusedReadError extends TerminalError {}

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
  const shared: Shared = { watches, application: applications.get.bind(applications) };
  const as = (key: string, who: Impersonation, user: string, groups: readonly string[]): KubeReader => {
    let r = impersonated.get(key);
    if (!r) {
      // Bounded: a client per identity in use; the oldest goes first.
      if (impersonated.size >= 256) impersonated.delete(impersonated.keys().next().value!);
      impersonated.set(key, (r = makeReader(impersonatingConfig(kc, user, groups), who, shared, root.impersonating, root.impersonatingUser)));
    }
    return r;
  };
  const root: KubeReader = makeReader(kc, undefined, shared,
    (namespace, name) => as(`sa\n${namespace}\n${name}`, { namespace, name }, `system:serviceaccount:${namespace}:${name}`, []),
    (namespace, user, groups) => as(`user\n${user}\n${groups.join(",")}`, { namespace, name: user, user: { name: user, groups } }, user, groups));
  shared.describeKind = root.describeKind;
  return root;
}

/** A copy of `kc` whose current user sends Impersonate-User (the API server adds a ServiceAccount's groups) and Impersonate-Group. */
function impersonatingConfig(kc: KubeConfig, user: string, groups: readonly string[]): KubeConfig {
  const current = kc.getCurrentUser();
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: kc.clusters,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
    users: kc.users.map((u) => (u.name === current?.name ? { ...u, impersonateUser: user } : u)),
  });
  if (groups.length) {
    // The client knows Impersonate-User only; one header per group (a comma-joined value would be one group).
    const target = copy as unknown as { applyOptions(opts: https.RequestOptions): Promise<void> };
    const apply = target.applyOptions.bind(copy);
    target.applyOptions = async (opts) => {
      await apply(opts);
      opts.headers = { ...opts.headers, "Impersonate-Group": [...groups] };
    };
  }
  reuseConnections(copy);
  return copy;
}

/**
 * The reads of one run: as the Application's ServiceAccount when the Application names one
 * (annotation app.oam.dev/service-account-name, as KubeVela does for its applies), else as the
 * executor. The Application is looked up on the run's first read; a failed look is retried.
 */
/** `defaultUser`: KubeVela's AuthenticateApplication is on and acts as this user for an Application that names nobody. */
export function kubeReaderForRun(kube: KubeReader, run: { namespace: string; application: string }, defaultUser?: string): KubeReader {
  let resolved: Promise<KubeReader> | undefined;
  const reader = () => {
    resolved ??= kube.application(run.namespace, run.application).then((app) => {
      // KubeVela's own rule (pkg/auth/userinfo.go GetUserInfoInAnnotation): the username wins, then the ServiceAccount.
      const annotations = app?.annotations ?? {};
      const user = annotations[USERNAME_ANNOTATION];
      const groups = (annotations[GROUP_ANNOTATION] ?? "").split(",").map((g) => g.trim()).filter(Boolean);
      if (user) return kube.impersonatingUser(run.namespace, user, groups);
      const sa = annotations[SERVICE_ACCOUNT_ANNOTATION];
      if (sa) return kube.impersonating(run.namespace, sa);
      // With AuthenticateApplication on, KubeVela acts as its default user for such an Application: so do its steps.
      return defaultUser ? kube.impersonatingUser(run.namespace, defaultUser, groups) : kube;
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
    impersonatingUser: (namespace, user, groups) => kube.impersonatingUser(namespace, user, groups),
    describeKind: (apiVersion, kind, cluster) => kube.describeKind(apiVersion, kind, cluster),
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

interface Shared {
  watches: ObjectWatches;
  application: KubeReader["application"];
  /** Discovery as the executor itself (what kinds exist is no secret; an impersonated identity may not be allowed to ask). */
  describeKind?: KubeReader["describeKind"];
}

function makeReader(kc: KubeConfig, as: Impersonation | undefined, shared: Shared, impersonating: KubeReader["impersonating"], impersonatingUser: KubeReader["impersonatingUser"]): KubeReader {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const wrap = (err: unknown, what: string) => as ? forbidden(err, what, as) ?? wrapError(err, what) : wrapError(err, what);
  // Every path is built here from checked segments and the resource discovery names (cached by
  // the client), never from the client's own path builder, which trusts names and apiVersions.
  const discovery = objects as unknown as {
    resource(apiVersion: string, kind: string): Promise<{ name: string; namespaced: boolean } | undefined>;
    apiVersionResourceCache: Record<string, { resources: { name: string; kind: string; namespaced: boolean }[] } | undefined>;
  };
  // Managed clusters' discovery, through cluster-gateway: one APIResourceList per cluster and group version, kept a minute.
  const clusterDiscovery = new Map<string, { at: number; resources: { name: string; kind: string; namespaced: boolean }[] | undefined }>();
  const describeKind = shared.describeKind ?? (async (apiVersion: string, kind: string, cluster?: string): Promise<KindInfo | undefined> => {
    const problem = apiVersionProblem(apiVersion) ?? kindProblem(kind) ?? (cluster ? clusterProblem(cluster) : undefined);
    if (problem) throw new RefusedReadError(`refused to look up ${kind} in ${apiVersion}: ${problem}`);
    if (cluster) {
      const key = `${cluster}\n${apiVersion}`;
      let entry = clusterDiscovery.get(key);
      if (!entry || Date.now() - entry.at > 60_000) {
        const path = `${clusterPrefix(cluster)}/${apiVersion.includes("/") ? "apis" : "api"}/${apiVersion.split("/").map(encodeURIComponent).join("/")}`;
        try {
          entry = { at: Date.now(), resources: ((await getJson(kc, path)) as { resources?: { name: string; kind: string; namespaced: boolean }[] }).resources ?? [] };
        } catch (err) {
          if (!(err instanceof ApiException && err.code === 404) || noSuchCluster(err)) throw err;
          entry = { at: Date.now(), resources: undefined };
        }
        if (clusterDiscovery.size >= 512) clusterDiscovery.clear();
        clusterDiscovery.set(key, entry);
      }
      const r = entry.resources?.find((x) => x.kind === kind && !x.name.includes("/"));
      return r && { group: apiVersion.includes("/") ? apiVersion.split("/")[0]! : "", resource: r.name, namespaced: r.namespaced };
    }
    try {
      await discovery.resource(apiVersion, kind);
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
    // The kind's own resource, not a subresource that reports the same kind (pods/status is a Pod).
    const r = discovery.apiVersionResourceCache[apiVersion]?.resources.find((x) => x.kind === kind && !x.name.includes("/"));
    return r && { group: apiVersion.includes("/") ? apiVersion.split("/")[0]! : "", resource: r.name, namespaced: r.namespaced };
  });
  const pathOf = async (ref: ObjectRef, action: "read" | "list") => {
    const problem = apiVersionProblem(ref.apiVersion) ?? kindProblem(ref.kind) ?? nameProblem(ref.name) ?? (ref.namespace ? namespaceProblem(ref.namespace) : undefined);
    if (problem) throw new RefusedReadError(`refused to read ${ref.kind} ${ref.namespace}/${ref.name}: ${problem}`);
    const kind = await describeKind(ref.apiVersion, ref.kind, ref.cluster);
    if (!kind) throw new Error(`Unrecognized API version and kind: ${ref.apiVersion} ${ref.kind}`);
    if (isSecretResource(kind.group, kind.resource)) {
      throw new RefusedReadError(`kind: steps do not read Secrets (their data would appear in the Application's status); reference Secrets with secretHeaders or credentials instead`);
    }
    const resource = { name: kind.resource, namespaced: kind.namespaced };
    const parts = [ref.apiVersion.includes("/") ? "/apis" : "/api", ...ref.apiVersion.split("/")];
    if (resource.namespaced) parts.push("namespaces", ref.namespace);
    parts.push(resource.name);
    if (action === "read") parts.push(ref.name);
    const path = parts.map((p, i) => (i === 0 ? p : encodeURIComponent(p))).join("/");
    // As KubeVela does for the Application's identity (pkg/auth/round_trippers.go): `impersonate=true`
    // makes cluster-gateway act as that identity in the managed cluster too, so its RBAC there counts.
    return { path: ref.cluster ? `${clusterPrefix(ref.cluster)}${path}${as ? "?impersonate=true" : ""}` : path, namespaced: resource.namespaced };
  };
  /** The API server answered with the object asked for (a proxy or a decoded path could answer with another). */
  const checkReturned = (obj: KubeObject, ref: ObjectRef, namespaced: boolean): KubeObject => {
    const m = obj.metadata ?? {};
    if (m.name !== ref.name || (namespaced ? m.namespace !== ref.namespace : m.namespace !== undefined && m.namespace !== "") || (obj.kind !== undefined && obj.kind !== ref.kind)) {
      throw new RefusedReadError(`refused the answer for ${ref.kind} ${ref.namespace}/${ref.name}: the API server returned ${String(obj.kind)} ${m.namespace ?? ""}/${m.name ?? ""}`);
    }
    return obj;
  };
  const readError = (err: unknown, ref: ObjectRef): Error => {
    if (err instanceof RefusedReadError) return err;
    // A typo, not something waiting cures (an unreachable cluster, by contrast, is waited for).
    if (ref.cluster && noSuchCluster(err)) return new RefusedReadError(`cluster: "${ref.cluster}" is not a cluster joined to KubeVela (vela cluster list); fix cluster`);
    // Before the kind check: a refused impersonation fails discovery too, with a 403.
    const denied = as && forbidden(err, `error reading ${ref.kind} ${ref.namespace}/${ref.name}${ref.cluster ? ` in cluster ${ref.cluster}` : ""}`, as, ref.cluster);
    if (denied) return denied;
    if (err instanceof Error && /Unrecognized API version and kind|Failed to fetch resource metadata/i.test(err.message)) {
      return new UnknownKindError(`the API server does not serve kind ${ref.kind} in ${ref.apiVersion}`, { cause: err });
    }
    // The gateway's 5xx is the managed cluster (or the gateway itself) out of reach: say so, it is waited for.
    if (ref.cluster && err instanceof ApiException && err.code >= 500) return wrapError(err, `cluster ${ref.cluster} cannot be reached through cluster-gateway`);
    return wrap(err, `error reading ${ref.kind} ${ref.namespace}/${ref.name}`);
  };
  const readObject = async (ref: ObjectRef): Promise<KubeObject | undefined> => {
    try {
      const { path, namespaced } = await pathOf(ref, "read");
      return checkReturned(withKind((await getJson(kc, path)) as KubeObject, ref), ref, namespaced);
    } catch (err) {
      if (isObjectNotFound(err) && !(ref.cluster && noSuchCluster(err))) return undefined;
      throw readError(err, ref);
    }
  };
  const source: WatchSource = {
    kc,
    read: readObject,
    collectionPath: async (ref) => (await pathOf(ref, "list")).path,
    async list(ref) {
      try {
        const { path, namespaced } = await pathOf(ref, "list");
        const list = (await getJson(kc, path, { fieldSelector: `metadata.name=${ref.name}` })) as { items?: KubeObject[]; metadata?: { resourceVersion?: string } };
        const item = list.items?.[0];
        return { object: item && checkReturned(withKind(item, ref), ref, namespaced), resourceVersion: list.metadata?.resourceVersion ?? "" };
      } catch (err) {
        if (err instanceof RefusedReadError) throw err;
        if (err instanceof ApiException && err.code === 403) throw new WatchDenied(`may not list ${ref.kind}`);
        throw readError(err, ref);
      }
    },
  };
  return {
    impersonating,
    impersonatingUser,
    describeKind,
    readObject,
    watchObject: (ref) => shared.watches.feed(as ? (as.user ? `user:${as.user.name}:${as.user.groups.join(",")}` : `${as.namespace}/${as.name}`) : "", source, ref),
    application: shared.application,
    async readSecret(namespace, name) {
      const problem = namespaceProblem(namespace) ?? nameProblem(name);
      if (problem) throw new RefusedReadError(`refused to read Secret ${namespace}/${name}: ${problem}`);
      try {
        // Raw, like every read here, so impersonated groups go as separate headers.
        const secret = (await getJson(kc, `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`)) as { data?: Record<string, string>; stringData?: Record<string, string> };
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

/**
 * Where the hub proxies to a managed cluster: KubeVela's cluster-gateway, the aggregated API
 * cluster.core.oam.dev/v1alpha1 (`vela cluster join` registers clusters with it). The hub checks
 * the reading identity's RBAC on clustergateways/proxy, so a tenant reads only clusters it may use.
 */
export function clusterPrefix(cluster: string): string {
  return `/apis/cluster.core.oam.dev/v1alpha1/clustergateways/${encodeURIComponent(cluster)}/proxy`;
}

/** The gateway's answer for a cluster that is not joined: a 500 Status "no such cluster <name>" (cluster-gateway v1.9). */
export function noSuchCluster(err: unknown): boolean {
  return err instanceof ApiException && /no such cluster/i.test(typeof err.body === "string" ? err.body : JSON.stringify(err.body ?? ""));
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
function forbidden(err: unknown, what: string, as: Impersonation, cluster?: string): ForbiddenReadError | undefined {
  if (!(err instanceof ApiException) || err.code !== 403) return undefined;
  let reason = "";
  try {
    const body = typeof err.body === "string" ? JSON.parse(err.body) : err.body;
    reason = typeof body?.message === "string" ? body.message : "";
  } catch { /* body was not JSON */ }
  const who = describeIdentity(as);
  const from = as.user
    ? `(the Application's identity in KubeVela: annotation ${USERNAME_ANNOTATION}, or KubeVela's default user when its AuthenticateApplication is on and the Application names no one; the executor reads as it, as KubeVela applies as it)`
    : `(the Application's annotation ${SERVICE_ACCOUNT_ANNOTATION}; the executor reads as it, as KubeVela applies as it)`;
  if (/cannot impersonate/.test(reason)) {
    const resource = as.user ? "users and groups" : "serviceaccounts";
    return new ForbiddenReadError(`${what}: the executor may not impersonate ${who} ${from}: ${reason}; grant the executor's ClusterRole impersonate on ${resource} (addon/resources/rbac.cue)`);
  }
  const m = /cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?/.exec(reason);
  const grantThere = (cluster: string) => `vela auth grant-privileges ${as.user ? `--user ${as.user.name}` : `--serviceaccount ${as.name} -n ${as.namespace}`} --for-namespace ${as.namespace} --for-cluster ${cluster}`;
  if (cluster && m?.[2]?.startsWith("clustergateways")) {
    // The hub decides which managed clusters an identity may reach: RBAC on clustergateways/proxy (cluster-scoped).
    const subject = as.user ? `User ${as.user.name}` : `ServiceAccount ${as.namespace}/${as.name}`;
    return new ForbiddenReadError(`${what}: ${who} ${from} may not use cluster ${cluster} (${reason}); the platform team grants it on the hub: a ClusterRole allowing get on clustergateways/proxy (API group cluster.core.oam.dev) with resourceNames [${cluster}], bound to ${subject} by a ClusterRoleBinding (and rights in the cluster: ${grantThere(cluster)})`);
  }
  if (cluster && m) {
    // Through the gateway as the Application's identity: the managed cluster's own RBAC refused.
    return new ForbiddenReadError(`${what}: ${who} ${from} may not read it in cluster ${cluster} (${reason}); grant ${who} ${m[1]} on ${m[2]}${m[3] ? ` (API group ${m[3]})` : ""} in namespace ${as.namespace} of cluster ${cluster}, e.g. ${grantThere(cluster)}`);
  }
  const grant = m ? `grant ${who} ${m[1]} on ${m[2]}${m[3] ? ` (API group ${m[3]})` : ""} in namespace ${as.namespace} (a Role and RoleBinding)` : `grant ${who} read access to it`;
  return new ForbiddenReadError(`${what}: ${who} ${from} may not read it (${reason || "HTTP 403 Forbidden"}); ${grant}`);
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
