// Reads from the Kubernetes API. Writes are KubeVela's job (kube.#Apply in the templates), so
// objects stay tracked and garbage-collected with their Application.
import { KubeClient, KubeStatusError, resourcePath } from "./api-client.js";
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

/** Reads as the kubeconfig's user; `watches` and `applications` are shared by the whole executor. */
export function createKubeReader(kc: KubeClient, watches = new ObjectWatches(), applications = new ApplicationLookup(kc)): KubeReader {
  const impersonated = new Map<string, KubeReader>();
  const shared: Shared = { watches, application: applications.get.bind(applications) };
  const as = (key: string, who: Impersonation, user: string, groups: readonly string[]): KubeReader => {
    let r = impersonated.get(key);
    if (!r) {
      // Bounded: a client per identity in use; the oldest goes first.
      if (impersonated.size >= 256) impersonated.delete(impersonated.keys().next().value!);
      impersonated.set(key, (r = makeReader(kc.impersonating(user, groups), who, shared, root.impersonating, root.impersonatingUser)));
    }
    return r;
  };
  const root: KubeReader = makeReader(kc, undefined, shared,
    (namespace, name) => as(`sa\n${namespace}\n${name}`, { namespace, name }, `system:serviceaccount:${namespace}:${name}`, []),
    (namespace, user, groups) => as(`user\n${user}\n${groups.join(",")}`, { namespace, name: user, user: { name: user, groups } }, user, groups));
  shared.describeKind = root.describeKind;
  return root;
}

/**
 * The reads of one run: as the Application's ServiceAccount when the Application names one
 * (annotation app.oam.dev/service-account-name, as KubeVela does for its applies), else as the
 * executor. The Application is looked up on the run's first read; a failed look is retried.
 * `defaultUser`: KubeVela's AuthenticateApplication is on and acts as this user for an
 * Application that names nobody.
 */
export function kubeReaderForRun(kube: KubeReader, run: { namespace: string; application: string }, defaultUser?: string): KubeReader {
  return new RunKubeReader(kube, run, defaultUser);
}

// A class, not an object of closures: every waiting run holds one (docs/operations.md "Sizing").
class RunKubeReader implements KubeReader {
  private resolved: Promise<KubeReader> | undefined;

  constructor(private readonly kube: KubeReader, private readonly run: { namespace: string; application: string }, private readonly defaultUser: string | undefined) {}

  private reader(): Promise<KubeReader> {
    const { kube, run, defaultUser } = this;
    this.resolved ??= kube.application(run.namespace, run.application).then((app) => {
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
      this.resolved = undefined;
      throw err;
    });
    return this.resolved;
  }

  async readObject(ref: ObjectRef) {
    return (await this.reader()).readObject(ref);
  }

  watchObject(ref: ObjectRef) {
    return lazyFeed(async () => (await this.reader()).watchObject(ref));
  }

  async readSecret(namespace: string, name: string) {
    return (await this.reader()).readSecret(namespace, name);
  }

  impersonating(namespace: string, name: string) {
    return this.kube.impersonating(namespace, name);
  }

  impersonatingUser(namespace: string, user: string, groups: readonly string[]) {
    return this.kube.impersonatingUser(namespace, user, groups);
  }

  describeKind(apiVersion: string, kind: string, cluster?: string) {
    return this.kube.describeKind(apiVersion, kind, cluster);
  }

  application(namespace: string, name: string) {
    return this.kube.application(namespace, name);
  }
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

function makeReader(kc: KubeClient, as: Impersonation | undefined, shared: Shared, impersonating: KubeReader["impersonating"], impersonatingUser: KubeReader["impersonatingUser"]): KubeReader {
  const wrap = (err: unknown, what: string) => as ? forbidden(err, what, as) ?? wrapError(err, what) : wrapError(err, what);
  // Every path is built here from checked segments and the resource names discovery gives.
  // Discovery (the hub's, and each managed cluster's through cluster-gateway): one APIResourceList
  // per cluster and group version, kept a minute — a few seconds when it lacks the kind asked for
  // (a CRD being installed).
  const discovered = new Map<string, { at: number; resources: { name: string; kind: string; namespaced: boolean }[] | undefined }>();
  const describeKind = shared.describeKind ?? (async (apiVersion: string, kind: string, cluster?: string): Promise<KindInfo | undefined> => {
    const problem = apiVersionProblem(apiVersion) ?? kindProblem(kind) ?? (cluster ? clusterProblem(cluster) : undefined);
    if (problem) throw new RefusedReadError(`refused to look up ${kind} in ${apiVersion}: ${problem}`);
    const key = `${cluster ?? ""}\n${apiVersion}`;
    const find = (e: typeof entry) => e?.resources?.find((x) => x.kind === kind && !x.name.includes("/"));
    let entry = discovered.get(key);
    if (!entry || Date.now() - entry.at > (find(entry) ? 60_000 : 5_000)) {
      const path = `${cluster ? clusterPrefix(cluster) : ""}/${apiVersion.includes("/") ? "apis" : "api"}/${apiVersion.split("/").map(encodeURIComponent).join("/")}`;
      try {
        entry = { at: Date.now(), resources: (await kc.request<{ resources?: { name: string; kind: string; namespaced: boolean }[] }>("GET", path)).resources ?? [] };
      } catch (err) {
        if (!(err instanceof KubeStatusError && err.code === 404) || noSuchCluster(err)) throw err;
        entry = { at: Date.now(), resources: undefined };
      }
      if (discovered.size >= 512) discovered.clear();
      discovered.set(key, entry);
    }
    // The kind's own resource, not a subresource that reports the same kind (pods/status is a Pod).
    const r = find(entry);
    return r && { group: apiVersion.includes("/") ? apiVersion.split("/")[0]! : "", resource: r.name, namespaced: r.namespaced };
  });
  const pathOf = async (ref: ObjectRef, action: "read" | "list") => {
    const problem = apiVersionProblem(ref.apiVersion) ?? kindProblem(ref.kind) ?? nameProblem(ref.name) ?? (ref.namespace ? namespaceProblem(ref.namespace) : undefined);
    if (problem) throw new RefusedReadError(`refused to read ${ref.kind} ${ref.namespace}/${ref.name}: ${problem}`);
    const kind = await describeKind(ref.apiVersion, ref.kind, ref.cluster);
    if (!kind) throw new UnknownKindError(`the API server does not serve kind ${ref.kind} in ${ref.apiVersion}`);
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
    if (err instanceof UnknownKindError) return err;
    // The gateway's 5xx is the managed cluster (or the gateway itself) out of reach: say so, it is waited for.
    if (ref.cluster && err instanceof KubeStatusError && err.code >= 500) return wrapError(err, `cluster ${ref.cluster} cannot be reached through cluster-gateway`);
    return wrap(err, `error reading ${ref.kind} ${ref.namespace}/${ref.name}`);
  };
  const readObject = async (ref: ObjectRef): Promise<KubeObject | undefined> => {
    try {
      const { path, namespaced } = await pathOf(ref, "read");
      return checkReturned(withKind((await kc.request<KubeObject>("GET", path)), ref), ref, namespaced);
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
        const list = await kc.request<{ items?: KubeObject[]; metadata?: { resourceVersion?: string } }>("GET", path, { query: { fieldSelector: `metadata.name=${ref.name}` } });
        const item = list.items?.[0];
        return { object: item && checkReturned(withKind(item, ref), ref, namespaced), resourceVersion: list.metadata?.resourceVersion ?? "" };
      } catch (err) {
        if (err instanceof RefusedReadError) throw err;
        if (err instanceof KubeStatusError && err.code === 403) throw new WatchDenied(`may not list ${ref.kind}`);
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
        const secret = await kc.request<{ data?: Record<string, string>; stringData?: Record<string, string> }>("GET", resourcePath({ group: "", version: "v1", namespace, plural: "secrets", name }));
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
  return err instanceof KubeStatusError && /no such cluster/i.test(typeof err.body === "string" ? err.body : JSON.stringify(err.body ?? ""));
}

/** List items come without apiVersion and kind; conditions may use them. */
function withKind(obj: KubeObject, ref: ObjectRef): KubeObject {
  return { ...obj, apiVersion: obj.apiVersion ?? ref.apiVersion, kind: obj.kind ?? ref.kind };
}

/** A 404 for the object itself; a 404 from API discovery (unknown group/version) is not one. */
function isObjectNotFound(err: unknown): boolean {
  return err instanceof KubeStatusError && err.code === 404 && err.reason === "NotFound";
}

/** A 403 met while impersonating, explained: who was refused what, and what to grant. */
function forbidden(err: unknown, what: string, as: Impersonation, cluster?: string): ForbiddenReadError | undefined {
  if (!(err instanceof KubeStatusError) || err.code !== 403) return undefined;
  const reason = err.detail;
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
  // The error's own message is the status and the API server's reason (server/kube/api-client.ts).
  if (err instanceof KubeStatusError) return new Error(`${what}: ${err.message}`);
  return new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
