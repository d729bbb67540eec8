// @bufbuild/cel, loaded at first use: it is ≈ 8 MiB of an idle executor's RSS (BENCHMARKS.md §8),
// and a replica that serves no expression never needs it. Its CommonJS build, through require, so
// that compiling stays synchronous. Every use goes through here, in the main thread and in the
// workers alike: a thread holding both builds would have CEL values neither recognises as its own.
import { createRequire } from "node:module";

type Cel = typeof import("@bufbuild/cel");
type CelExt = typeof import("@bufbuild/cel/ext");

export interface CelLibrary {
  cel: Cel;
  /** The functions expressions may call: CEL's standard ones and the strings extension. */
  env: ReturnType<Cel["celEnv"]>;
}

const require = createRequire(import.meta.url);
let library: CelLibrary | undefined;

export function celLibrary(): CelLibrary {
  if (!library) {
    const cel = require("@bufbuild/cel") as Cel;
    const { strings } = require("@bufbuild/cel/ext") as CelExt;
    library = { cel, env: cel.celEnv({ funcs: strings }) };
  }
  return library;
}
