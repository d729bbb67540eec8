// Tells whether KubeVela has stored a step's session: the Application's status lists the step
// with that id. KubeVela reuses a stored id on every later evaluation (research/kubevela.md §2),
// so from then on the session is the run's for good and its side effect may start. Reading the
// status saves waiting for KubeVela's second poll, which comes only after its wait backoff (1 s).
// With the executor's Application watch, the status write that stores the session is heard the
// moment it happens; the reads (`stored`) remain for a watch that is down or behind.
import { resourcePath, type KubeClient } from "../kube/api-client.js";
import { APPLICATIONS } from "./applications.js";
import { allSteps, type StepStatus } from "./workflow-status.js";
import type { ApplicationEvent, ApplicationWatch, WatchedApplication } from "./application-watch.js";
import type { RunIdentity } from "../contract/run.js";

export interface SessionProbe {
  /** True when the Application's status holds `run.step` with id `run.session`; false otherwise or when it cannot tell. */
  stored(run: RunIdentity): Promise<boolean>;
  /** Resolves when a change of the Application shows the session stored; never rejects, and never resolves once `signal` aborted. */
  heard?(run: RunIdentity, signal: AbortSignal): Promise<void>;
}

interface AppStatus {
  status?: { workflow?: { steps?: StepStatus[] } };
}

/** Whether `steps` (a workflow's step statuses, step groups' sub-steps included) hold `name` with `id`. */
export function holdsSession(steps: StepStatus[] | undefined, name: string, id: string): boolean {
  return allSteps(steps).some((s) => s.name === name && s.id === id);
}

interface Listener { step: string; session: string; resolve: () => void }

export class ApplicationSessionProbe implements SessionProbe {
  private readonly api: KubeClient;
  /** Runs waiting to hear of their session, per Application ("namespace/name"). */
  private readonly listening = new Map<string, Set<Listener>>();

  constructor(kc: KubeClient, watch?: ApplicationWatch) {
    this.api = kc;
    watch?.on((e) => this.onEvent(e));
  }

  async stored(run: RunIdentity): Promise<boolean> {
    try {
      const app = (await this.api.request("GET", resourcePath({ ...APPLICATIONS, namespace: run.namespace, name: run.application }))) as AppStatus;
      return holdsSession(app.status?.workflow?.steps, run.step, run.session);
    } catch {
      // Unknown (the Application is gone, the API is unreachable): KubeVela's second poll confirms instead.
      return false;
    }
  }

  heard(run: RunIdentity, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return;
      const key = `${run.namespace}/${run.application}`;
      let set = this.listening.get(key);
      if (!set) this.listening.set(key, (set = new Set()));
      const listener: Listener = { step: run.step, session: run.session, resolve: () => { forget(); resolve(); } };
      const forget = () => {
        signal.removeEventListener("abort", forget);
        set.delete(listener);
        if (set.size === 0 && this.listening.get(key) === set) this.listening.delete(key);
      };
      signal.addEventListener("abort", forget, { once: true });
      set.add(listener);
    });
  }

  private onEvent(e: ApplicationEvent): void {
    if (this.listening.size === 0) return;
    if (e.type === "listed") e.applications.forEach((a) => this.check(a));
    else if (e.type !== "deleted") this.check(e.application);
  }

  private check(app: WatchedApplication): void {
    const set = this.listening.get(`${app.metadata?.namespace}/${app.metadata?.name}`);
    if (!set) return;
    const steps = app.status?.workflow?.steps;
    for (const l of [...set]) if (holdsSession(steps, l.step, l.session)) l.resolve();
  }
}
