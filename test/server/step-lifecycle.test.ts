// When KubeVela has ended a step on its own (server/kubevela/step-lifecycle.ts), from the Application as the watch sees it.
import { expect } from "chai";
import type { WatchedApplication } from "../../server/kubevela/application-watch.js";
import { endedByKubeVela, RESTART_SLACK_MS } from "../../server/kubevela/step-lifecycle.js";

const run = { namespace: "ns", application: "app", step: "wait", session: "S1" };
const created = Date.parse("2026-12-06T10:00:00Z");
const app = (workflow: NonNullable<WatchedApplication["status"]>["workflow"], metadata: WatchedApplication["metadata"] = {}): WatchedApplication =>
  ({ metadata: { namespace: "ns", name: "app", ...metadata }, status: { workflow } });
const started = "2026-12-06T09:59:58Z";

describe("step lifecycle: what ends a run because KubeVela ended its step", () => {
  const cases: [string, WatchedApplication | null, string | undefined][] = [
    ["the Application is gone", null, "the Application was deleted"],
    ["the Application is being deleted", app({ startTime: started }, { deletionTimestamp: "2026-12-06T10:01:00Z" }), "the Application is being deleted"],
    ["its step timed out (KubeVela's step timeout)", app({ startTime: started, steps: [{ name: "wait", id: "S1", phase: "failed", reason: "Timeout" }] }), "the workflow step timed out in KubeVela"],
    ["its step failed after KubeVela's retries", app({ startTime: started, steps: [{ name: "wait", id: "S1", phase: "failed", reason: "FailedAfterRetries" }] }), "KubeVela failed the step after its retries"],
    ["the workflow was terminated", app({ startTime: started, terminated: true, steps: [{ name: "wait", id: "S1", phase: "running" }] }), "the workflow was terminated"],
    ["the step has another session (in a step group too)", app({ startTime: started, steps: [{ name: "group", id: "G", phase: "running", subSteps: [{ name: "wait", id: "S2", phase: "running" }] }] }), "the step has a new session in KubeVela (the workflow was restarted)"],
    ["a workflow that started well after the run was created", app({ startTime: new Date(created + RESTART_SLACK_MS + 2_000).toISOString(), steps: [] }), "the workflow was restarted"],
    // Still live:
    ["the step is running in this session", app({ startTime: started, steps: [{ name: "wait", id: "S1", phase: "running" }] }), undefined],
    ["the step erred once (KubeVela retries it)", app({ startTime: started, steps: [{ name: "wait", id: "S1", phase: "failed", reason: "Execute" }] }), undefined],
    ["the step is not in the status yet", app({ startTime: started, steps: [{ name: "deploy", id: "D", phase: "succeeded" }] }), undefined],
    ["the workflow started a little after the run (clocks that disagree)", app({ startTime: new Date(created + 30_000).toISOString(), steps: [] }), undefined],
    ["terminated after the step succeeded", app({ startTime: started, terminated: true, steps: [{ name: "wait", id: "S1", phase: "succeeded" }] }), undefined],
    ["no workflow status", app(undefined), undefined],
  ];
  for (const [what, a, why] of cases) {
    it(`${what} → ${why ?? "not ended"}`, () => {
      expect(endedByKubeVela(a, run, created)).to.equal(why);
    });
  }
});
