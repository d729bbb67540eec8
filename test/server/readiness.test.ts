import { expect } from "chai";
import { readiness } from "../../server/kube/readiness.js";
import type { KubeObject } from "../../server/kube/object-ref.js";

const o = (apiVersion: string, kind: string, rest: Record<string, unknown>) => ({ apiVersion, kind, metadata: { name: "x", generation: 2 }, ...rest }) as KubeObject;

describe("readiness", () => {
  const cases: [string, KubeObject, boolean, RegExp, boolean?][] = [
    ["a Deployment not observed yet", o("apps/v1", "Deployment", { spec: { replicas: 2 }, status: { observedGeneration: 1 } }), false, /not observed generation 2/],
    ["a Deployment mid-rollout", o("apps/v1", "Deployment", { spec: { replicas: 2 }, status: { observedGeneration: 2, updatedReplicas: 1, replicas: 2 } }), false, /1 of 2 replicas updated/],
    ["a Deployment with old pods", o("apps/v1", "Deployment", { spec: { replicas: 2 }, status: { observedGeneration: 2, updatedReplicas: 2, replicas: 3, availableReplicas: 2 } }), false, /1 old replicas/],
    ["a rolled-out Deployment", o("apps/v1", "Deployment", { spec: { replicas: 2 }, status: { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 } }), true, /2 of 2 replicas available/],
    ["a stuck Deployment", o("apps/v1", "Deployment", { status: { observedGeneration: 2, conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded" }] } }), false, /progress deadline/, true],
    ["a 0-replica Deployment its controller has not seen", o("apps/v1", "Deployment", { spec: { replicas: 0 } }), false, /has not reported a status yet/],
    ["a new DaemonSet without status", o("apps/v1", "DaemonSet", { status: {} }), false, /has not reported a status yet/],
    ["a StatefulSet", o("apps/v1", "StatefulSet", { spec: { replicas: 1 }, status: { observedGeneration: 2, readyReplicas: 1 } }), true, /1 of 1/],
    ["a DaemonSet", o("apps/v1", "DaemonSet", { status: { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 } }), false, /2 of 3 pods available/],
    ["a complete Job", o("batch/v1", "Job", { status: { conditions: [{ type: "Complete", status: "True" }] } }), true, /complete/],
    ["a failed Job", o("batch/v1", "Job", { status: { conditions: [{ type: "Failed", status: "True", message: "BackoffLimitExceeded" }] } }), false, /Job failed: BackoffLimitExceeded/, true],
    ["a ready Pod", o("v1", "Pod", { status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] } }), true, /Pod ready/],
    ["a Ready=False custom resource", o("example.com/v1", "Widget", { status: { conditions: [{ type: "Ready", status: "False", reason: "Waiting" }] } }), false, /Ready is False \(Waiting/],
    ["an Available custom resource", o("example.com/v1", "Widget", { status: { conditions: [{ type: "Available", status: "True" }] } }), true, /Available is True/],
    ["a ConfigMap", o("v1", "ConfigMap", { data: {} }), true, /exists/],
    ["a running KubeVela Application", o("core.oam.dev/v1beta1", "Application", { status: { status: "running" } }), true, /running/],
    ["a failed KubeVela Application", o("core.oam.dev/v1beta1", "Application", { status: { status: "workflowFailed" } }), false, /workflowFailed/, true],
  ];
  for (const [name, obj, ready, reason, failed] of cases) {
    it(name, () => {
      const r = readiness(obj);
      expect(r.ready, r.reason).to.equal(ready);
      expect(r.reason).to.match(reason);
      expect(Boolean(r.failed)).to.equal(Boolean(failed));
    });
  }
});
