// Each namespace's key to the executor. The definitions read Secret `step-executor` of their own
// namespace (as the Application's identity, which in KubeVela's AuthenticateApplication mode is
// the tenant's ServiceAccount) and sign with its key; server/http/auth.ts accepts a signature only for
// the namespace whose key made it. The executor writes that Secret into every namespace that has
// a KubeVela Application — told by the shared ApplicationWatch, re-listed every few minutes — with the executor's
// URL (from ConfigMap vela-system/step-executor, written by the addon) in an annotation, and, when
// the executor runs in the cluster, its Service (data.service): the definitions call only while a
// replica behind it is ready (docs/runs.md, "Outages").
import { KubeStatusError, resourcePath, type KubeClient } from "../kube/api-client.js";
import type { ApplicationWatch, WatchedApplication } from "../kubevela/application-watch.js";
import type { Logger } from "pino";
import { namespaceKey } from "./auth.js";
import { describeError } from "../shared/errors.js";
import { sleep } from "../shared/retry.js";

/** The Secret each namespace's steps read: data.key, annotation URL_ANNOTATION. */
export const KEY_SECRET = "step-executor";
export const URL_ANNOTATION = "step-executor.oam.dev/url";
/** `<namespace>/<name>` of the executor's Service, when it runs in the cluster. */
export const SERVICE_ANNOTATION = "step-executor.oam.dev/service";

/** Where the definitions find the executor: ConfigMap data.url, and data.service in the cluster. */
interface Endpoint {
  url: string;
  service?: string;
}
const endpointKey = (e: Endpoint) => `${e.url}\n${e.service ?? ""}`;
/** The ConfigMap's data as an Endpoint; undefined without a URL. */
const endpointOf = (data: Record<string, string> | undefined): Endpoint | undefined =>
  data?.url ? { url: data.url, service: data.service || undefined } : undefined;
const MANAGED_BY = { "app.kubernetes.io/managed-by": "step-executor" };

export interface NamespaceKeysOptions {
  /** Current token first: new keys derive from it; keys of the others stay valid (server/http/auth.ts). */
  tokens: readonly string[];
  /** Where the addon writes the executor's URL (data.url). */
  configNamespace: string;
  configName: string;
  /** How often the ConfigMap's watch is renewed. */
  resyncMs: number;
}

interface SecretObject {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string };
  type?: string;
  data?: Record<string, string>;
}

function secretPath(namespace: string, name?: string): string {
  return resourcePath({ group: "", version: "v1", namespace, plural: "secrets", ...(name === undefined ? {} : { name }) });
}

export class NamespaceKeys {
  private readonly stopped = new AbortController();
  /** Namespaces whose Secret is known to be current, with the endpoint (endpointKey) it was written with. */
  private readonly current = new Map<string, string>();
  private configLoop: Promise<void> | undefined;
  private known: string | undefined;
  /** Writes one after the other, so a resync and the events of a watch never race for one Secret. */
  private queue: Promise<void> = Promise.resolve();
  /** Secrets written (for tests). */
  written = 0;

  constructor(private readonly kc: KubeClient, private readonly log: Logger, private readonly o: NamespaceKeysOptions, private readonly applications: ApplicationWatch) {
    applications.on((e) => {
      // Every namespace again at each listing (a Secret deleted or edited by hand is made good).
      if (e.type === "listed") this.enqueue(() => this.ensureAll(e.applications, true));
      else if (e.type === "added") this.enqueue(() => this.ensureAll([e.application], false));
    });
  }

  start(): void {
    this.configLoop ??= this.followConfig();
    this.applications.start();
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await Promise.all([this.configLoop, this.queue]);
  }

  private enqueue(work: () => Promise<void>): void {
    this.queue = this.queue.then(work, work);
  }

  private async ensureAll(apps: WatchedApplication[], fresh: boolean): Promise<void> {
    if (this.stopped.signal.aborted) return;
    let endpoint: Endpoint;
    try {
      endpoint = await this.endpoint();
    } catch (err) {
      // No URL yet (the addon is not enabled): the ConfigMap's watch lists again once it is.
      this.log.warn({ err: describeError(err) }, "cannot write the namespaces' step-executor Secrets yet");
      return;
    }
    if (fresh) this.current.clear();
    for (const app of apps) await this.ensureOrLog(app.metadata?.namespace, endpoint);
  }

  /**
   * Follows the addon's ConfigMap: a new URL (the addon enabled again with another executorURL,
   * or enabled after the executor started) rewrites every namespace's Secret at once.
   */
  private async followConfig(): Promise<void> {
    const stop = this.stopped.signal;
    const path = resourcePath({ group: "", version: "v1", namespace: this.o.configNamespace, plural: "configmaps" });
    while (!stop.aborted) {
      await new Promise<void>((resolve) => {
        const query = { fieldSelector: `metadata.name=${this.o.configName}`, timeoutSeconds: Math.max(1, Math.round(this.o.resyncMs / 1000)) };
        this.kc.watch(path, query, (type, object) => {
          const cm = object as { data?: Record<string, string> };
          const e = endpointOf(cm.data);
          const key = e && endpointKey(e);
          if ((type === "ADDED" || type === "MODIFIED") && key && key !== this.known) {
            this.known = key;
            this.applications.resync();
          }
        }, () => resolve(), stop);
      });
      await sleep(1_000, stop).catch(() => undefined);
    }
  }

  private async endpoint(): Promise<Endpoint> {
    const cm = await this.kc.request<{ data?: Record<string, string> }>("GET", resourcePath({ group: "", version: "v1", namespace: this.o.configNamespace, plural: "configmaps", name: this.o.configName }));
    const e = endpointOf(cm.data);
    if (!e) throw new Error(`ConfigMap ${this.o.configNamespace}/${this.o.configName} has no data.url (enable the step-executor addon)`);
    this.known = endpointKey(e);
    return e;
  }

  /** One namespace that cannot take its Secret (being deleted, a quota, a webhook) must not hold up the others. */
  private async ensureOrLog(namespace: string | undefined, endpoint: Endpoint): Promise<void> {
    try {
      await this.ensure(namespace, endpoint);
    } catch (err) {
      if (this.stopped.signal.aborted) return;
      this.log.warn({ err: describeError(err), namespace }, "cannot write the namespace's step-executor Secret; the next resync tries again");
    }
  }

  /** Writes the namespace's Secret unless it is current. */
  private async ensure(namespace: string | undefined, endpoint: Endpoint): Promise<void> {
    if (!namespace || this.current.get(namespace) === endpointKey(endpoint)) return;
    const key = namespaceKey(this.o.tokens[0]!, namespace);
    const annotations: Record<string, string> = { [URL_ANNOTATION]: endpoint.url };
    if (endpoint.service) annotations[SERVICE_ANNOTATION] = endpoint.service;
    const desired: SecretObject = {
      metadata: { name: KEY_SECRET, namespace, labels: MANAGED_BY, annotations },
      type: "Opaque",
      data: { key: Buffer.from(key).toString("base64") },
    };
    let existing: SecretObject | undefined;
    try {
      existing = await this.kc.request<SecretObject>("GET", secretPath(namespace, KEY_SECRET));
    } catch (err) {
      if (!(err instanceof KubeStatusError && err.code === 404)) throw err;
    }
    if (!existing) {
      try {
        await this.kc.request("POST", secretPath(namespace), { body: desired });
        this.written++;
        this.log.info({ namespace }, "wrote the namespace's step-executor Secret");
      } catch (err) {
        // Another replica wrote it first.
        if (!(err instanceof KubeStatusError && err.code === 409)) throw err;
      }
      // No wake-up of the Application: its step waits on KubeVela's backoff, whose first rounds come
      // within seconds, and a write to the Application during its first reconcile could drop a session.
    } else if (existing.data?.key !== desired.data!.key || existing.metadata?.annotations?.[URL_ANNOTATION] !== endpoint.url
      || existing.metadata?.annotations?.[SERVICE_ANNOTATION] !== endpoint.service) {
      await this.kc.request("PUT", secretPath(namespace, KEY_SECRET), {
        body: { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion } },
      });
      this.written++;
      this.log.info({ namespace }, "updated the namespace's step-executor Secret (new token or URL)");
    }
    this.current.set(namespace, endpointKey(endpoint));
  }
}
