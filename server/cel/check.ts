// Checks of a parsed expression before it is accepted: names it uses, and the shape of its
// comprehensions, which bound how much work evaluating it can take.
import type { parse } from "@bufbuild/cel";
import { celLibrary } from "./library.js";

type Expr = ReturnType<typeof parse>["expr"];

// Operators the planner implements itself rather than through the function resolver.
const logicOperators = new Set(["_&&_", "_||_", "_?_:_", "@not_strictly_false", "_[_]", "_[?_]"]);

/** Deepest bracket nesting in the text, counted before parsing (the parser recurses). */
export function bracketDepth(source: string): number {
  let depth = 0, max = 0;
  for (const ch of source) {
    if (ch === "(" || ch === "[" || ch === "{") max = Math.max(max, ++depth);
    else if (ch === ")" || ch === "]" || ch === "}") depth--;
  }
  return max;
}

/** Finds the first unknown variable or function, so a typo fails at submit, not at evaluation. */
export function checkNames(root: Expr, declared: Set<string>): string | undefined {
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
        if (!logicOperators.has(fn) && !celLibrary().env.funcs.find(fn)) return `unknown function "${fn}"`;
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

export interface ComprehensionShape {
  /** Comprehensions (all, exists, exists_one, map, filter) in the expression. */
  count: number;
  /**
   * Deepest nesting of comprehensions inside another's per-element part: the work is the product
   * of the lists' sizes at each level. A chain (`l.filter(...).map(...)`) or a comprehension over
   * another's result is not nested: those run one after the other.
   */
  depth: number;
}

export function comprehensionShape(root: Expr): ComprehensionShape {
  let count = 0;
  const depth = (e: Expr | undefined): number => {
    if (!e) return 0;
    const k = e.exprKind;
    switch (k.case) {
      case "selectExpr":
        return depth(k.value.operand);
      case "callExpr":
        return Math.max(depth(k.value.target), ...k.value.args.map(depth));
      case "listExpr":
        return Math.max(0, ...k.value.elements.map(depth));
      case "structExpr":
        return Math.max(0, ...k.value.entries.map((x) => Math.max(depth(x.keyKind.case === "mapKey" ? x.keyKind.value : undefined), depth(x.value))));
      case "comprehensionExpr": {
        const c = k.value;
        count++;
        const once = Math.max(depth(c.iterRange), depth(c.accuInit), depth(c.result));
        return Math.max(once, 1 + Math.max(depth(c.loopCondition), depth(c.loopStep)));
      }
      default:
        return 0;
    }
  };
  const d = depth(root);
  return { count, depth: d };
}
