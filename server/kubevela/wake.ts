// Wake-up: make KubeVela poll an Application's steps now instead of after its wait backoff (up to
// 60 s). Any change of the Application's metadata makes the controller reconcile at once, and a
// reconcile evaluates every waiting step; metadata is not part of the revision, so the workflow
// does not restart and the spec does not change (docs/runs.md, verified in
// test/e2e/runs.e2e.test.ts). KubeVela copies Application annotations onto the resources it
// renders, so the first wake also lists the wake annotation in `filter.oam.dev/annotation-keys`
// when the Application has no such filter of its own. What was checked is remembered per
// Application *object* (its uid, sent with each patch: a re-created Application refuses the patch
// and is checked again) and only while the patch answers still show a filter (one removed, e.g.
// in Git, is checked again on the next wake).
import { MERGE_PATCH, resourcePath, type KubeClient } from "../kube/api-client.js";
import { APPLICATIONS } from "./applications.js";
import type { Logger } from "pino";
import { describeError } from "../shared/errors.js";

export const WAKE_ANNOTATION = "step-executor.oam.dev/wake";
export const FILTER_ANNOTATION = "filter.oam.dev/annotation-keys";
/** The field manager of the wake patch (managedFields, `kubectl get --show-managed-fields`). */
export const FIELD_MANAGER = "step-executor";

export interface Waker {
  /** Asks KubeVela to reconcile the Application now; never throws, never waits. */
  wake(namespace: string, application: string, reason: string): void;
  /** Resolves when the wakes under way are done. */
  idle(): Promise<void>;
}

export const noWake: Waker = { wake() {}, idle: async () => undefined };

interface AppMeta {
  metadata?: { annotations?: Record<string, string>; resourceVersion?: string; uid?: string };
}

/** Patches `step-executor.oam.dev/wake` on the Application; wakes of one Application coalesce. */
export class ApplicationWaker implements Waker {
  private readonly api: KubeClient;
  /** Applications whose filter annotation was checked: the uid of the object checked. */
  private readonly filtered = new Map<string, string>();
  /** Per Application: a wake under way, and whether another one was asked for meanwhile. */
  private readonly inFlight = new Map<string, { again: boolean; done: Promise<void> }>();
  /** When each Application was last patched. */
  private readonly last = new Map<string, number>();
  /** Wakes sent (for tests and metrics). */
  sent = 0;

  /**
   * `minIntervalMs`: least time between two patches of one Application. The reconcile a wake
   * starts may run a workflow step for the first time; another write to the Application before
   * that reconcile stored its status would make KubeVela give that step a new session.
   */
  constructor(kc: KubeClient, private readonly log: Logger, private readonly minIntervalMs = 3_000, private readonly now: () => number = Date.now) {
    this.api = kc;
  }

  wake(namespace: string, application: string, reason: string): void {
    const key = `${namespace}/${application}`;
    const current = this.inFlight.get(key);
    if (current) {
      current.again = true;
      return;
    }
    const entry = { again: false, done: Promise.resolve() };
    entry.done = (async () => {
      do {
        entry.again = false;
        const wait = (this.last.get(key) ?? -Infinity) + this.minIntervalMs - this.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        this.last.set(key, this.now());
        if (this.last.size > 10_000) this.last.clear();
        await this.patch(namespace, application, reason);
      } while (entry.again);
    })().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, entry);
  }

  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()].map((e) => e.done));
  }

  private async patch(namespace: string, name: string, reason: string, conflicts = 0): Promise<void> {
    const key = `${namespace}/${name}`;
    const annotations: Record<string, string> = { [WAKE_ANNOTATION]: new Date(this.now()).toISOString() };
    const metadata: { annotations: Record<string, string>; resourceVersion?: string; uid?: string } = { annotations };
    try {
      let uid = this.filtered.get(key);
      if (uid === undefined) {
        const app = (await this.api.request("GET", resourcePath({ ...APPLICATIONS, namespace, name }))) as AppMeta;
        uid = app.metadata?.uid;
        const filter = app.metadata?.annotations?.[FILTER_ANNOTATION];
        if (filter === undefined) {
          // No filter of its own: keep the wake annotation off the rendered resources. The
          // resourceVersion makes the patch fail if a filter appeared meanwhile.
          annotations[FILTER_ANNOTATION] = WAKE_ANNOTATION;
          metadata.resourceVersion = app.metadata!.resourceVersion!;
        } else if (!filter.split(",").map((s) => s.trim()).includes(WAKE_ANNOTATION)) {
          this.log.info({ application: key }, `the Application has its own ${FILTER_ANNOTATION}; add ${WAKE_ANNOTATION} to it to keep the wake annotation off its resources`);
        }
      }
      // The uid makes the API server refuse the patch (422, uid immutable) if the Application was
      // deleted and re-created since it was checked.
      if (uid) metadata.uid = uid;
      const patched = (await this.api.request("PATCH", resourcePath({ ...APPLICATIONS, namespace, name }), { body: { metadata }, query: { fieldManager: FIELD_MANAGER }, contentType: MERGE_PATCH })) as AppMeta;
      if (this.filtered.size > 10_000) this.filtered.clear();
      if (uid && patched.metadata?.annotations?.[FILTER_ANNOTATION] !== undefined) this.filtered.set(key, uid);
      else this.filtered.delete(key); // the filter is gone (removed in Git?): check on the next wake
      this.sent++;
      this.log.debug({ application: key, reason }, "woke the Application");
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 404) return; // the Application is gone: nothing to wake
      // 409: changed meanwhile; 422: "metadata.uid: field is immutable", re-created since checked
      if ((code === 409 || code === 422) && conflicts < 3) {
        this.filtered.delete(key); // check the filter (and the uid) again
        return this.patch(namespace, name, reason, conflicts + 1);
      }
      this.log.warn({ application: key, err: describeError(err) }, "could not wake the Application; KubeVela polls it on its own backoff");
    }
  }
}
