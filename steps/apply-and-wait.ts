// apply-and-wait: the template applies `value` with KubeVela's kube.#Apply (so the object is
// tracked and garbage-collected with the Application); the executor then waits for it.
import { InputError } from "../server/errors.js";
import { checkReadable, prepareWait, waitForObject, type PreparedWait } from "../server/object-wait.js";
import { schemas } from "./generated/index.js";
import type { ApplyAndWaitParameter } from "./generated/apply-and-wait.js";
import type { StepKind } from "./types.js";

export const applyAndWait: StepKind<ApplyAndWaitParameter, PreparedWait> = {
  kind: "apply-and-wait",
  description: "Apply a Kubernetes object and wait until it meets a condition",
  pure: true,
  schema: schemas["apply-and-wait"],
  prepare: (p, run) => {
    const v = p.value as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    for (const [field, value] of [["apiVersion", v.apiVersion], ["kind", v.kind], ["metadata.name", v.metadata?.name]] as const) {
      if (typeof value !== "string" || value === "") throw new InputError(`value.${field}: required (a string naming the object to apply)`);
    }
    const namespace = typeof v.metadata?.namespace === "string" && v.metadata.namespace ? v.metadata.namespace : run.namespace;
    const ref = { apiVersion: v.apiVersion as string, kind: v.kind as string, name: v.metadata!.name as string, namespace };
    checkReadable(ref, run, "value.metadata.namespace");
    return prepareWait(ref, p);
  },
  execute: waitForObject,
};
