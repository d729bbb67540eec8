// The Argo CD health check for KubeVela Applications (argocd/health.lua), run the way the Argo CD
// controller runs an argocd-cm script: test/argocd/main.go, on gopher-lua without the open
// libraries. One case per entry of argocd/health_test.yaml (Argo CD's own test format), on
// Application objects recorded from the real KubeVela controller
// (scripts/record-argocd-statuses.sh). The Go harness is built once per change of its sources and
// cached under ~/.cache/step-executor/lua-harness-<hash>/.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse } from "yaml";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../..");
const script = join(root, "argocd/health.lua");
const testsFile = join(root, "argocd/health_test.yaml");

type Health = { status: string; message: string };
type Case = { inputPath: string; healthStatus: Health };
type Result = { inputPath: string; want: Health; got: Health; error?: string; pass: boolean };

const cases = (parse(readFileSync(testsFile, "utf8")) as { tests: Case[] }).tests;

async function harness(): Promise<string> {
  const hash = createHash("sha256");
  for (const f of ["go.mod", "go.sum", "main.go"]) hash.update(readFileSync(join(here, f)));
  const cache = process.env.STEP_EXECUTOR_CACHE ?? join(homedir(), ".cache/step-executor");
  const bin = join(cache, `lua-harness-${hash.digest("hex").slice(0, 16)}`, "lua-harness");
  if (existsSync(bin)) return bin;
  mkdirSync(dirname(bin), { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const env = { ...process.env, GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" };
  try {
    await run("go", ["build", "-trimpath", "-o", tmp, "."], { cwd: here, env, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`building the Lua harness (go build in test/argocd) failed: ${e.stderr || e.message}`);
  }
  renameSync(tmp, bin);
  return bin;
}

describe("argocd: health check of KubeVela Applications (argocd/health.lua)", function () {
  this.timeout(300_000); // a cold build downloads gopher-lua from the Go module proxy
  let bin: string;
  let results = new Map<string, Result>();

  before(async function () {
    bin = await harness();
    // exit code 1 only means some case failed; each `it` below reports its own case
    const out = await run(bin, ["-script", script, "-tests", testsFile, "-json"]).catch(
      (err: { code?: number; stdout?: string; stderr?: string }) => {
        if (err.code === 1 && err.stdout) return { stdout: err.stdout };
        throw new Error(`lua-harness failed: ${err.stderr ?? String(err)}`);
      },
    );
    results = new Map((JSON.parse(out.stdout) as Result[]).map((r) => [r.inputPath, r]));
  });

  it("runs scripts in a sandbox like Argo CD's (no string, math, io, os globals; no string methods)", async function () {
    const { stdout } = await run(bin, ["-sandbox"]);
    const sandbox = JSON.parse(stdout) as Record<string, string>;
    expect(sandbox).to.include({
      string: "nil",
      math: "nil",
      io: "nil",
      os: "nil",
      table: "table",
      'require(os).time': "function",
      '("x"):upper()': "fails",
    });
  });

  it("argocd/argocd-cm.yaml embeds argocd/health.lua unchanged", function () {
    const cm = parse(readFileSync(join(root, "argocd/argocd-cm.yaml"), "utf8")) as { data: Record<string, string> };
    const embedded = cm.data["resource.customizations.health.core.oam.dev_Application"];
    expect(embedded, "re-embed argocd/health.lua into argocd/argocd-cm.yaml (indented by 4 spaces)").to.equal(
      readFileSync(script, "utf8"),
    );
  });

  it("every file in argocd/testdata has one expected health, and none is Unknown", function () {
    const listed = cases.map((c) => c.inputPath).sort();
    const files = readdirSync(join(root, "argocd/testdata"))
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => `testdata/${f}`)
      .sort();
    expect(listed).to.deep.equal(files);
    expect(cases.map((c) => c.healthStatus.status)).to.not.include("Unknown");
  });

  for (const c of cases) {
    it(`${c.inputPath} → ${c.healthStatus.status}${c.healthStatus.message ? `: ${c.healthStatus.message}` : ""}`, function () {
      const r = results.get(c.inputPath);
      expect(r, `no result for ${c.inputPath}`).to.not.equal(undefined);
      expect(r!.error ?? "", "script error").to.equal("");
      expect(r!.got).to.deep.equal(c.healthStatus);
      // messages stay short and on one line
      expect(r!.got.message).to.not.include("\n");
      expect(Buffer.byteLength(r!.got.message)).to.be.below(400);
      expect(r!.got.message).to.not.include("\ufffd"); // no UTF-8 character cut in half
    });
  }
});

// The same cases through the real Argo CD code path: `argocd admin settings resource-overrides
// health` of Argo CD's own CLI (built by scripts/build-control-plane.sh argocd, the version in
// scripts/versions.env), reading the health check from argocd/argocd-cm.yaml as a user installs it.
describe("argocd: the health check in Argo CD's own code (argocd admin settings resource-overrides health)", function () {
  this.timeout(300_000);
  const version = /^ARGOCD_VERSION=(\S+)$/m.exec(readFileSync(join(root, "scripts/versions.env"), "utf8"))?.[1];
  const cache = process.env.STEP_EXECUTOR_CACHE ?? join(homedir(), ".cache/step-executor");
  const argocd = join(cache, `argocd-${version}`, "argocd");
  const got = new Map<string, Health>();

  before(async function () {
    if (!existsSync(argocd)) throw new Error(`${argocd} is missing: build it with \`bash scripts/build-control-plane.sh argocd\` (npm test does)`);
    // 2 at a time: each run is a separate process of a 280 MB binary
    const queue = [...cases];
    await Promise.all([0, 1].map(async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const { stdout } = await run(argocd, ["admin", "settings", "resource-overrides", "health", join(root, "argocd", c.inputPath), "--argocd-cm-path", join(root, "argocd/argocd-cm.yaml")], { maxBuffer: 16 << 20 });
        const status = /^STATUS: (.*)$/m.exec(stdout)?.[1];
        const message = /^MESSAGE: (.*)$/m.exec(stdout)?.[1] ?? "";
        if (status === undefined) throw new Error(`argocd admin printed no STATUS for ${c.inputPath}:\n${stdout}`);
        got.set(c.inputPath, { status, message });
      }
    }));
  });

  for (const c of cases) {
    const deleting = /^\s+deletionTimestamp:/m.test(readFileSync(join(root, "argocd", c.inputPath), "utf8"));
    it(`${c.inputPath} → ${c.healthStatus.status} (argocd ${version ?? "?"})`, function () {
      if (deleting) {
        // Argo CD answers for an object being deleted itself, before any health script runs
        expect(got.get(c.inputPath)?.status).to.equal("Progressing");
        expect(got.get(c.inputPath)?.message).to.match(/^Pending deletion/);
      } else {
        expect(got.get(c.inputPath)).to.deep.equal(c.healthStatus);
      }
    });
  }
});
