// The motivating use case on the real controller: deploy a component, dispatch a GitHub Actions
// workflow (on the local GitHub API, validated against GitHub's OpenAPI), wait for its
// conclusion, and pass the run's URL to the next step.
import { expect } from "chai";
import { FakeGitHub } from "../github-server/server.js";
import { kubeClients, tempNamespace } from "../fixtures/kube.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { application, applyYaml, finished, startExecutorProcess, step, vela, waitForApp, type ExecutorProcess } from "./harness.js";

const PAT = "ghp_e2eE2Ee2eE2Ee2eE2Ee2eE2Ee2eE2Ee2e00";

describe("e2e: github-actions on the real KubeVela controller", function () {
  this.timeout(300_000);
  let executor: ExecutorProcess;
  let github: FakeGitHub;
  let chat: Target;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;

  before(async () => {
    executor = await startExecutorProcess();
    github = await new FakeGitHub({
      tokens: [PAT],
      repos: [{
        owner: "acme", name: "shop", branches: ["main"],
        workflows: [
          { id: 201, file: "e2e.yaml", name: "E2E", inputs: { environment: {}, distinct_id: {} }, runName: "E2E [${{ inputs.distinct_id }}]", script: { queuedMs: 200, runningMs: 1500 } },
          { id: 202, file: "broken.yaml", name: "Broken", inputs: { environment: {}, distinct_id: {} }, runName: "Broken [${{ inputs.distinct_id }}]", script: { runningMs: 500, conclusion: "failure" } },
        ],
      }],
    }).start();
    chat = await startTarget((_r, res) => reply(res, 200, { ok: true }));
    ns = await tempNamespace("e2e-gha");
    await kubeClients().core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "github-token" }, stringData: { token: PAT } } });
    await vela("addon", "enable", "dist/step-executor", `executorURL=${executor.url}`, `token=${executor.token}`, "-y");
  });

  after(async () => {
    await ns?.delete();
    await chat?.close();
    await github?.close();
    await executor?.stop();
  });

  const dispatch = (workflow: string) => ({
    name: "e2e-tests", type: "github-actions",
    properties: { owner: "acme", repo: "shop", workflow, ref: "main", inputs: { environment: "staging" }, apiURL: github.url, credentials: { token: { name: "github-token", key: "token" } }, timeout: "2m" },
    outputs: [{ name: "run-url", valueFrom: "outputs.runUrl" }],
  });

  it("dispatches once, waits for success, and passes runUrl to the next step", async () => {
    const name = "deploy-then-e2e";
    await applyYaml(application(ns.name, name, [
      dispatch("e2e.yaml"),
      { name: "announce", type: "http-request", inputs: [{ from: "run-url", parameterKey: "body.runUrl" }], properties: { url: `${chat.url}/notify`, method: "POST", body: { text: "e2e passed" } } },
    ]));
    const s = await waitForApp(ns.name, name, finished, 120_000);
    expect(s.status, JSON.stringify(s.workflow)).to.equal("running");
    expect(step(s, "e2e-tests").phase).to.equal("succeeded");
    const dispatches = github.exchanges.filter((x) => x.method === "POST" && x.path.endsWith("/dispatches"));
    expect(dispatches).to.have.length(1);
    const run = github.runs[0]!;
    expect(JSON.parse(chat.requests[0]!.body)).to.deep.equal({ text: "e2e passed", runUrl: `${github.url}/acme/shop/actions/runs/${run.id}` });
    expect(github.validationErrors).to.deep.equal([]);
    // The executor's view of GitHub's rate limit: what the latest answer said was left.
    const metrics = await (await fetch(`${executor.url}/metrics`)).text();
    const remaining = Number(/^step_executor_github_ratelimit_remaining\{resource="core"\} (\d+)$/m.exec(metrics)?.[1]);
    expect(remaining).to.be.within(1, 4999);
    expect(metrics).to.match(/^step_executor_runs_finished_total\{kind="github-actions",outcome="succeeded"\} 1$/m);
    expect(metrics).not.to.contain(PAT);
  });

  it("fails the workflow with the conclusion and the run's URL when the run fails", async () => {
    const name = "deploy-then-broken";
    await applyYaml(application(ns.name, name, [dispatch("broken.yaml")]));
    const s = await waitForApp(ns.name, name, (x) => finished(x) && x.workflow?.steps?.some((st) => st.name === "e2e-tests" && st.phase === "failed") === true, 120_000);
    expect(step(s, "e2e-tests").message).to.contain("failure").and.to.contain(`${github.url}/acme/shop/actions/runs/`);
    expect(github.validationErrors).to.deep.equal([]);
  });
});
