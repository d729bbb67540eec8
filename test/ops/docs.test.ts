import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

  it("every step kind has its page under docs/steps/ and an example in addon/README.md", () => {
    const readme = readFileSync("addon/README.md", "utf8");
    for (const kind of Object.keys(schemas)) {
      expect(readFileSync(`docs/steps/${kind}.md`, "utf8")).to.match(new RegExp(`^# ${kind}`, "m"));
      expect(readme).to.contain(`type: ${kind}`);
    }
  });
});
