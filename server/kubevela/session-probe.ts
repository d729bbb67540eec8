// Tells whether KubeVela has stored a step's session: the Application's status lists the step
// with that id. KubeVela reuses a stored id on every later evaluation (research/kubevela.md §2),
// so from then on the session is the run's for good and its side effect may start. Reading the
// status saves waiting for KubeVela's second poll, which comes only after its wait backoff (1 s).
import { resourcePath, type KubeClient } from "../kube/api-client.js";
import { APPLICATIONS } from "./applications.js";
import { allSteps, type StepStatus } from "./workflow-status.js";
import type { RunIdentity } from "../contract/run.js";

export interface SessionProbe {
  /** True when the Application's status holds `run.step` with id `run.session`; false otherwise or when it cannot tell. */
  stored(run: RunIdentity): Promise<boolean>;
}

interface AppStatus {
  status?: { workflow?: { steps?: StepStatus[] } };
}

/** Whether `steps` (a workflow's step statuses, step groups' sub-steps included) hold `name` with `id`. */
export function holdsSession(steps: StepStatus[] | undefined, name: string, id: string): boolean {
  return allSteps(steps).some((s) => s.name === name && s.id === id);
}

export class ApplicationSessionProbe implements SessionProbe {
  private readonly api: KubeClient;

  constructor(kc: KubeClient) {
    this.api = kc;
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
}
