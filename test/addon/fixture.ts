// Shared fixture of the addon tests: repository paths, the tools (cue, vela, go) and the
// assembled addon, built once per test run into a temporary directory.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, renameSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { StepKindName } from "../../steps/generated/index.js";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The step kinds: one per addon/definitions/<kind>.cue. */
export const kinds: readonly Kind[] = readdirSync(join(root, "addon/definitions"))
  .filter((f) => f.endsWith(".cue"))
  .map((f) => f.slice(0, -".cue".length) as Kind)
  .sort();
export type Kind = StepKindName;

const run = promisify(execFile);
const cache = process.env.STEP_EXECUTOR_CACHE ?? join(homedir(), ".cache", "step-executor");

export interface Ran {
  stdout: string;
  stderr: string;
}

/** Runs a command; on failure the error message carries its stderr. */
export async function sh(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Ran> {
  const child = run(cmd, args, { cwd: options.cwd ?? root, env: options.env ?? process.env, maxBuffer: 64 << 20 });
  if (options.input !== undefined) {
    child.child.stdin?.end(options.input);
  }
  try {
    const { stdout, stderr } = await child;
    return { stdout: String(stdout), stderr: String(stderr) };
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`error running ${cmd} ${args.join(" ")}: ${e.message}\n${e.stderr ?? ""}`, { cause: err });
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `step-executor-${prefix}-`));
}

/** The cue CLI (scripts/gen-cue.sh builds it once). */
export async function cueBin(): Promise<string> {
  return (await sh("bash", [join(root, "scripts/gen-cue.sh")])).stdout.trim();
}

/** The vela CLI built by scripts/build-control-plane.sh, or undefined when it is not built yet. */
export function velaBin(): string | undefined {
  if (process.env.VELA && existsSync(process.env.VELA)) return process.env.VELA;
  const versions = readFileSync(join(root, "scripts/versions.env"), "utf8");
  const version = /^KUBEVELA_VERSION=(\S+)/m.exec(versions)?.[1];
  const bin = join(cache, `kubevela-${version}`, "vela");
  return version && existsSync(join(cache, `kubevela-${version}`, ".complete")) && existsSync(bin) ? bin : undefined;
}

/**
 * A kubeconfig for an API server that is not there. `vela def vet` needs a kubeconfig to start
 * (without one it exits 1 without a word) but not a cluster: it only logs that it cannot load
 * external CUE packages.
 */
export function dummyKubeconfig(dir: string): string {
  const path = join(dir, "dummy.kubeconfig");
  writeFileSync(path, [
    "apiVersion: v1",
    "kind: Config",
    "clusters: [{name: none, cluster: {server: 'https://127.0.0.1:1'}}]",
    "users: [{name: none, user: {token: none}}]",
    "contexts: [{name: none, context: {cluster: none, user: none}}]",
    "current-context: none",
    "",
  ].join("\n"));
  return path;
}

let built: Promise<string> | undefined;

/** The assembled addon (scripts/build-addon.sh), built once: the path of dist-like <dir>/step-executor. */
export function buildAddon(): Promise<string> {
  built ??= (async () => {
    const out = join(tempDir("addon"), "step-executor");
    await sh("bash", [join(root, "scripts/build-addon.sh"), out]);
    return out;
  })();
  return built;
}

export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

/**
 * The step harness (test/addon/harness): KubeVela's own step runner for one definition. Built
 * with the Go toolchain and cached by the hash of its sources; undefined when Go is missing.
 */
/** The harness for a suite's before hook: fails the suite, saying what to install, where no Go toolchain can build it. */
export async function harnessOrFail(): Promise<string> {
  const bin = await harnessBin();
  if (!bin) throw new Error("test/addon/harness needs a Go toolchain (go on PATH) to build; install Go >= 1.24 (the README's prerequisites)");
  return bin;
}

export async function harnessBin(): Promise<string | undefined> {
  try {
    await sh("go", ["version"]);
  } catch {
    return undefined;
  }
  const dir = join(root, "test/addon/harness");
  const hash = createHash("sha256");
  for (const f of ["main.go", "go.mod", "go.sum"]) hash.update(readFileSync(join(dir, f)));
  const bin = join(cache, "addon-harness", `harness-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dirname(bin), { recursive: true });
  const env = { ...process.env, GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" };
  await sh("go", ["build", "-trimpath", "-o", `${bin}.tmp`, "."], { cwd: dir, env });
  renameSync(`${bin}.tmp`, bin);
  return bin;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
