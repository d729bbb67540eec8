// What every bench gets from bench/main.ts.
import type { BenchExecutor } from "./executor.js";
import type { BenchTarget } from "./target.js";

export interface BenchContext {
  /** Tiny N and short windows: proves the benches still run (npm run bench:smoke). */
  smoke: boolean;
  /** The executor the Applications call (addon enabled against it). */
  executor: BenchExecutor;
  /** Replaces `executor` with one started with these extra flags, on the same URL and token (the addon stays as enabled). */
  restartExecutor(flags: string[]): Promise<BenchExecutor>;
  /** The HTTP target on 127.0.0.1. */
  target: BenchTarget;
  /** Runs per variant in the overhead bench. */
  overheadN: number;
  /** The assembled addon (scripts/build-addon.sh output; its basename is step-executor). */
  addonDir: string;
  /** Overrides for a shorter run (development): reaction bench size. */
  reaction?: { perVariant: number; maxDelayS: number };
  /** Directory for CPU profiles and other artefacts of this run. */
  workDir: string;
}
