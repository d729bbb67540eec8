// Steps read their Secrets (and ConfigMaps) when they run. One that does not exist yet may be
// created shortly (by hand, or synced by External Secrets): the step waits up to --secret-wait,
// showing what is missing, then fails naming it.
import { formatDuration } from "../shared/duration.js";
import { TerminalError } from "../shared/errors.js";
import { SecretMissingError } from "./secrets.js";
import type { StepContext } from "../contract/step.js";

/** A ConfigMap or its key does not exist (yet): the step waits, as for a Secret. */
export class ConfigMapMissingError extends Error {}

/** What `get` reads, waiting until `deadline` while it is missing; `use` names the field and what the value is for. */
export async function waitForValue(ctx: StepContext, get: () => Promise<string>, use: { field: string; what: string }, deadline: number): Promise<string> {
  for (;;) {
    try {
      return await get();
    } catch (err) {
      if (!(err instanceof SecretMissingError || err instanceof ConfigMapMissingError)) throw err;
      if (ctx.now() >= deadline) throw new TerminalError(`${err.message}, needed for ${use.what}; gave up after ${formatDuration(ctx.tuning.secretWaitMs)}`);
      ctx.progress(`waiting for ${err.message} (${use.what}); create it or fix ${use.field}`);
      await ctx.sleep(ctx.tuning.pollIntervalMs);
    }
  }
}
