// Output caps: declared outputs at prepare, serialized size at the engine, for every step kind.
import { expect } from "chai";
import { InputError } from "../../server/shared/errors.js";
import { prepareWait } from "../../server/kube/object-wait.js";
import { formatBytes, MAX_OUTPUT_BYTES, MAX_OUTPUTS, MAX_OUTPUTS_BYTES } from "../../server/shared/outputs.js";
import { httpRequest } from "../../steps/http-request/step.js";
import type { StepKind } from "../../server/contract/step.js";
import { memoryEngine, newRun } from "./engine-fixture.js";

/** A step kind that outputs what its parameter says: stands for any kind. */
const echo: StepKind<{ outputs: Record<string, unknown> }, { outputs: Record<string, unknown> }> = {
  kind: "echo-outputs", description: "test", schema: {}, pure: true,
  prepare: (p) => p,
  execute: async (_ctx, p) => ({ phase: "succeeded", message: "done", outputs: p.outputs }),
};

describe("outputs: caps", () => {
  const declared = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`o${i}`, "response.status"]));
  const ref = { apiVersion: "v1", kind: "ConfigMap", namespace: "tenant", name: "x" };

  it(`a step declares at most ${MAX_OUTPUTS} outputs: more is an InputError at prepare (http-request and object waits)`, () => {
    const http = (outputs: Record<string, string>) => httpRequest.prepare({ url: "https://example.com/", method: "GET", timeout: "5s", retries: 0, backoff: "1s", maxBackoff: "1s", outputs } as never, newRun());
    expect(() => http(declared(MAX_OUTPUTS))).not.to.throw();
    expect(() => http(declared(5_000))).to.throw(InputError, /^outputs: 5000 outputs declared; a step may declare at most 32; output an object or a list in one of them$/);
    const wait = (outputs: Record<string, string>) => prepareWait(ref, { timeout: "1m", outputs: Object.fromEntries(Object.keys(outputs).map((k) => [k, "object.metadata.name"])) });
    expect(() => wait(declared(MAX_OUTPUTS))).not.to.throw();
    expect(() => wait(declared(MAX_OUTPUTS + 1))).to.throw(InputError, /^outputs: 33 outputs declared/);
  });

  describe("sizes, enforced by the engine on any step kind's result", () => {
    let env: ReturnType<typeof memoryEngine>;
    before(() => { env = memoryEngine(); });
    after(() => env.close());

    it("one output larger than 16 KiB fails the step with one clear line; nothing of it is stored", async () => {
      const { view, record } = await env.runToEnd(echo as StepKind, { outputs: { small: "ok", big: "x".repeat(1_200_000) } });
      expect(view).to.deep.equal({ phase: "failed", message: "outputs.big: 1.1 MiB is more than the 16 KiB one output may be; output a smaller field", outputs: {} });
      expect(record.outputs).to.deep.equal({});
      expect(JSON.stringify(record).length).to.be.below(1_000);
    });

    it("outputs that together pass 64 KiB fail the step, naming the total", async () => {
      const part = "y".repeat(15 * 1024);
      const { view } = await env.runToEnd(echo as StepKind, { outputs: { a: part, b: part, c: part, d: part, e: part } });
      expect(view.phase).to.equal("failed");
      expect(view.message).to.equal("outputs: 75 KiB is more than the 64 KiB a step may output; output smaller fields");
    });

    it("outputs within the caps pass unchanged", async () => {
      const part = "z".repeat(MAX_OUTPUT_BYTES - 100);
      const outputs = { a: part, b: part, c: part, n: 5, list: [1, "two"] };
      expect(JSON.stringify(outputs).length).to.be.below(MAX_OUTPUTS_BYTES);
      const { view } = await env.runToEnd(echo as StepKind, { outputs });
      expect(view).to.deep.equal({ phase: "succeeded", message: "done", outputs });
    });
  });

  it("formats sizes for messages", () => {
    expect([formatBytes(512), formatBytes(16 * 1024), formatBytes(1536), formatBytes(1.25 * 1024 * 1024)]).to.deep.equal(["512 bytes", "16 KiB", "1.5 KiB", "1.3 MiB"]);
  });
});
