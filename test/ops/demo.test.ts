// `npm run demo -- down` (scripts/demo.sh down) stops what the demo started, also when some of it
// already exited. Run against empty state directories of its own, so that it stops nothing of
// the control plane the other suites use.
import { expect } from "chai";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

describe("ops: npm run demo -- down", function () {
  this.timeout(60_000);

  it("goes on to stop the control plane when the executor it started has already exited", async () => {
    const demoState = mkdtempSync(join(tmpdir(), "demo-state-"));
    const planeState = mkdtempSync(join(tmpdir(), "plane-state-"));
    try {
      // the pid of a process that has exited (and been reaped)
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
      writeFileSync(join(demoState, "executor.pid"), String(dead));
      const { stdout, stderr } = await run("bash", ["scripts/demo.sh", "down"], {
        env: { ...process.env, STEP_EXECUTOR_DEMO_STATE: demoState, STEP_EXECUTOR_STATE: planeState },
      });
      expect(stdout + stderr).to.match(/\[control-plane\] down in \d+ s/);
      expect(existsSync(join(demoState, "executor.pid"))).to.equal(false);
    } finally {
      rmSync(demoState, { recursive: true, force: true });
      rmSync(planeState, { recursive: true, force: true });
    }
  });
});

describe("ops: npm test and npm run demo side by side", function () {
  it("the suites run on a control plane of their own, not the demo's (scripts/test.sh)", function () {
    const state = process.env.STEP_EXECUTOR_STATE;
    expect(state, "STEP_EXECUTOR_STATE (set by scripts/test.sh)").to.be.a("string");
    expect(state).to.not.equal(join(process.env.HOME ?? "", ".local/state/step-executor/control-plane"));
    expect(process.env.KUBECONFIG).to.equal(join(state!, "admin.kubeconfig"));
  });
});

describe("ops: one runtime", function () {
  it("the suites run on the Node major the image runs (Dockerfile FROM node:<major>)", function () {
    const image = /^FROM node:(\d+)-/m.exec(readFileSync("Dockerfile", "utf8"))?.[1];
    expect(image, "the Dockerfile's node base image").to.be.a("string");
    expect(process.versions.node.split(".")[0], "npm scripts run on node_modules/.bin/node (package node)").to.equal(image);
  });
});
