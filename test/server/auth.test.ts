import { expect } from "chai";
import { authenticate, namespaceKey, sign } from "../../server/http/auth.js";
import { AuthError } from "../../server/shared/errors.js";

const current = "current-token-0123456789";
const previous = "previous-token-0123456789";
const body = Buffer.from('{"run":{"namespace":"tenant-a"}}');

describe("auth", () => {
  it("accepts a signature by the key of the claimed namespace, derived from the current or the previous token", () => {
    for (const t of [current, previous]) authenticate([current, previous], { signature: sign(namespaceKey(t, "tenant-a"), body) }, body, "tenant-a");
  });
  it("a namespace's key does not sign for another namespace (a tenant that can read its own key cannot speak for another)", () => {
    const mine = sign(namespaceKey(current, "tenant-a"), body);
    expect(() => authenticate([current], { signature: mine }, body, "tenant-b")).to.throw(AuthError, /^unauthenticated/);
    expect(namespaceKey(current, "tenant-a")).not.to.equal(namespaceKey(current, "tenant-b"));
    expect(namespaceKey(current, "tenant-a")).not.to.contain(current);
  });
  it("accepts the token as a bearer only when bearer auth is on", () => {
    authenticate([current], { authorization: `Bearer ${current}` }, body, undefined, true);
    expect(() => authenticate([current], { authorization: `Bearer ${current}` }, body, undefined)).to.throw(AuthError, /--bearer-auth on/);
  });
  const bad: [string, { authorization?: string; signature?: string }][] = [
    ["no credentials", {}],
    ["a signature of another body", { signature: sign(namespaceKey(current, "tenant-a"), "{}") }],
    ["a signature with another key", { signature: sign(namespaceKey("other-token-0123456789", "tenant-a"), body) }],
    ["a signature with the token itself (the old scheme)", { signature: sign(current, body) }],
    ["a wrong bearer", { authorization: "Bearer nope" }],
    ["the token as a signature", { signature: current }],
  ];
  for (const [name, headers] of bad) {
    it(`rejects ${name} without saying why`, () => {
      expect(() => authenticate([current], headers, body, "tenant-a", true)).to.throw(AuthError, /^unauthenticated/);
    });
  }
});
