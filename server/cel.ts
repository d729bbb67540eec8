// The one CEL mechanism: compile once, check names up front, evaluate with JSON-shaped inputs,
// convert results back to JSON. Built on @bufbuild/cel (spec conformance, linear-time RE2
// `matches`; see shared research cel.md).
import { celEnv, parse, plan, isCelError, isCelMap, isCelList, isCelUint, type CelInput } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import { InputError } from "./errors.js";

/** Longest expression accepted; a user expression longer than this is a mistake or an attack. */
export const MAX_EXPRESSION_LENGTH = 4096;
/** Deepest bracket nesting accepted (the parser recurses; deep input would overflow the stack). */
export const MAX_EXPRESSION_DEPTH = 32;

const env = celEnv({ funcs: strings });

type Expr = ReturnType<typeof parse>["expr"];

// Operators the planner implements itself rather than through the function resolver.
const logicOperators = new Set(["_&&_", "_||_", "_?_:_", "@not_strictly_false", "_[_]", "_[?_]"]);

export interface CompiledExpression {
  readonly source: string;
  /** Where the expression came from, e.g. `successCondition` or `outputs.etag`; used in messages. */
  readonly field: string;
  /** Evaluates against JSON-shaped variables; throws ExpressionEvalError on a CEL error. */
  evaluate(variables: Record<string, unknown>): unknown;
}

/** Evaluation failed (missing field, type mismatch): often transient for objects still converging. */
export class ExpressionEvalError extends Error {
  constructor(readonly field: string, readonly source: string, readonly reason: string) {
    super(`${field} \`${source}\` could not be evaluated: ${reason}`);
    this.name = "ExpressionEvalError";
  }
}

/** Parses and checks an expression; a problem is an InputError naming the field and the parse error. */
export function compileExpression(source: string, field: string, variables: readonly string[]): CompiledExpression {
  const bad = (why: string) => new InputError(`${field}: invalid CEL expression \`${excerpt(source)}\`: ${why}`);
  if (source.trim() === "") throw bad("it is empty");
  if (source.length > MAX_EXPRESSION_LENGTH) throw bad(`it is longer than ${MAX_EXPRESSION_LENGTH} characters`);
  if (nestingDepth(source) > MAX_EXPRESSION_DEPTH) throw bad(`brackets are nested deeper than ${MAX_EXPRESSION_DEPTH}`);
  let parsed: ReturnType<typeof parse>;
  try {
    // A trailing `// comment` without a newline trips the parser; the newline is harmless.
    parsed = parse(source + "\n");
  } catch (err) {
    throw bad(err instanceof RangeError ? "it is too deeply nested" : String((err as Error).message).replace("<input>:", "at "));
  }
  const problem = checkNames(parsed.expr, new Set(variables));
  if (problem) throw bad(problem);
  const program = plan(env, parsed);
  return {
    source,
    field,
    evaluate(vars) {
      let result;
      try {
        const bindings: Record<string, CelInput> = {};
        for (const [name, value] of Object.entries(vars)) bindings[name] = toCelInput(value);
        result = program(bindings as never);
      } catch (err) {
        throw new ExpressionEvalError(field, excerpt(source), (err as Error).message);
      }
      if (isCelError(result)) throw new ExpressionEvalError(field, excerpt(source), result.message);
      return fromCelValue(result);
    },
  };
}

/** Compiles a condition and wraps evaluation so that a non-boolean result is a clear error. */
export function compileCondition(source: string, field: string, variables: readonly string[]) {
  const expr = compileExpression(source, field, variables);
  return {
    ...expr,
    test(vars: Record<string, unknown>): boolean {
      const value = expr.evaluate(vars);
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

function nestingDepth(source: string): number {
  let depth = 0, max = 0;
  for (const ch of source) {
    if (ch === "(" || ch === "[" || ch === "{") max = Math.max(max, ++depth);
    else if (ch === ")" || ch === "]" || ch === "}") depth--;
  }
  return max;
}

/** Finds the first unknown variable or function, so a typo fails at submit, not at evaluation. */
function checkNames(root: Expr, declared: Set<string>): string | undefined {
  const walk = (e: Expr | undefined, scope: Set<string>): string | undefined => {
    if (!e) return undefined;
    const k = e.exprKind;
    switch (k.case) {
      case "identExpr":
        return scope.has(k.value.name) ? undefined
          : `unknown variable "${k.value.name}" (available: ${[...declared].join(", ")})`;
      case "selectExpr":
        return walk(k.value.operand, scope);
      case "callExpr": {
        const fn = k.value.function;
        if (!logicOperators.has(fn) && !env.funcs.find(fn)) return `unknown function "${fn}"`;
        for (const a of [k.value.target, ...k.value.args]) {
          const p = walk(a, scope);
          if (p) return p;
        }
        return undefined;
      }
      case "listExpr":
        for (const a of k.value.elements) { const p = walk(a, scope); if (p) return p; }
        return undefined;
      case "structExpr":
        for (const entry of k.value.entries) {
          const key = entry.keyKind.case === "mapKey" ? entry.keyKind.value : undefined;
          const p = walk(key, scope) ?? walk(entry.value, scope);
          if (p) return p;
        }
        return undefined;
      case "comprehensionExpr": {
        const c = k.value;
        const inner = new Set(scope).add(c.iterVar).add(c.accuVar);
        if (c.iterVar2) inner.add(c.iterVar2);
        return walk(c.iterRange, scope) ?? walk(c.accuInit, scope) ?? walk(c.loopCondition, inner)
          ?? walk(c.loopStep, inner) ?? walk(c.result, inner);
      }
      default:
        return undefined;
    }
  };
  return walk(root, declared);
}

/** JSON → CEL input: integers become int (BigInt) as in Kubernetes CEL, so `replicas + 1` works. */
export function toCelInput(value: unknown): CelInput {
  if (typeof value === "number") return (Number.isInteger(value) ? BigInt(value) : value) as CelInput;
  if (Array.isArray(value)) return value.map(toCelInput) as CelInput;
  if (value && typeof value === "object") {
    const out = new Map<string, CelInput>();
    for (const [k, v] of Object.entries(value)) out.set(k, toCelInput(v));
    return out as CelInput;
  }
  return (value ?? null) as CelInput;
}

/** CEL result → plain JSON value (BigInt within safe range → number, else string). */
export function fromCelValue(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (isCelUint(value)) return fromCelValue((value as { value: bigint }).value);
  if (isCelMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value.entries()) out[String(fromCelValue(k))] = fromCelValue(v);
    return out;
  }
  if (isCelList(value)) return [...value].map(fromCelValue);
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (value === undefined) return null;
  if (value !== null && typeof value === "object") return String(value);
  return value;
}
