// Prometheus metrics in one place. Labels carry kinds, outcomes, status codes and host classes
// only — never URLs, names or anything a user typed — so no secret can reach /metrics.
import { isIP } from "node:net";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { RunObserver } from "./observe.js";
import { classifyAddress } from "../outbound/outbound-policy.js";

export interface MetricSources {
  /** Objects waiting steps follow, by how (server/kube/object-watch.ts). */
  objectsFollowed?: () => { watch: number; poll: number };
}

export function createMetrics(sources: MetricSources = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "step_executor_" });
  const m = {
    registry,
    polls: new Counter({ name: "step_executor_polls_total", help: "Polls answered, by step kind, HTTP status and phase", labelNames: ["kind", "status", "phase"], registers: [registry] }),
    pollSeconds: new Histogram({
      name: "step_executor_poll_duration_seconds", help: "Time to answer a poll", labelNames: ["kind"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
    }),
    runsStarted: new Counter({ name: "step_executor_runs_started_total", help: "Runs started, by step kind", labelNames: ["kind"], registers: [registry] }),
    runsFinished: new Counter({ name: "step_executor_runs_finished_total", help: "Runs finished here, by step kind and outcome (succeeded, failed, handed-over, lost)", labelNames: ["kind", "outcome"], registers: [registry] }),
    runSeconds: new Histogram({
      name: "step_executor_run_duration_seconds", help: "Run duration from start to finish", labelNames: ["kind", "outcome"],
      buckets: [0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600], registers: [registry],
    }),
    runsRunning: new Gauge({ name: "step_executor_runs_running", help: "Runs this executor is working on now: waiting steps, and side effects under way or between retries", labelNames: ["kind"], registers: [registry] }),
    runsDeferred: new Counter({ name: "step_executor_runs_deferred_total", help: "Polls of a new run answered 'executor at capacity' instead of starting it (the executor works on --max-runs runs; a later poll starts it), by step kind", labelNames: ["kind"], registers: [registry] }),
    maxRuns: new Gauge({ name: "step_executor_runs_max", help: "Most runs this executor works on at once (--max-runs)", registers: [registry] }),
    outbound: new Counter({ name: "step_executor_outbound_requests_total", help: "Outbound HTTP requests, by host class and status (or error)", labelNames: ["host_class", "status"], registers: [registry] }),
    retries: new Counter({ name: "step_executor_step_retries_total", help: "Retries of a step's side effect (another attempt after a failed one), by step kind", labelNames: ["kind"], registers: [registry] }),
    githubRateRemaining: new Gauge({
      name: "step_executor_github_ratelimit_remaining", help: "Requests left in GitHub's rate-limit window (x-ratelimit-remaining of the latest answer), by GitHub's rate-limit resource",
      labelNames: ["resource"], registers: [registry],
    }),
    objectsFollowed: new Gauge({
      name: "step_executor_objects_followed", help: "Objects waiting steps follow, by mode: watch (one watch each, shared by the steps waiting on it) or poll (GETs every --poll-interval: past --max-object-watches, or the reading identity may not list/watch)",
      labelNames: ["mode"], registers: [registry],
      collect() {
        const c = sources.objectsFollowed?.() ?? { watch: 0, poll: 0 };
        this.set({ mode: "watch" }, c.watch);
        this.set({ mode: "poll" }, c.poll);
      },
    }),
    events: new Counter({ name: "step_executor_events_total", help: "Kubernetes Events about steps, by reason and what became of them (created, aggregated, dropped, error)", labelNames: ["reason", "result"], registers: [registry] }),
  };
  return m;
}

/** GitHub names its rate-limit buckets (core, search, graphql, ...); anything else is "other". */
export function githubResource(header: string | null | undefined): string {
  return header && /^[a-z_]{1,40}$/.test(header) ? header : header ? "other" : "core";
}

/** Run-level metrics from the engine's run events (server/runs/engine.ts RunObserver). */
export function metricsObserver(m: Metrics): RunObserver {
  return {
    started(e) {
      m.runsStarted.inc({ kind: e.kind });
      m.runsRunning.inc({ kind: e.kind });
    },
    retrying(e) {
      m.retries.inc({ kind: e.kind });
    },
    finished(e) {
      m.runsRunning.dec({ kind: e.kind });
      m.runsFinished.inc({ kind: e.kind, outcome: e.outcome });
      m.runSeconds.observe({ kind: e.kind, outcome: e.outcome }, e.durationMs / 1000);
    },
    deferred(e) {
      m.runsDeferred.inc({ kind: e.kind });
    },
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

/** A host reduced to a class, so the label set stays small and says nothing about the target; addresses by the outbound policy's classifier. */
export function hostClass(hostname: string): string {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost") return "loopback";
  if (isIP(h.replace(/%.*$/, ""))) {
    const c = classifyAddress(h);
    return c === "public" ? "public-ip" : c;
  }
  if (h.endsWith(".svc") || h.includes(".svc.") || h.endsWith(".cluster.local") || !h.includes(".")) return "cluster";
  return "external";
}
