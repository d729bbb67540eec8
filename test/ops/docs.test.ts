import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { usage } from "../../server/config.js";
import { errorMessages } from "./error-messages.js";
import { schemas } from "../../steps/generated/index.js";

describe("docs", () => {
  it("docs/reference.md is what scripts/gen-docs.ts makes from the current schemas (run `npm run gen`)", () => {
    const dir = mkdtempSync(join(tmpdir(), "gen-docs-"));
    try {
      execFileSync(process.execPath, ["--import", "tsx", "scripts/gen-docs.ts", join(dir, "reference.md")]);
      expect(readFileSync("docs/reference.md", "utf8")).to.equal(readFileSync(join(dir, "reference.md"), "utf8"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("docs/configuration.md and docs/metrics.md are what scripts/gen-ops-docs.ts makes from server/config.ts and server/observe/metrics.ts (run `npm run gen`)", () => {
    const dir = mkdtempSync(join(tmpdir(), "gen-ops-docs-"));
    try {
      execFileSync(process.execPath, ["--import", "tsx", "scripts/gen-ops-docs.ts", dir]);
      for (const f of ["configuration.md", "metrics.md"]) expect(readFileSync(`docs/${f}`, "utf8"), f).to.equal(readFileSync(join(dir, f), "utf8"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("docs/configuration.md lists every flag and environment variable of `--help`", () => {
    const doc = readFileSync("docs/configuration.md", "utf8");
    const help = usage();
    const flags = [...help.matchAll(/--([a-z-]+)/g)].map((m) => m[1]!);
    const envs = [...help.matchAll(/env (STEP_EXECUTOR_[A-Z_]+)/g)].map((m) => m[1]!);
    expect(flags.length).to.be.greaterThan(15);
    for (const f of flags) expect(doc).to.contain(`\`--${f}\``);
    for (const e of envs) expect(doc).to.contain(`\`${e}\``);
  });

  it("docs/troubleshooting.md covers every error message of the executor, its start-up and the step definitions", () => {
    const doc = readFileSync("docs/troubleshooting.md", "utf8");
    const messages = errorMessages();
    // the extractor must find the messages it checks (53 when written); none found would pass
    expect(messages.length, "error messages found in server/, steps/ and addon/").to.be.at.least(40);
    const missing = messages.filter((m) => !doc.includes(m));
    expect(missing, `add these to docs/troubleshooting.md:\n${missing.join("\n")}`).to.deep.equal([]);
  });

  it("every step kind has its page under docs/steps/ and an example in addon/README.md", () => {
    const readme = readFileSync("addon/README.md", "utf8");
    for (const kind of Object.keys(schemas)) {
      expect(readFileSync(`docs/steps/${kind}.md`, "utf8")).to.match(new RegExp(`^# ${kind}`, "m"));
      expect(readme).to.contain(`type: ${kind}`);
    }
  });
});

