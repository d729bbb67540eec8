import { expect } from "chai";
import { compileCondition, compileExpression, ExpressionEvalError } from "../../server/cel.js";
import { InputError } from "../../server/errors.js";

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
  ];
  for (const [src, want] of values) {
    it(`evaluates ${src}`, () => {
      expect(compileExpression(src, "condition", ["object"]).evaluate({ object })).to.deep.equal(want);
    });
  }

  const invalid: [string, RegExp][] = [
    ["object.spec.replicas >", /condition: invalid CEL expression `object.spec.replicas >`: at 1:/],
    ["objekt.spec", /unknown variable "objekt" \(available: object\)/],
    ["nosuchfn(object)", /unknown function "nosuchfn"/],
    ["", /it is empty/],
    ["(".repeat(40) + "1" + ")".repeat(40), /nested deeper than 32/],
    ["x".repeat(5000), /longer than 4096/],
  ];
  for (const [src, want] of invalid) {
    it(`rejects ${src.slice(0, 30)} with a clear message`, () => {
      expect(() => compileExpression(src, "condition", ["object"])).to.throw(InputError, want);
    });
  }

  it("reports a missing field as an evaluation error naming the expression", () => {
    const e = compileExpression("object.status.nope == 1", "condition", ["object"]);
    expect(() => e.evaluate({ object })).to.throw(ExpressionEvalError, /condition `object.status.nope == 1` could not be evaluated: .*nope/);
  });

  it("requires a condition to be a boolean", () => {
    const c = compileCondition("object.spec.replicas", "successCondition", ["object"]);
    expect(() => c.test({ object })).to.throw(ExpressionEvalError, /returned 3, not true or false/);
  });

  it("does not expose prototype properties", () => {
    const c = compileCondition("has(object.constructor)", "condition", ["object"]);
    expect(c.test({ object: {} })).to.equal(false);
  });

  it("keeps matches linear-time on a catastrophic pattern", () => {
    const c = compileCondition("object.s.matches('^(a+)+$')", "condition", ["object"]);
    expect(c.test({ object: { s: "a".repeat(5000) + "!" } })).to.equal(false);
  });
});
