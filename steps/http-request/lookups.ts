// What an http-request reads from its namespace when it runs: Secret and ConfigMap keys, waited
// for while they do not exist yet (server/kube/wait-for-input.ts).
import { TerminalError } from "../../server/shared/errors.js";
import type { SecretKeyRef } from "../../server/kube/secrets.js";
import { ConfigMapMissingError, waitForValue } from "../../server/kube/wait-for-input.js";
import type { StepContext } from "../../server/contract/step.js";

/** A Secret's value for a header, waiting up to --secret-wait for it to be created; `use` says what it is for. */
export async function resolveSecret(ctx: StepContext, ref: SecretKeyRef, use: { field: string; what: string }, deadline: number): Promise<string> {
  const value = await waitForValue(ctx, () => ctx.secrets.resolve(ref), use, deadline);
  if (/[\r\n\0]/.test(value)) throw new TerminalError(`${use.field}: the value of key "${ref.key}" in Secret ${ref.name} contains a line break; remove the trailing newline`);
  return value;
}

/** A key of a ConfigMap of the run's namespace, read as the run's identity. */
export async function configMapKey(ctx: StepContext, ref: SecretKeyRef): Promise<string> {
  const cm = await ctx.kube.readObject({ apiVersion: "v1", kind: "ConfigMap", name: ref.name, namespace: ctx.run.namespace });
  if (!cm) throw new ConfigMapMissingError(`ConfigMap ${ctx.run.namespace}/${ref.name} not found`);
  const data = (cm as { data?: Record<string, string> }).data ?? {};
  const value = data[ref.key];
  if (value === undefined) throw new ConfigMapMissingError(`ConfigMap ${ctx.run.namespace}/${ref.name} has no key "${ref.key}"${Object.keys(data).length ? ` (it has: ${Object.keys(data).join(", ")})` : " (it is empty)"}`);
  return value;
}
