import { expect } from "chai";
import { celPool, compileCondition, compileExpression, ExpressionEvalError, ExpressionLimitError } from "../../server/cel/cel.js";
import { ConfigError, loadConfig } from "../../server/config.js";
import { InputError, TerminalError } from "../../server/shared/errors.js";
import { NESTED_ALL, NESTED_MAPS, rejection } from "../fixtures/cel.js";

const object = {
  metadata: { name: "web", labels: { tier: "front" } },
  spec: { replicas: 3 },
  status: { readyReplicas: 3, conditions: [{ type: "Available", status: "True" }] },
};

describe("cel", () => {
  const values: [string, unknown][] = [
    ["object.status.readyReplicas >= object.spec.replicas", true],
    ["object.spec.replicas + 1", 4],
    ["object.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')", true],
    ["has(object.status.missing) ? 'yes' : 'no'", "no"],
    ["object.metadata.name.startsWith('w') && object.metadata.labels.tier.lowerAscii() == 'front'", true],
    ["object.status.conditions.map(c, c.type)", ["Available"]],
    ["{'name': object.metadata.name, 'n': object.spec.replicas}", { name: "web", n: 3 }],
    ["object.metadata.name.matches('^w[a-z]+$')", true],
    ["2.5 * 2.0", 5],
    ["object.metadata.labels['tier'] + object.status.conditions[0].type", "frontAvailable"],
    // Within the comprehension limits: one nested inside another, and chains.
    ["object.status.conditions.all(c, object.status.conditions.exists(d, d.type == c.type))", true],
    ["object.status.conditions.filter(c, c.status == 'True').map(c, c.type).exists(t, t == 'Available')", true],
  ];
  for (const [src, want] of values) {
    it(`evaluates ${src}`, async () => {
      expect(await compileExpression(src, "condition", ["object"]).evaluate({ object })).to.deep.equal(want);
    });
  }

  const exists = (i: number) => `object.status.conditions.exists(c${i}, c${i}.type == 'T${i}')`;
  const invalid: [string, RegExp][] = [
    ["object.spec.replicas >", /condition: invalid CEL expression `object.spec.replicas >`: at 1:/],
    ["objekt.spec", /unknown variable "objekt" \(available: object\)/],
    ["nosuchfn(object)", /unknown function "nosuchfn"/],
    ["", /it is empty/],
    ["(".repeat(40) + "1" + ")".repeat(40), /nested deeper than 32/],
    ["x".repeat(5000), /longer than 4096/],
    [NESTED_ALL, /^condition: invalid CEL expression `.*`: comprehensions \(all, exists, exists_one, map, filter\) are nested 8 deep; at most 2 are allowed$/],
    [NESTED_MAPS, /comprehensions .* are nested 6 deep; at most 2 are allowed$/],
    ["object.a.all(x, object.b.exists(y, object.c.map(z, z).size() > 0))", /nested 3 deep; at most 2 are allowed$/],
    [Array.from({ length: 9 }, (_, i) => exists(i)).join(" || "), /: it has 9 comprehensions \(all, exists, exists_one, map, filter\); at most 8 are allowed$/],
  ];
  for (const [src, want] of invalid) {
    it(`rejects ${src.slice(0, 30)} with a clear message`, () => {
      expect(() => compileExpression(src, "condition", ["object"])).to.throw(InputError, want);
    });
  }

  it("accepts 8 comprehensions side by side", async () => {
    const c = compileCondition(Array.from({ length: 8 }, (_, i) => exists(i)).join(" || "), "condition", ["object"]);
    expect(await c.test({ object: { status: { conditions: [{ type: "T7" }] } } })).to.equal(true);
  });

  it("reports a missing field as an evaluation error naming the expression", async () => {
    const e = compileExpression("object.status.nope == 1", "condition", ["object"]);
    const err = await rejection(e.evaluate({ object }));
    expect(err).to.be.instanceOf(ExpressionEvalError);
    expect(err.message).to.match(/^condition `object.status.nope == 1` could not be evaluated: .*nope/);
  });

  it("requires a condition to be a boolean", async () => {
    const c = compileCondition("object.spec.replicas", "successCondition", ["object"]);
    const err = await rejection(c.test({ object }));
    expect(err).to.be.instanceOf(ExpressionEvalError);
    expect(err.message).to.match(/returned 3, not true or false/);
  });

  it("does not expose prototype properties", async () => {
    const c = compileCondition("has(object.constructor)", "condition", ["object"]);
    expect(await c.test({ object: {} })).to.equal(false);
  });

  it("keeps matches linear-time on a catastrophic pattern", async () => {
    const c = compileCondition("object.s.matches('^(a+)+$')", "condition", ["object"]);
    expect(await c.test({ object: { s: "a".repeat(5000) + "!" } })).to.equal(false);
  });

  it("keeps the JSON conversions: integers are ints, large ones come back as strings, bytes as base64", async () => {
    const e = compileExpression("[object.n * 2, object.f, object.big * 1000, b'hi', object.missing == null]", "outputs.x", ["object"]);
    expect(await e.evaluate({ object: { n: 21, f: 1.5, big: Number.MAX_SAFE_INTEGER, missing: null } })).to.deep.equal([42, 1.5, "9007199254740991000", "aGk=", true]);
  });

  describe("an expression within the limits that is too expensive for its data", () => {
    // Two levels over a long list the tenant controls (an HTTP body, an object): 10^10 steps.
    const big = Array.from({ length: 100_000 }, (_, i) => i);
    const src = "object.items.all(x, object.items.all(y, x >= 0 || y >= 0))";

    before(async () => { await celPool().evaluate("true", {}); }); // workers started: the deadline is the expression's own

    it("fails with a terminal error at the deadline, and is not evaluated again", async () => {
      const c = compileCondition(src, "condition", ["object"]);
      const pool = celPool();
      const timeouts = pool.stats.timeouts;
      const t0 = performance.now();
      const err = await rejection(c.test({ object: { items: big } }));
      const took = performance.now() - t0;
      expect(err).to.be.instanceOf(ExpressionLimitError).and.instanceOf(TerminalError);
      expect(err.message).to.equal(`condition \`${src}\`: evaluation exceeded 1s (the executor's limit); simplify the expression`);
      expect(took).to.be.below(pool.options.timeoutMs + 1_500);
      expect(pool.stats.timeouts).to.equal(timeouts + 1);

      const t1 = performance.now();
      const again = await rejection(c.test({ object: { items: [1] } }));
      expect(again).to.equal(err);
      expect(performance.now() - t1).to.be.below(50);
      expect(pool.stats.timeouts).to.equal(timeouts + 1);
    });

    it("leaves the evaluators working for the next expression", async () => {
      expect(await compileCondition("object.spec.replicas == 3", "condition", ["object"]).test({ object })).to.equal(true);
    });
  });
});

describe("cel flags", () => {
  const env = { STEP_EXECUTOR_TOKEN: "test-token-0123456789abcdef" };
  it("default to 2 workers, 1 s and 32 MiB, and take --cel-workers, --cel-timeout, --cel-heap", () => {
    expect(loadConfig([], env)).to.include({ celWorkers: 2, celTimeoutMs: 1_000, celHeapMiB: 32 });
    expect(loadConfig(["--cel-workers", "3", "--cel-timeout", "250ms", "--cel-heap", "48"], env)).to.include({ celWorkers: 3, celTimeoutMs: 250, celHeapMiB: 48 });
    expect(loadConfig([], { ...env, STEP_EXECUTOR_CEL_TIMEOUT: "2s" })).to.include({ celTimeoutMs: 2_000 });
  });
  it("refuse values that would disable the bounds", () => {
    expect(() => loadConfig(["--cel-timeout", "5m"], env)).to.throw(ConfigError, /^--cel-timeout: "5m" must be between 10ms and 1m$/);
    expect(() => loadConfig(["--cel-workers", "0"], env)).to.throw(ConfigError, /^--cel-workers: "0" must be an integer >= 1$/);
    expect(() => loadConfig(["--cel-heap", "4"], env)).to.throw(ConfigError, /^--cel-heap: "4" must be an integer >= 16$/);
  });
});
