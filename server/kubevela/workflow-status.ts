// KubeVela's record of a workflow's steps in the Application's status, read in one way by the
// session probe, the Application lookup and the step lifecycle.

export interface StepStatus {
  name?: string;
  /** The step's session (context.stepSessionID). */
  id?: string;
  phase?: string;
  reason?: string;
  /** A step group's steps. */
  subSteps?: StepStatus[];
}

/** Every step, step groups' sub-steps included, in order. */
export function allSteps(steps: readonly StepStatus[] | undefined): StepStatus[] {
  const out: StepStatus[] = [];
  for (const s of steps ?? []) out.push(s, ...allSteps(s.subSteps));
  return out;
}
