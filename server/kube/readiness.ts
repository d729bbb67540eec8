// Generic readiness, as `kubectl rollout status` and `kubectl wait` judge it. Used when a
// waiting step has no `condition` of its own.
import type { KubeObject } from "./object-ref.js";

export interface Readiness {
  ready: boolean;
  /** Why not (yet), or what made it ready; shown in `vela status`. */
  reason: string;
  /** The object reached a state it will not leave by itself (Job failed, rollout deadline). */
  failed?: boolean;
}

interface Condition { type?: string; status?: string; reason?: string; message?: string }
type Status = Record<string, unknown> & { conditions?: Condition[]; observedGeneration?: number };

const num = (v: unknown, fallback = 0) => (typeof v === "number" ? v : fallback);

export function readiness(obj: KubeObject): Readiness {
  const status = (obj.status ?? {}) as Status;
  const spec = (obj.spec ?? {}) as Record<string, unknown>;
  const generation = obj.metadata?.generation;
  const apiVersion = obj.apiVersion ?? "";
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  if (typeof status.observedGeneration === "number" && typeof generation === "number" && status.observedGeneration < generation) {
    return { ready: false, reason: `its controller has not observed generation ${generation} yet (observedGeneration ${status.observedGeneration})` };
  }
  const workload = (group === "apps" || group === "extensions") && ["Deployment", "StatefulSet", "DaemonSet"].includes(obj.kind ?? "");
  if (workload && typeof status.observedGeneration !== "number") {
    // As `kubectl rollout status`: nothing is known until the controller has reported once.
    return { ready: false, reason: "its controller has not reported a status yet" };
  }
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  const cond = (type: string) => conditions.find((c) => c.type === type);

  if ((group === "apps" || group === "extensions") && obj.kind === "Deployment") {
    const progressing = cond("Progressing");
    if (progressing?.reason === "ProgressDeadlineExceeded") return { ready: false, failed: true, reason: `rollout exceeded its progress deadline: ${progressing.message ?? ""}`.trim() };
    const want = num(spec.replicas, 1);
    const updated = num(status.updatedReplicas), total = num(status.replicas), available = num(status.availableReplicas);
    if (updated < want) return { ready: false, reason: `${updated} of ${want} replicas updated` };
    if (total > updated) return { ready: false, reason: `${total - updated} old replicas pending termination` };
    if (available < updated) return { ready: false, reason: `${available} of ${updated} updated replicas available` };
    return { ready: true, reason: `${available} of ${want} replicas available` };
  }
  if (group === "apps" && obj.kind === "StatefulSet") {
    const want = num(spec.replicas, 1);
    const ready = num(status.readyReplicas), updated = num(status.updatedReplicas, want);
    if (ready < want) return { ready: false, reason: `${ready} of ${want} replicas ready` };
    if (status.updateRevision && status.currentRevision !== status.updateRevision && updated < want) return { ready: false, reason: `${updated} of ${want} replicas updated` };
    return { ready: true, reason: `${ready} of ${want} replicas ready` };
  }
  if (group === "apps" && obj.kind === "DaemonSet") {
    const want = num(status.desiredNumberScheduled);
    const updated = num(status.updatedNumberScheduled), available = num(status.numberAvailable);
    if (updated < want) return { ready: false, reason: `${updated} of ${want} pods updated` };
    if (available < want) return { ready: false, reason: `${available} of ${want} pods available` };
    return { ready: true, reason: `${available} of ${want} pods available` };
  }
  if (group === "batch" && obj.kind === "Job") {
    if (cond("Failed")?.status === "True") return { ready: false, failed: true, reason: `Job failed: ${cond("Failed")?.message ?? cond("Failed")?.reason ?? ""}`.trim() };
    if (cond("Complete")?.status === "True") return { ready: true, reason: "Job complete" };
    return { ready: false, reason: `Job not complete yet (${num(status.succeeded)} succeeded, ${num(status.active)} active)` };
  }
  if (group === "" && obj.kind === "Pod") {
    if (status.phase === "Succeeded") return { ready: true, reason: "Pod succeeded" };
    if (status.phase === "Failed") return { ready: false, failed: true, reason: `Pod failed${status.message ? `: ${status.message}` : ""}` };
    const r = cond("Ready");
    return r?.status === "True" ? { ready: true, reason: "Pod ready" } : { ready: false, reason: `Pod not ready (phase ${status.phase ?? "Pending"}${r?.reason ? `, ${r.reason}` : ""})` };
  }
  if (group === "" && obj.kind === "PersistentVolumeClaim") {
    return status.phase === "Bound" ? { ready: true, reason: "bound" } : { ready: false, reason: `phase ${status.phase ?? "Pending"}` };
  }
  if (group === "core.oam.dev" && obj.kind === "Application") {
    const phase = String(status.status ?? "");
    if (phase === "running") return { ready: true, reason: "Application running" };
    if (phase === "workflowFailed" || phase === "workflowTerminated") return { ready: false, failed: true, reason: `Application ${phase}` };
    return { ready: false, reason: `Application ${phase || "not reconciled yet"}` };
  }
  for (const type of ["Ready", "Available"]) {
    const c = cond(type);
    if (c) {
      return c.status === "True"
        ? { ready: true, reason: `${type} is True` }
        : { ready: false, reason: `${type} is ${c.status ?? "Unknown"}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ""})` : ""}` };
    }
  }
  return { ready: true, reason: "exists" };
}
