// The CEL evaluator thread (started by cel-pool.ts). Evaluation runs here, not on the main
// thread, so an expensive expression costs a worker its deadline or its heap, never the
// executor's event loop. Programs are planned from source and cached by source string.
import { parentPort } from "node:worker_threads";
import type { CelInput } from "@bufbuild/cel";
import { celLibrary } from "./library.js";
import { fromCelValue, toCelInput } from "./values.js";

/** Distinct sources kept planned; beyond, the oldest is planned again when next used. */
const MAX_PROGRAMS = 512;

export interface EvalRequest {
  id: number;
  source: string;
  vars: Record<string, unknown>;
}
export type EvalReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

type Program = ReturnType<ReturnType<typeof celLibrary>["cel"]["plan"]>;
const programs = new Map<string, Program>();

function program(source: string): Program {
  let p = programs.get(source);
  if (p) {
    programs.delete(source); // re-inserted below: the Map's order is least recently used first
  } else {
    // A trailing `// comment` without a newline trips the parser (as in cel.ts).
    const { cel, env } = celLibrary();
    p = cel.plan(env, cel.parse(source + "\n"));
    if (programs.size >= MAX_PROGRAMS) programs.delete(programs.keys().next().value!);
  }
  programs.set(source, p);
  return p;
}

function evaluate({ id, source, vars }: EvalRequest): EvalReply {
  try {
    const bindings: Record<string, CelInput> = {};
    for (const [name, value] of Object.entries(vars)) bindings[name] = toCelInput(value);
    const result = program(source)(bindings as never);
    if (celLibrary().cel.isCelError(result)) return { id, ok: false, error: result.message };
    return { id, ok: true, value: fromCelValue(result) };
  } catch (err) {
    return { id, ok: false, error: (err as Error).message };
  }
}

if (parentPort) {
  const port = parentPort;
  port.on("message", (req: EvalRequest) => port.postMessage(evaluate(req)));
  port.postMessage({ ready: true });
}
