// Waiting on an object by watching it — a list by name, then a watch from the list's
// resourceVersion, as controllers do — instead of a GET per waiting step per poll interval. One
// watch per object and reading identity, shared by every step waiting on it: 1,000 steps waiting
// cost the API server one open watch per distinct object rather than 1,000 GETs/s
// (BENCHMARKS.md §3–4), and a change reaches the steps within milliseconds, not a poll interval.
// A feed falls back to GETs every poll interval (still one reader per object) when the identity
// may `get` but not `list`/`watch` the kind (an impersonated ServiceAccount granted only `get`),
// or when `maxWatches` objects are watched already (each watch holds a connection).
import { KubeStatusError, type KubeClient } from "./api-client.js";
import type { KubeObject, ObjectRef } from "./object-ref.js";
import { sleep } from "../shared/retry.js";

/** What a feed knows: the object (undefined: it does not exist), or why it cannot tell; `version` changes whenever either does. */
export interface ObjectLook {
  object: KubeObject | undefined;
  error?: unknown;
  version: number;
}

export interface ObjectFeed {
  /** The latest look; the first call waits for the first one. */
  read(): Promise<ObjectLook>;
  /** Resolves once the look is newer than `version`, or after `ms`; rejects when `signal` aborts. */
  changed(version: number, ms: number, signal: AbortSignal): Promise<void>;
  /** The waiting step is done with it (the watch closes when nobody waits on the object). */
  close(): void;
}

/** The reads a feed makes, as one identity, with kube.ts's error mapping. */
export interface WatchSource {
  /** `ref` by a list with a name field selector: the object and the list's resourceVersion. Throws WatchDenied on 403. */
  list(ref: ObjectRef): Promise<{ object: KubeObject | undefined; resourceVersion: string }>;
  /** The collection path to watch (API discovery, cached by the client). */
  collectionPath(ref: ObjectRef): Promise<string>;
  /** One GET, for polling. */
  read(ref: ObjectRef): Promise<KubeObject | undefined>;
  kc: KubeClient;
}

/** The identity may not list or watch the kind (HTTP 403): the feed polls with GETs instead. */
export class WatchDenied extends Error {}

export interface ObjectWatchOptions {
  /** Objects watched at once (one connection each); beyond it, feeds poll. */
  maxWatches: number;
  /** How often a polling feed GETs the object. */
  pollIntervalMs: number;
  /** Longest a watch stays open before it is renewed with a fresh list (the API server also closes watches). */
  watchTimeoutS: number;
}

export const objectWatchDefaults: ObjectWatchOptions = { maxWatches: 1_000, pollIntervalMs: 1_000, watchTimeoutS: 300 };

/** The shared feeds of one executor: one per object and identity. */
export class ObjectWatches {
  private readonly shared = new Map<string, SharedFeed>();
  /** Feeds in watch mode (kept as a count: a new feed must not scan thousands of others). */
  private watching = 0;
  readonly options: ObjectWatchOptions;

  constructor(options: Partial<ObjectWatchOptions> = {}) {
    this.options = { ...objectWatchDefaults, ...options };
  }

  feed(identity: string, source: WatchSource, ref: ObjectRef): ObjectFeed {
    const key = JSON.stringify([identity, ref.cluster ?? "", ref.apiVersion, ref.kind, ref.namespace, ref.name]);
    let s = this.shared.get(key);
    if (!s) {
      const mode = this.watching < this.options.maxWatches ? "watch" : "poll";
      if (mode === "watch") this.watching++;
      s = new SharedFeed(source, ref, this.options, mode, {
        polling: () => { this.watching--; },
        stopped: (feed) => {
          if (feed.mode === "watch") this.watching--;
          this.shared.delete(key);
        },
      });
      this.shared.set(key, s);
    }
    return s.subscribe();
  }

  /** Objects followed, by how (for metrics and tests). */
  counts(): { watch: number; poll: number } {
    return { watch: this.watching, poll: this.shared.size - this.watching };
  }

  close(): void {
    for (const s of [...this.shared.values()]) s.stop();
  }
}

class SharedFeed {
  private look: ObjectLook = { object: undefined, version: 0 };
  private loaded = false;
  private readonly firstLook: Promise<void>;
  private markLoaded!: () => void;
  private readonly listeners = new Set<() => void>();
  private readonly stopped = new AbortController();
  private refs = 0;

  constructor(
    private readonly source: WatchSource,
    private readonly ref: ObjectRef,
    private readonly o: ObjectWatchOptions,
    public mode: "watch" | "poll",
    private readonly tell: { polling(): void; stopped(feed: SharedFeed): void },
  ) {
    this.firstLook = new Promise((resolve) => { this.markLoaded = resolve; });
    void this.loop();
  }

  subscribe(): ObjectFeed {
    this.refs++;
    let closed = false;
    return {
      read: async () => {
        await this.firstLook;
        return this.look;
      },
      changed: (version, ms, signal) => this.changed(version, ms, signal),
      close: () => {
        if (closed) return;
        closed = true;
        if (--this.refs === 0) this.stop();
      },
    };
  }

  stop(): void {
    if (this.stopped.signal.aborted) return;
    this.stopped.abort();
    this.tell.stopped(this);
  }

  private changed(version: number, ms: number, signal: AbortSignal): Promise<void> {
    if (this.look.version !== version) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => { clearTimeout(timer); this.listeners.delete(done); signal.removeEventListener("abort", aborted); resolve(); };
      const aborted = () => { clearTimeout(timer); this.listeners.delete(done); reject(signal.reason); };
      if (signal.aborted) return reject(signal.reason);
      const timer = setTimeout(done, ms);
      this.listeners.add(done);
      signal.addEventListener("abort", aborted, { once: true });
    });
  }

  /** A new look; listeners hear of it only when something a step can see changed. */
  private set(object: KubeObject | undefined, error?: unknown): void {
    const prev = this.look;
    const same = error !== undefined
      ? prev.error !== undefined && describe(prev.error) === describe(error)
      : prev.error === undefined && this.loaded && prev.object?.metadata?.resourceVersion === object?.metadata?.resourceVersion && (prev.object === undefined) === (object === undefined);
    if (!same) this.look = { object, ...(error !== undefined ? { error } : {}), version: prev.version + 1 };
    if (!this.loaded) { this.loaded = true; this.markLoaded(); }
    if (!same) for (const l of [...this.listeners]) l();
  }

  private async loop(): Promise<void> {
    const stop = this.stopped.signal;
    let failures = 0;
    while (!stop.aborted) {
      if (this.mode === "poll") {
        try { this.set(await this.source.read(this.ref)); } catch (err) { this.set(undefined, err); }
        await sleep(this.o.pollIntervalMs, stop).catch(() => undefined);
        continue;
      }
      let from: string;
      try {
        const listed = await this.source.list(this.ref);
        this.set(listed.object);
        from = listed.resourceVersion;
      } catch (err) {
        if (err instanceof WatchDenied) { this.toPolling(); continue; }
        this.set(undefined, err);
        // Retried as often as polling would read (an unknown kind may be a CRD being installed).
        await sleep(Math.min(this.o.pollIntervalMs * 2 ** failures++, 5_000), stop).catch(() => undefined);
        continue;
      }
      const started = Date.now();
      const end = await this.watch(from);
      if (end === "denied") { this.toPolling(); continue; }
      // A watch that ended at once (an error, 410 Gone) is not retried in a tight loop.
      failures = end === "error" ? failures + 1 : 0;
      const pause = end === "error" ? Math.min(this.o.pollIntervalMs * 2 ** (failures - 1), 5_000) : Date.now() - started < 1_000 ? 1_000 : 0;
      if (pause > 0) await sleep(pause, stop).catch(() => undefined);
    }
  }

  private toPolling(): void {
    this.mode = "poll";
    this.tell.polling();
  }

  /** Follows the object from `resourceVersion` until the watch ends. */
  private async watch(resourceVersion: string): Promise<"ended" | "expired" | "denied" | "error"> {
    const stop = this.stopped.signal;
    if (stop.aborted) return "ended";
    let path: string;
    try {
      path = await this.source.collectionPath(this.ref);
    } catch {
      return "error";
    }
    return new Promise((resolve) => {
      let outcome: "ended" | "expired" | "denied" | "error" = "ended";
      let controller: AbortController | undefined;
      const timeoutSeconds = Math.round(this.o.watchTimeoutS * (1 + Math.random() / 5));
      // A connection that died without a close (a dropped network path) would leave the watch
      // silent for ever: the API server ends it after timeoutSeconds, so past that it is renewed here.
      let silent = false;
      const guard = setTimeout(() => { silent = true; controller?.abort(); }, (timeoutSeconds + 30) * 1000);
      const finish = (err: Error | null) => {
        clearTimeout(guard);
        if (err && outcome === "ended" && !silent) outcome = err instanceof KubeStatusError && err.code === 403 ? "denied" : "error";
        resolve(outcome);
      };
      const query = {
        fieldSelector: `metadata.name=${this.ref.name}`,
        resourceVersion,
        allowWatchBookmarks: true,
        // Spread renewals: many watches opened together should not re-list together.
        timeoutSeconds,
      };
      controller = this.source.kc.watch(path, query, (type, event) => {
        const object = event as KubeObject & { code?: number };
        // The field selector names the object; an event for any other is not believed.
        if ((type === "ADDED" || type === "MODIFIED") && object?.metadata?.name === this.ref.name) this.set(object);
        else if (type === "DELETED" && object?.metadata?.name === this.ref.name) this.set(undefined);
        else if (type === "ERROR") {
          // 410 Gone: the resourceVersion is too old; list again. Anything else: list again too.
          outcome = object?.code === 410 ? "expired" : "error";
          controller?.abort();
        }
      }, finish, stop);
    });
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
}
