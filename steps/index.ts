// The registry of step kinds: the route looks kinds up here. A new kind adds one line.
import { applyAndWait } from "./apply-and-wait/step.js";
import type { GithubHub } from "./github-actions/github-client.js";
import { createGithubActionsStep, githubActions } from "./github-actions/step.js";
import { httpRequest } from "./http-request/step.js";
import { readObjectAndWait } from "./read-object-and-wait/step.js";
import type { StepKind } from "../server/contract/step.js";

export const stepKinds: ReadonlyMap<string, StepKind> = new Map<string, StepKind>(
  ([httpRequest, readObjectAndWait, applyAndWait, githubActions] as StepKind<never, never>[]).map((k) => [k.kind, k as StepKind]),
);

/** The same kinds, with the executor's own GitHub hub (its options carry the metrics hooks). */
export function createStepKinds(options: { githubHub: GithubHub }): ReadonlyMap<string, StepKind> {
  const github = createGithubActionsStep({ hub: options.githubHub }) as StepKind;
  return new Map([...stepKinds].map(([k, v]) => [k, k === github.kind ? github : v]));
}
