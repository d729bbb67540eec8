// Every KubeVela Application of the cluster, followed by one list + watch per executor process and
// shared by what needs to hear of them: the namespaces' keys (server/http/namespace-keys.ts) and the
// ends KubeVela gives steps on its own (server/kubevela/step-lifecycle.ts). Re-listed every `resyncMs`
// (and on demand), so a missed event is made good.
import { resourcePath, type KubeClient } from "../kube/api-client.js";
import { APPLICATIONS } from "./applications.js";
import type { Logger } from "pino";
import { describeError } from "../shared/errors.js";
import { sleep } from "../shared/retry.js";
import type { StepStatus } from "./workflow-status.js";

/** What the followers read of an Application. */
export interface WatchedApplication {
  metadata?: { namespace?: string; name?: string; deletionTimestamp?: string };
  status?: { workflow?: { startTime?: string; terminated?: boolean; finished?: boolean; steps?: StepStatus[] } };
}

/**
 * `listed`: the whole list (at start and at every resync); `added`, `modified`, `deleted`: one change.
 */
export type ApplicationEvent =
  | { type: "listed"; applications: WatchedApplication[] }
  | { type: "added" | "modified" | "deleted"; application: WatchedApplication };

export class ApplicationWatch {
  private readonly listeners: ((e: ApplicationEvent) => void)[] = [];
  private readonly stopped = new AbortController();
  private loop: Promise<void> | undefined;
  private relist: () => void = () => {};

  constructor(private readonly kc: KubeClient, private readonly log: Logger, private readonly resyncMs = 5 * 60_000) {
  }

  on(listener: (e: ApplicationEvent) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Lists again now (what the followers depend on changed). */
  resync(): void {
    this.relist();
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    this.relist();
    await this.loop;
  }

  private emit(e: ApplicationEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.warn({ err: describeError(err) }, "an Application follower failed");
      }
    }
  }

  private async run(): Promise<void> {
    const stop = this.stopped.signal;
    let failures = 0;
    while (!stop.aborted) {
      const again = new AbortController();
      this.relist = () => again.abort();
      try {
        const list = (await this.kc.request("GET", resourcePath(APPLICATIONS))) as
          { items?: WatchedApplication[]; metadata?: { resourceVersion?: string } };
        this.emit({ type: "listed", applications: list.items ?? [] });
        failures = 0;
        await this.follow(list.metadata?.resourceVersion ?? "", AbortSignal.any([stop, again.signal]));
      } catch (err) {
        if (stop.aborted) return;
        this.log.warn({ err: describeError(err) }, "cannot list Applications; retrying");
        await sleep(Math.min(1_000 * 2 ** failures++, 30_000), AbortSignal.any([stop, again.signal])).catch(() => undefined);
      }
    }
  }

  /** Follows changes until the watch ends (at the latest after resyncMs) or `signal` aborts. */
  private follow(resourceVersion: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let controller: AbortController | undefined;
      // A connection that died without a close would leave the watch silent for ever.
      const guard = setTimeout(() => controller?.abort(), this.resyncMs + 30_000);
      const done = () => { clearTimeout(guard); resolve(); };
      const query = { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: Math.max(1, Math.round(this.resyncMs / 1000)) };
      controller = this.kc.watch(resourcePath(APPLICATIONS), query, (type, object) => {
        const application = object as WatchedApplication;
        if (type === "ADDED") this.emit({ type: "added", application });
        else if (type === "MODIFIED") this.emit({ type: "modified", application });
        else if (type === "DELETED") this.emit({ type: "deleted", application });
      }, done, signal);
    });
  }
}
