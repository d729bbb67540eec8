// Runs whose step KubeVela ended on its own — its step `timeout`, `vela workflow terminate`,
// `vela workflow restart`, the Application deleted — are stopped here at once (a watch event, not
// the run's own timeout), and their records say why. KubeVela never polls such a step again, so
// without this a wait would hold its watch, and an http-request its retries, until its own timeout.
import type { ApplicationEvent, ApplicationWatch, WatchedApplication } from "./application-watch.js";
import { allSteps } from "./workflow-status.js";
import type { RunIdentity } from "../contract/run.js";

/** The part of the run engine this needs. */
export interface Cancellable {
  runsOf(namespace: string, application: string): { run: RunIdentity; createdAt: number }[];
  cancel(run: RunIdentity, why: string): boolean;
}

/** Why KubeVela has ended `run`'s step, or undefined while it may still poll it. `app` null: the Application is gone. */
export function endedByKubeVela(app: WatchedApplication | null, run: RunIdentity, createdAt: number): string | undefined {
  if (!app) return "the Application was deleted";
  if (app.metadata?.deletionTimestamp) return "the Application is being deleted";
  const wf = app.status?.workflow;
  if (!wf) return undefined;
  const step = allSteps(wf.steps).find((s) => s.name === run.step);
  const ours = step?.id === run.session;
  if (ours && step!.phase === "failed" && step!.reason === "Timeout") return "the workflow step timed out in KubeVela";
  if (ours && step!.phase === "failed" && step!.reason === "FailedAfterRetries") return "KubeVela failed the step after its retries";
  if (ours && step!.phase === "skipped") return "KubeVela skipped the step";
  if (wf.terminated && !(ours && step!.phase === "succeeded")) return "the workflow was terminated";
  // The step runs in another session now: the workflow was restarted (or KubeVela dropped this
  // session before storing it and opened another); this one will not be polled again.
  if (step?.id && !ours) return "the step has a new session in KubeVela (the workflow was restarted)";
  // A workflow that started well after the run was created is a new one, even before it reaches
  // the step. The minute of slack covers clocks of executor and controller that disagree.
  const started = wf.startTime ? Date.parse(wf.startTime) : NaN;
  if (started > createdAt + RESTART_SLACK_MS) return "the workflow was restarted";
  return undefined;
}

/** How much later than a run's creation a workflow must have started to count as a new one. */
export const RESTART_SLACK_MS = 60_000;

/** Follows every Application and cancels the runs of this executor whose step KubeVela ended. */
export function followStepLifecycle(applications: ApplicationWatch, engine: Cancellable): void {
  const check = (namespace: string | undefined, name: string | undefined, app: WatchedApplication | null) => {
    if (!namespace || !name) return;
    for (const { run, createdAt } of engine.runsOf(namespace, name)) {
      const why = endedByKubeVela(app, run, createdAt);
      if (why) engine.cancel(run, why);
    }
  };
  applications.on((e: ApplicationEvent) => {
    if (e.type === "listed") {
      for (const app of e.applications) check(app.metadata?.namespace, app.metadata?.name, app);
    } else {
      check(e.application.metadata?.namespace, e.application.metadata?.name, e.type === "deleted" ? null : e.application);
    }
  });
}
