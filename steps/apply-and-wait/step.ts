// apply-and-wait: the template applies `value` with KubeVela's kube.#Apply (so the object is
// tracked and garbage-collected with the Application) once the executor has admitted it; the
// executor then waits for it.
import { describeError, InputError } from "../../server/shared/errors.js";
import { ForbiddenReadError, RefusedReadError, UnknownKindError } from "../../server/kube/kube.js";
import { checkReadable, prepareWait, waitForObject, type PreparedWait } from "../../server/kube/object-wait.js";
import { managedCluster, type ObjectRef } from "../../server/kube/object-ref.js";
import { schemas } from "../generated/index.js";
import type { ApplyAndWaitParameter } from "../generated/apply-and-wait.js";
import type { AdmitContext, StepKind } from "../../server/contract/step.js";
import type { RunIdentity } from "../../server/contract/run.js";

/**
 * Namespaced kinds refused unless the operator allows them (--apply-allow-kinds): they grant
 * power inside the namespace (RBAC), hold credentials, or lift the platform's limits on it.
 * Cluster-scoped kinds are always refused: a step acts in its Application's namespace only.
 */
export const REFUSED_KINDS: Readonly<Record<string, string>> = {
  "rbac.authorization.k8s.io/*": "it grants permissions (RBAC)",
  "Secret": "it holds credentials (create Secrets outside the workflow; steps never read them as objects)",
  "ResourceQuota": "it changes the limits the platform sets on the namespace",
  "LimitRange": "it changes the limits the platform sets on the namespace",
};

function refusal(group: string, kind: string, allowed: readonly string[]): string | undefined {
  const names = [group ? `${group}/${kind}` : kind, group ? `${group}/*` : "*"];
  if (allowed.some((a) => a === kind || names.includes(a))) return undefined;
  for (const name of names) if (REFUSED_KINDS[name]) return REFUSED_KINDS[name];
  return undefined;
}

function refOf(p: ApplyAndWaitParameter, run: RunIdentity): ObjectRef {
  const v = p.value as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  for (const [field, value] of [["apiVersion", v.apiVersion], ["kind", v.kind], ["metadata.name", v.metadata?.name]] as const) {
    if (typeof value !== "string" || value === "") throw new InputError(`value.${field}: required (a string naming the object to apply)`);
  }
  const namespace = typeof v.metadata?.namespace === "string" && v.metadata.namespace ? v.metadata.namespace : run.namespace;
  const ref = { apiVersion: v.apiVersion as string, kind: v.kind as string, name: v.metadata!.name as string, namespace, ...(managedCluster(p.cluster) ? { cluster: p.cluster } : {}) };
  checkReadable(ref, run, { apiVersion: "value.apiVersion", kind: "value.kind", name: "value.metadata.name", namespace: "value.metadata.namespace" });
  return ref;
}

export const applyAndWait: StepKind<ApplyAndWaitParameter, PreparedWait> = {
  kind: "apply-and-wait",
  description: "Apply a Kubernetes object and wait until it meets a condition",
  pure: true,
  schema: schemas["apply-and-wait"],
  prepare: (p, run) => prepareWait(refOf(p, run), p),
  async admit(p, ctx: AdmitContext) {
    const ref = refOf(p, ctx.run);
    if (ref.cluster) {
      // Before KubeVela applies there as the Application's identity: may that identity use the
      // cluster (the hub's RBAC on clustergateways/proxy), is it joined, can it be reached?
      try {
        await ctx.kube.readObject(ref);
      } catch (err) {
        if (err instanceof ForbiddenReadError || err instanceof RefusedReadError) throw new InputError(err.message);
        if (!(err instanceof UnknownKindError)) return `apply-and-wait: waiting for cluster ${ref.cluster} before applying ${ref.kind} ${ref.namespace}/${ref.name}: ${describeError(err)}`;
      }
    }
    const info = await ctx.kube.describeKind(ref.apiVersion, ref.kind, ref.cluster);
    if (!info) throw new InputError(`value.kind: the API server${ref.cluster ? ` of cluster ${ref.cluster}` : ""} does not serve kind ${ref.kind} in ${ref.apiVersion}; check apiVersion and kind, or install its CRD before this step`);
    if (!info.namespaced) {
      throw new InputError(`value.kind: ${ref.kind} is cluster-scoped; apply-and-wait applies only namespaced objects, in the Application's namespace`);
    }
    const why = refusal(info.group, ref.kind, ctx.tuning.applyAllowKinds ?? []);
    if (why) {
      throw new InputError(`value.kind: apply-and-wait does not apply ${ref.kind} by default: ${why}; the platform team can allow it with the addon parameter applyAllowKinds`);
    }
    return undefined;
  },
  execute: waitForObject,
};
