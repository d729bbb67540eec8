import { expect } from "chai";
import { authenticate, sign } from "../../server/auth.js";
import { AuthError } from "../../server/errors.js";

const current = "current-token-0123456789";
const previous = "previous-token-0123456789";
const body = Buffer.from('{"a":1}');

describe("auth", () => {
  it("accepts a signature by the current or the previous token", () => {
    for (const t of [current, previous]) authenticate([current, previous], { signature: sign(t, body) }, body);
  });
  it("accepts a bearer token", () => {
    authenticate([current], { authorization: `Bearer ${current}` }, body);
  });
  const bad: [string, { authorization?: string; signature?: string }][] = [
    ["no credentials", {}],
    ["a signature of another body", { signature: sign(current, "{}") }],
    ["a signature with another key", { signature: sign("other-token-0123456789", body) }],
    ["a wrong bearer", { authorization: "Bearer nope" }],
    ["the token as a signature", { signature: current }],
  ];
  for (const [name, headers] of bad) {
    it(`rejects ${name} without saying why`, () => {
      expect(() => authenticate([current], headers, body)).to.throw(AuthError, /^unauthenticated/);
    });
  }
});
