// read-object-and-wait: read an object and wait until a CEL condition (or generic readiness)
// holds; outputs are CEL expressions over the object.
import { managedCluster } from "../../server/kube/object-ref.js";
import { checkReadable, prepareWait, waitForObject, type PreparedWait } from "../../server/kube/object-wait.js";
import { schemas } from "../generated/index.js";
import type { ReadObjectAndWaitParameter } from "../generated/read-object-and-wait.js";
import type { StepKind } from "../../server/contract/step.js";

export const readObjectAndWait: StepKind<ReadObjectAndWaitParameter, PreparedWait> = {
  kind: "read-object-and-wait",
  description: "Wait until a Kubernetes object exists and meets a condition",
  pure: true,
  schema: schemas["read-object-and-wait"],
  prepare: (p, run) => {
    const ref = { apiVersion: p.apiVersion, kind: p.kind, name: p.name, namespace: p.namespace ?? run.namespace, ...(managedCluster(p.cluster) ? { cluster: p.cluster } : {}) };
    checkReadable(ref, run, { apiVersion: "apiVersion", kind: "kind", name: "name", namespace: "namespace" });
    return prepareWait(ref, p);
  },
  execute: waitForObject,
};
