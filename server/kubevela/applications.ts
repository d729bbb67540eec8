// The KubeVela Application a run belongs to, read once for everyone who needs it: the run store
// (the StepRun's owner uid), Events (the involved object's uid), and the reads of a run (its
// ServiceAccount annotation). Concurrent lookups of one Application share one GET, and answers
// are kept `ttlMs`: 10,000 runs of one Application cost one read, not three each.
import { resourcePath, type KubeClient } from "../kube/api-client.js";
import { apiError } from "../shared/errors.js";
import { timed } from "../shared/retry.js";
import { allSteps, type StepStatus } from "./workflow-status.js";

/** KubeVela's Application resource, for server/kube/api-client.ts resourcePath. */
export const APPLICATIONS = { group: "core.oam.dev", version: "v1beta1", plural: "applications" } as const;

export interface ApplicationMeta {
  uid?: string;
  annotations: Record<string, string>;
  /** Sessions of steps that have ended (`step` + "\n" + id, step groups' sub-steps included), as the status showed them. */
  endedSessions?: ReadonlySet<string>;
}

export function sessionKey(step: string, session: string): string {
  return `${step}\n${session}`;
}

/**
 * Sessions KubeVela ended: succeeded, skipped, or failed for good. A step failed with reason
 * Execute has not ended: KubeVela evaluates it again in the same session (a provider call that
 * errored, e.g. while an executor replica was being killed), and that poll must still start it.
 */
export function endedSessions(steps: StepStatus[] | undefined): Set<string> {
  const ended = (s: StepStatus) => s.phase === "succeeded" || s.phase === "skipped" || (s.phase === "failed" && s.reason !== "Execute");
  return new Set(allSteps(steps).filter((s) => s.name && s.id && ended(s)).map((s) => sessionKey(s.name!, s.id!)));
}

export interface ApplicationLookupOptions {
  /** How long an answer (found or not found) is reused. */
  ttlMs: number;
  /** Applications remembered at most (the cache is dropped beyond). */
  max: number;
  requestTimeoutMs: number;
}

/** The Application could not be read (not a 404): the caller decides what that means. */
export class ApplicationReadError extends Error {
  constructor(message: string, readonly code?: number, options?: ErrorOptions) {
    super(message, options);
  }
}

export class ApplicationLookup {
  private readonly api: KubeClient;
  private readonly o: ApplicationLookupOptions;
  private readonly known = new Map<string, { meta: ApplicationMeta | null; at: number }>();
  private readonly inFlight = new Map<string, Promise<ApplicationMeta | null>>();

  constructor(kc: KubeClient, options: Partial<ApplicationLookupOptions> = {}, private readonly now: () => number = Date.now) {
    this.api = kc;
    this.o = { ttlMs: 10_000, max: 10_000, requestTimeoutMs: 10_000, ...options };
  }

  /** The Application's uid and annotations; null when there is no such Application (or no Application CRD). */
  async get(namespace: string, name: string): Promise<ApplicationMeta | null> {
    const key = `${namespace}/${name}`;
    const cached = this.known.get(key);
    if (cached && this.now() - cached.at < this.o.ttlMs) return cached.meta;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.read(namespace, name).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async read(namespace: string, name: string): Promise<ApplicationMeta | null> {
    let meta: ApplicationMeta | null;
    try {
      const app = (await timed(
        this.api.request("GET", resourcePath({ ...APPLICATIONS, namespace, name })),
        this.o.requestTimeoutMs, "reading the Application",
      )) as { metadata?: { uid?: string; annotations?: Record<string, string> }; status?: { workflow?: { steps?: StepStatus[] } } };
      meta = { ...(app.metadata?.uid ? { uid: app.metadata.uid } : {}), annotations: app.metadata?.annotations ?? {}, endedSessions: endedSessions(app.status?.workflow?.steps) };
    } catch (err) {
      const code = (err as { code?: number }).code;
      // 404: no such Application, or no Application CRD at all (a client that is not KubeVela).
      if (code !== 404) {
        const e = apiError(err);
        throw new ApplicationReadError(`error reading Application ${namespace}/${name}: ${e.code ? `HTTP ${e.code} ${e.message}` : e.message}`, code, { cause: err });
      }
      meta = null;
    }
    if (this.known.size >= this.o.max) this.known.clear();
    this.known.set(`${namespace}/${name}`, { meta, at: this.now() });
    return meta;
  }
}
