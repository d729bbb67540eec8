// The code's layout (README.md, "Layout"): server/ is rooms of folders, each step
// kind has its folder in steps/, and no module imports itself back through others. Imports are
// read with TypeScript's own pre-processor and resolved by its module resolution, so what this
// test sees is what tsc compiles (type-only imports included: they tie modules together too).
import { expect } from "chai";
import { readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { readFileSync } from "node:fs";
import ts from "typescript";

const ROOMS = ["cel", "contract", "http", "kube", "kubevela", "observe", "outbound", "runs", "shared"];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .map((f) => resolve(dir, f));
}

/** Every import of each file (static, dynamic, re-export) resolved to a file under server/ or steps/. */
function importGraph(files: string[]): Map<string, string[]> {
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const pre = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    const targets = pre.importedFiles
      .map((i) => ts.resolveModuleName(i.fileName, file, options, ts.sys).resolvedModule?.resolvedFileName)
      .filter((t): t is string => t !== undefined && known.has(resolve(t)))
      .map((t) => resolve(t));
    graph.set(file, targets);
  }
  return graph;
}

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
export function importCircles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next++); stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do { w = stack.pop()!; onStack.delete(w); component.push(w); } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) circles.push(component);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return circles;
}

describe("code layout", () => {
  const files = [...tsFiles("server"), ...tsFiles("steps")];
  const rel = (f: string) => relative(process.cwd(), f);

  it("finds the modules it checks (the walk reaches into the rooms)", () => {
    expect(files.map(rel)).to.include.members(["server/main.ts", "server/runs/engine.ts", "steps/http-request/step.ts"]);
  });

  it("has no import circle among server/ and steps/ (type-only imports count)", () => {
    const circles = importCircles(importGraph(files)).map((c) => c.map(rel).sort().join(" → "));
    expect(circles, "each line is a set of modules that import each other; break it by moving what both need into a module both import").to.deep.equal([]);
  });

  it("detects a circle when there is one (the check itself can fail)", () => {
    const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["d"]], ["e", ["a"]]]);
    expect(importCircles(g).map((c) => c.sort().join(","))).to.have.deep.members(["a,b,c", "d"]);
  });

  it("keeps server/ in its rooms: only the entry point and its flags at the top", () => {
    const top = readdirSync("server").filter((n) => !statSync(join("server", n)).isDirectory());
    const rooms = readdirSync("server").filter((n) => statSync(join("server", n)).isDirectory());
    expect(top.sort()).to.deep.equal(["config.ts", "main.ts"]);
    expect(rooms.sort()).to.deep.equal(ROOMS);
  });

  it("gives each step kind the addon ships a folder of its own in steps/", () => {
    const kinds = readdirSync("addon/definitions").filter((f) => f.endsWith(".cue")).map((f) => f.replace(/\.cue$/, ""));
    expect(kinds).to.not.be.empty;
    for (const kind of kinds) expect(statSync(join("steps", kind, "step.ts")).isFile(), `steps/${kind}/step.ts`).to.equal(true);
  });

  it("names every suite that needs the control plane *.apiserver.test.ts, so `npm run test:unit` runs without one", () => {
    const all = [...files, ...tsFiles("test")];
    const graph = importGraph(all);
    const needsApiServer = resolve("test/fixtures/kube.ts");
    const reaches = (from: string): boolean => {
      const seen = new Set<string>(), todo = [from];
      while (todo.length) {
        const f = todo.pop()!;
        if (f === needsApiServer) return true;
        if (!seen.has(f)) { seen.add(f); todo.push(...(graph.get(f) ?? [])); }
      }
      return false;
    };
    const suites = all.filter((f) => /^test\/(server|steps|addon)\/.*\.test\.ts$/.test(rel(f)));
    const unit = suites.filter((f) => !f.endsWith(".apiserver.test.ts"));
    expect(unit.length, "unit suites found").to.be.greaterThan(10);
    expect(unit.filter(reaches).map(rel), "these reach test/fixtures/kube.ts (the control plane): rename them *.apiserver.test.ts").to.deep.equal([]);
    expect(suites.filter((f) => f.endsWith(".apiserver.test.ts") && !reaches(f)).map(rel), "named .apiserver but never use the control plane").to.deep.equal([]);
  });

  it("keeps step code out of server/: no server module imports a step kind's folder (main.ts wires them)", () => {
    const graph = importGraph(files);
    const offending = [...graph].filter(([f]) => rel(f).startsWith("server/") && rel(f) !== "server/main.ts")
      .flatMap(([f, ts]) => ts.filter((t) => rel(t).startsWith("steps/")).map((t) => `${rel(f)} → ${rel(t)}`));
    expect(offending).to.deep.equal([]);
  });
});
