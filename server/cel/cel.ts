// The one CEL mechanism: compile once on the main thread (syntax, names, and limits on the
// expression's shape), evaluate in a pool of worker threads under a deadline and a heap limit
// (cel-pool.ts), JSON in and JSON out. Built on @bufbuild/cel (spec conformance, linear-time
// RE2 `matches`; see shared research cel.md). CEL has no cost limit of its own: a few nested
// comprehensions over a short list take hours, so both bounds are ours.
import type { parse } from "@bufbuild/cel";
import { celLibrary } from "./library.js";
import { bracketDepth, checkNames, comprehensionShape } from "./check.js";
import { CelBusyError, CelLimitError, CelPool, type CelPoolOptions } from "./pool.js";
import { InputError, TerminalError } from "../shared/errors.js";

export { CelBusyError };

/** Longest expression accepted; a user expression longer than this is a mistake or an attack. */
export const MAX_EXPRESSION_LENGTH = 4096;
/** Deepest bracket nesting accepted (the parser recurses; deep input would overflow the stack). */
export const MAX_EXPRESSION_DEPTH = 32;
/**
 * Deepest nesting of comprehensions, one inside another's per-element part. Conditions on
 * objects need one (`conditions.exists(c, ...)`) and at times one inside it (containers and
 * their ports); each level multiplies the work by a list's size.
 */
export const MAX_COMPREHENSION_DEPTH = 2;
/** Most comprehensions in one expression (a few `exists` over conditions, joined by && and ||). */
export const MAX_COMPREHENSIONS = 8;

export interface CompiledExpression {
  readonly source: string;
  /** Where the expression came from, e.g. `successCondition` or `outputs.etag`; used in messages. */
  readonly field: string;
  /**
   * Evaluates against JSON-shaped variables in a worker. Rejects with ExpressionEvalError on a CEL
   * error, ExpressionLimitError past the executor's time or memory limit (and at once on every
   * later call), CelBusyError when the evaluators' queue is full.
   */
  evaluate(variables: Record<string, unknown>): Promise<unknown>;
}

/** Evaluation failed (missing field, type mismatch): often transient for objects still converging. */
export class ExpressionEvalError extends Error {
  constructor(readonly field: string, readonly source: string, readonly reason: string) {
    super(`${field} \`${source}\` could not be evaluated: ${reason}`);
    this.name = "ExpressionEvalError";
  }
}

/** Evaluation took more time or memory than the executor allows: final, the step fails. */
export class ExpressionLimitError extends TerminalError {
  constructor(readonly field: string, readonly source: string, readonly reason: string) {
    super(`${field} \`${source}\`: ${reason}; simplify the expression`);
  }
}

let pool: CelPool | undefined;
let poolOptions: Partial<CelPoolOptions> = {};

/** Sets the evaluators' options (main.ts, from flags); evaluations already running are stopped. */
export function configureCel(options: Partial<CelPoolOptions>): void {
  const old = pool;
  pool = undefined;
  poolOptions = options;
  void old?.close();
}

/** The process's evaluators; their workers start as evaluations need them and stop when idle. */
export function celPool(): CelPool {
  return (pool ??= new CelPool(poolOptions));
}

/** Stops the evaluators (shutdown); a later evaluation starts new ones. */
export async function closeCel(): Promise<void> {
  const old = pool;
  pool = undefined;
  await old?.close();
}

/** Parses and checks an expression; a problem is an InputError naming the field and the parse error. */
export function compileExpression(source: string, field: string, variables: readonly string[]): CompiledExpression {
  const bad = (why: string) => new InputError(`${field}: invalid CEL expression \`${excerpt(source)}\`: ${why}`);
  if (source.trim() === "") throw bad("it is empty");
  if (source.length > MAX_EXPRESSION_LENGTH) throw bad(`it is longer than ${MAX_EXPRESSION_LENGTH} characters`);
  if (bracketDepth(source) > MAX_EXPRESSION_DEPTH) throw bad(`brackets are nested deeper than ${MAX_EXPRESSION_DEPTH}`);
  let parsed: ReturnType<typeof parse>;
  try {
    // A trailing `// comment` without a newline trips the parser; the newline is harmless.
    parsed = celLibrary().cel.parse(source + "\n");
  } catch (err) {
    throw bad(err instanceof RangeError ? "it is too deeply nested" : String((err as Error).message).replace("<input>:", "at "));
  }
  const problem = checkNames(parsed.expr, new Set(variables));
  if (problem) throw bad(problem);
  const shape = comprehensionShape(parsed.expr);
  if (shape.depth > MAX_COMPREHENSION_DEPTH) {
    throw bad(`comprehensions (all, exists, exists_one, map, filter) are nested ${shape.depth} deep; at most ${MAX_COMPREHENSION_DEPTH} are allowed`);
  }
  if (shape.count > MAX_COMPREHENSIONS) {
    throw bad(`it has ${shape.count} comprehensions (all, exists, exists_one, map, filter); at most ${MAX_COMPREHENSIONS} are allowed`);
  }
  const shown = excerpt(source);
  // Set once the expression hit a limit: it is not evaluated again, so it cannot keep workers busy.
  let stopped: ExpressionLimitError | undefined;
  return {
    source,
    field,
    async evaluate(vars) {
      if (stopped) throw stopped;
      let outcome;
      try {
        outcome = await celPool().evaluate(source, vars);
      } catch (err) {
        if (err instanceof CelLimitError) throw (stopped = new ExpressionLimitError(field, shown, err.message));
        throw err;
      }
      if (!outcome.ok) throw new ExpressionEvalError(field, shown, outcome.error);
      return outcome.value;
    },
  };
}

/** Compiles a condition and wraps evaluation so that a non-boolean result is a clear error. */
export function compileCondition(source: string, field: string, variables: readonly string[]) {
  const expr = compileExpression(source, field, variables);
  return {
    ...expr,
    async test(vars: Record<string, unknown>): Promise<boolean> {
      const value = await expr.evaluate(vars);
      if (typeof value !== "boolean") {
        throw new ExpressionEvalError(field, excerpt(source), `it returned ${JSON.stringify(value)}, not true or false`);
      }
      return value;
    },
  };
}
export type CompiledCondition = ReturnType<typeof compileCondition>;

function excerpt(source: string): string {
  const one = source.replace(/\s+/g, " ").trim();
  return one.length > 120 ? `${one.slice(0, 117)}...` : one;
}
