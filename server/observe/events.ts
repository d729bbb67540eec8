// Kubernetes Events on the Application for a step's start, retries and end, so that
// `kubectl describe application` and `kubectl get events` tell the story without the executor's
// logs. Core v1 Events (what `kubectl describe` and most dashboards read), written like
// client-go's EventRecorder: repeats of one step's reason are aggregated into one Event (count,
// lastTimestamp and the latest message), and new Events per Application are rate-limited, so a
// retry loop cannot flood the API server. Messages arrive redacted (server/observe/observe.ts).
import { randomBytes } from "node:crypto";
import { MERGE_PATCH, resourcePath, type KubeClient } from "../kube/api-client.js";
import type { Logger } from "pino";
import { ApplicationLookup } from "../kubevela/applications.js";
import { describeError } from "../shared/errors.js";
import type { Metrics } from "./metrics.js";
import type { RunEvent, RunObserver } from "./observe.js";

export const EVENT_SOURCE = "step-executor";
/** The API server keeps Event messages short; longer ones are cut here with a marker. */
export const MAX_EVENT_MESSAGE = 1024;

export const eventDefaults = {
  /** Repeats of one step's reason within this window update one Event instead of creating another. */
  aggregateWindowMs: 10 * 60_000,
  /** Least time between two updates of one aggregated Event (the last repeat is always written). */
  updateIntervalMs: 5_000,
  /** New Events per Application: a burst of this many, then one per `refillMs` (client-go: 25, 5 min). */
  burst: 25,
  refillMs: 10_000,
};
export type EventOptions = typeof eventDefaults & {
  /** Where the Applications' uids come from (shared with the run store and reads in the executor). */
  applications?: ApplicationLookup;
};

type EventType = "Normal" | "Warning";

interface Aggregate {
  name: string;
  count: number;
  message: string;
  type: EventType;
  first: number;
  last: number;
  /** Time of the last write that reached the API server. */
  written: number;
  /** A write under way (create or patch); further repeats only mark `dirty`. */
  writing: Promise<void> | undefined;
  dirty: boolean;
}

/** Writes step Events on Applications; use `observer()` with the run engine. */
export class ApplicationEvents {
  private readonly core: KubeClient;
  private readonly applications: ApplicationLookup;
  private readonly o: EventOptions;
  private readonly aggregates = new Map<string, Aggregate>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    kc: KubeClient,
    private readonly log: Logger,
    private readonly identity: string,
    private readonly metrics?: Metrics,
    options: Partial<EventOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.core = kc;
    this.o = { ...eventDefaults, ...options };
    this.applications = options.applications ?? new ApplicationLookup(kc);
  }

  observer(): RunObserver {
    const say = (e: RunEvent, type: EventType, reason: string, message: string) => this.emit(e.run.namespace, e.run.application, e.run.step, type, reason, message);
    return {
      started: (e) => say(e, "Normal", "StepStarted", `step ${e.run.step} (${e.kind}) ${e.resumed ? `resumed by executor ${this.identity} (attempt ${e.attempts})` : "started"}`),
      retrying: (e) => say(e, "Warning", "StepRetrying", `step ${e.run.step} (${e.kind}): ${e.message}`),
      finished: (e) => {
        // A run handed over or lost goes on elsewhere: the executor that ends it says how.
        if (e.outcome === "succeeded") say(e, "Normal", "StepSucceeded", `step ${e.run.step} (${e.kind}) succeeded: ${e.message}`);
        else if (e.outcome === "failed") say(e, "Warning", "StepFailed", `step ${e.run.step} (${e.kind}) failed: ${e.message}`);
      },
      // The step's own message says so in `vela status`, on every poll until it starts.
      deferred: () => {},
    };
  }

  /** Records an Event (or a repeat of one); never throws, never waits. */
  emit(namespace: string, application: string, step: string, type: EventType, reason: string, message: string): void {
    const key = `${namespace}/${application}/${step}/${reason}`;
    const now = this.now();
    const text = message.length > MAX_EVENT_MESSAGE ? message.slice(0, MAX_EVENT_MESSAGE - 3) + "..." : message;
    const agg = this.aggregates.get(key);
    if (agg && now - agg.first < this.o.aggregateWindowMs) {
      agg.count++;
      agg.message = text;
      agg.type = type;
      agg.last = now;
      this.count(reason, "aggregated");
      this.flush(namespace, key, agg);
      return;
    }
    if (!this.take(`${namespace}/${application}`, now)) {
      this.count(reason, "dropped");
      this.log.debug({ application: `${namespace}/${application}`, reason }, "event dropped: too many events for this Application");
      return;
    }
    this.forgetOld(now);
    const name = `${application.slice(0, 200)}.${now.toString(16)}${randomBytes(4).toString("hex")}`;
    const created: Aggregate = { name, count: 1, message: text, type, first: now, last: now, written: 0, writing: undefined, dirty: false };
    this.aggregates.set(key, created);
    this.track(namespace, key, created, this.create(namespace, application, reason, key, created));
  }

  /** Resolves when the writes under way are done (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Marks `agg` as being written; repeats that arrived meanwhile are written after. */
  private track(namespace: string, key: string, agg: Aggregate, p: Promise<void>) {
    const done = p.finally(() => {
      agg.writing = undefined;
      this.pending.delete(done);
      if (agg.dirty && agg.written > 0 && this.aggregates.get(key) === agg) this.flush(namespace, key, agg);
    });
    agg.writing = done;
    this.pending.add(done);
  }

  /** Writes a repeat now, or after the write under way / the update interval. */
  private flush(namespace: string, key: string, agg: Aggregate) {
    agg.dirty = true;
    if (agg.writing) return;
    const wait = Math.max(0, agg.written + this.o.updateIntervalMs - this.now());
    this.track(namespace, key, agg, (async () => {
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      agg.dirty = false;
      await this.patch(namespace, agg);
    })());
  }

  private async create(namespace: string, application: string, reason: string, key: string, agg: Aggregate): Promise<void> {
    const uid = await this.uidOf(namespace, application);
    if (uid === null) {
      // The Application is gone: nobody would see the Event.
      this.aggregates.delete(key);
      return;
    }
    const at = new Date(agg.first);
    const body = {
      metadata: { name: agg.name, namespace },
      involvedObject: { apiVersion: "core.oam.dev/v1beta1", kind: "Application", name: application, namespace, ...(uid ? { uid } : {}) },
      reason,
      message: agg.message,
      type: agg.type,
      count: agg.count,
      firstTimestamp: at.toISOString(),
      lastTimestamp: new Date(agg.last).toISOString(),
      source: { component: EVENT_SOURCE },
      reportingComponent: EVENT_SOURCE,
      reportingInstance: this.identity.slice(0, 128),
    };
    try {
      await this.core.request("POST", resourcePath({ group: "", version: "v1", namespace, plural: "events" }), { body });
      agg.written = this.now();
      this.count(reason, "created");
    } catch (err) {
      this.count(reason, "error");
      this.aggregates.delete(key); // the next repeat tries a new Event
      this.log.warn({ err: describeError(err), application: `${namespace}/${application}`, reason }, "could not create an event on the Application");
    }
  }

  private async patch(namespace: string, agg: Aggregate): Promise<void> {
    const body = { count: agg.count, message: agg.message, type: agg.type, lastTimestamp: new Date(agg.last).toISOString() };
    try {
      await this.core.request("PATCH", resourcePath({ group: "", version: "v1", namespace, plural: "events", name: agg.name }), { body, contentType: MERGE_PATCH });
      agg.written = this.now();
    } catch (err) {
      // Gone (expired, deleted) or never created: the next repeat after the window makes a new one.
      this.log.debug({ err: describeError(err), event: `${namespace}/${agg.name}` }, "could not update an aggregated event");
    }
  }

  /** The Application's uid, undefined when it cannot be read, null when it does not exist. */
  private async uidOf(namespace: string, name: string): Promise<string | undefined | null> {
    try {
      const app = await this.applications.get(namespace, name);
      return app ? app.uid : null;
    } catch {
      return undefined; // still worth an Event: `kubectl get events` finds it by name
    }
  }

  /** Token bucket per Application for new Events. */
  private take(key: string, now: number): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.o.burst, at: now };
    b.tokens = Math.min(this.o.burst, b.tokens + (now - b.at) / this.o.refillMs);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }

  /** Bounds memory: aggregates past their window and full buckets carry no information. */
  private forgetOld(now: number) {
    if (this.aggregates.size < 1_000 && this.buckets.size < 1_000) return;
    for (const [k, a] of this.aggregates) if (now - a.first >= this.o.aggregateWindowMs && !a.writing) this.aggregates.delete(k);
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) / this.o.refillMs >= this.o.burst) this.buckets.delete(k);
  }

  private count(reason: string, result: "created" | "aggregated" | "dropped" | "error") {
    this.metrics?.events.inc({ reason, result });
  }
}
