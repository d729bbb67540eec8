import { expect } from "chai";
import { Redactor, REDACTED } from "../../server/redact.js";

describe("redact", () => {
  it("masks every registered value in strings, keys and nested values", () => {
    const r = new Redactor();
    r.add("s3cr3t-token");
    r.add("s3cr3t");
    const out = r.apply({ message: "Bearer s3cr3t-token failed", list: ["x s3cr3t y"], ["k-s3cr3t"]: 1, n: 5 });
    expect(out).to.deep.equal({ message: `Bearer ${REDACTED} failed`, list: [`x ${REDACTED} y`], [`k-${REDACTED}`]: 1, n: 5 });
  });
  it("ignores values too short to mask meaningfully", () => {
    const r = new Redactor();
    r.add("a");
    expect(r.apply("a banana")).to.equal("a banana");
  });
});
