// Reads from the Kubernetes API. Writes are KubeVela's job (kube.#Apply in the templates), so
// objects stay tracked and garbage-collected with their Application.
import { createHash } from "node:crypto";
import { Agent as HttpsAgent, type AgentOptions } from "node:https";
import { ApiException, CoreV1Api, KubeConfig, KubernetesObjectApi, type Cluster, type KubernetesObject } from "@kubernetes/client-node";

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
  /** A Secret's decoded data, or undefined when the Secret does not exist. */
  readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

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

export function createKubeReader(kc: KubeConfig): KubeReader {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  return {
    async readObject(ref) {
      try {
        return (await objects.read({
          apiVersion: ref.apiVersion,
          kind: ref.kind,
          metadata: { name: ref.name, namespace: ref.namespace },
        })) as KubeObject;
      } catch (err) {
        if (isObjectNotFound(err)) return undefined;
        if (err instanceof Error && /Unrecognized API version and kind|Failed to fetch resource metadata/i.test(err.message)) {
          throw new UnknownKindError(`the API server does not serve kind ${ref.kind} in ${ref.apiVersion}`, { cause: err });
        }
        throw wrap(err, `error reading ${ref.kind} ${ref.namespace}/${ref.name}`);
      }
    },
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

/** Keeps the API server's reason but not the whole response dump the client puts in messages. */
function wrap(err: unknown, what: string): Error {
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
