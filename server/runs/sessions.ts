// KubeVela names a step's run by context.stepSessionID, random until the step's status is
// persisted. Right after a workflow restart, two reconciles can race: the first evaluates the
// step with session S1, its status write is lost, and the second evaluates it again with a new
// session S2 — the same workflow run, seen by us as two runs (observed on KubeVela v1.10.9:
// two reconciles 30 ms apart, each running the step). This module recognises that case and
// maps S2 back to S1, so the side effect still happens once. Used only with --confirm-session
// off: confirmed sessions make it unnecessary, and its per-replica memory would then let two
// replicas start two runs (docs/runs.md §3).
//
// The rule: S2 is an alias of S1 when both come for the same namespace/application/step, the
// same application revision and the same parameter, S1 was first seen less than `windowMs` ago
// and S1 was polled only once (KubeVela never came back to it, so it never persisted it). A
// genuine `vela workflow restart` within that window of a one-poll run is the one case it
// would merge wrongly; a restart changes the revision or comes later in practice.
import { createHash } from "node:crypto";
import type { RunIdentity } from "../contract/run.js";

export const sessionAliasDefaults = {
  /** How long after S1's first poll a new session may still be the same run. */
  windowMs: 5_000,
  /** Entries kept at most (the oldest go first); one per step of an application revision. */
  maxEntries: 100_000,
};

interface Seen {
  session: string;
  /** Later sessions mapped to `session`; KubeVela keeps polling with the one it persisted. */
  aliases: string[];
  firstSeen: number;
  polls: number;
  parameterHash: string;
}

export class SessionAliases {
  private readonly bySlot = new Map<string, Seen>();
  private readonly options: typeof sessionAliasDefaults;

  constructor(options: Partial<typeof sessionAliasDefaults> = {}, private readonly now: () => number = Date.now) {
    this.options = { ...sessionAliasDefaults, ...options };
  }

  /** The run identity to use: `run` itself, or `run` with the session it is an alias of. */
  resolve(run: RunIdentity, revision: string | undefined, parameter: unknown): RunIdentity {
    if (!revision) return run;
    const slot = `${run.namespace}/${run.application}/${run.step}/${revision}`;
    const parameterHash = createHash("sha256").update(JSON.stringify(parameter)).digest("base64url");
    const now = this.now();
    const seen = this.bySlot.get(slot);
    if (seen && seen.session === run.session) {
      seen.polls++;
      return run;
    }
    if (seen?.aliases.includes(run.session)) return { ...run, session: seen.session };
    if (seen && seen.polls === 1 && now - seen.firstSeen < this.options.windowMs && seen.parameterHash === parameterHash) {
      seen.polls++;
      seen.aliases.push(run.session);
      return { ...run, session: seen.session };
    }
    this.prune();
    this.bySlot.delete(slot);
    this.bySlot.set(slot, { session: run.session, aliases: [], firstSeen: now, polls: 1, parameterHash });
    return run;
  }

  /** Entries are dropped only when the map is full, oldest first: an entry that is still there
   *  knows its session was polled before, so a later poll of it never looks new. */
  private prune() {
    for (const slot of this.bySlot.keys()) {
      if (this.bySlot.size < this.options.maxEntries) break;
      this.bySlot.delete(slot);
    }
  }
}
