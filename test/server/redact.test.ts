import { expect } from "chai";
import { compileExpression } from "../../server/cel/cel.js";
import { excerpt, Redactor, REDACTED } from "../../server/shared/redact.js";

/** A secretHeaders value as a target echoing the request would show it. */
const SECRET = "Bearer tok_5fG7hJ2kL9mN3pQ8rS4tU6vW1xY0zA2b";
const TOKEN = SECRET.slice("Bearer ".length);

/** Every run of 8 characters of the secret, or of its encodings, still in `value`'s strings joined (case-insensitively). */
function leaks(value: unknown): string[] {
  const strings = (v: unknown): string => typeof v === "string" ? v : Array.isArray(v) ? v.map(strings).join("")
    : v && typeof v === "object" ? Object.values(v).map(strings).join("") : "";
  const text = strings(value).toLowerCase();
  const found: string[] = [];
  const forms = [SECRET, Buffer.from(SECRET).toString("hex"), Buffer.from(SECRET).toString("base64"), encodeURIComponent(SECRET)];
  for (const form of forms) {
    for (let i = 0; i + 8 <= form.length; i++) {
      const run = form.slice(i, i + 8).toLowerCase();
      if (text.includes(run)) found.push(run);
    }
  }
  return found;
}

/** What a tenant's output expression makes of a response echoing the header, after redaction. */
async function output(expression: string): Promise<unknown> {
  const r = new Redactor();
  r.add(SECRET);
  const expr = compileExpression(expression, "outputs.x", ["response"]);
  const value = await expr.evaluate({ response: { status: 200, headers: {}, body: { authorization: SECRET } } });
  expect(leaks(value), "the form itself must carry the secret, or the test proves nothing").not.to.deep.equal([]);
  return r.apply({ x: value }).x;
}

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

  describe("what a tenant's CEL makes of an echoed secret", () => {
    const forms: [string, string][] = [
      ["a prefix (substring)", "response.body.authorization.substring(0, 12)"],
      ["a middle part (substring)", "response.body.authorization.substring(10, 30)"],
      ["upper case", "response.body.authorization.upperAscii()"],
      ["lower case", "response.body.authorization.lowerAscii()"],
      ["a replace of a few characters", "response.body.authorization.replace('5', '_').replace('Q', '-')"],
      ["base64 (bytes)", "bytes(response.body.authorization)"],
      ["base64 of a part (bytes of a substring)", "bytes(response.body.authorization.substring(9, 31))"],
      ["hex (\"%x\".format)", "'%x'.format([response.body.authorization])"],
      ["hex of a part", "'%x'.format([response.body.authorization.substring(5, 25)])"],
      ["single characters (split(\"\"))", "response.body.authorization.split('')"],
      ["pairs of characters in a map", "{'a': response.body.authorization.substring(7, 9), 'b': response.body.authorization.substring(9, 11), 'c': response.body.authorization.substring(11, 13), 'd': response.body.authorization.substring(13, 16)}"],
      ["the secret inside a longer text", "'token=' + response.body.authorization + ';'"],
    ];
    for (const [what, expression] of forms) {
      it(`masks ${what}`, async () => {
        const out = await output(expression);
        expect(leaks(out), JSON.stringify(out)).to.deep.equal([]);
        expect(JSON.stringify(out)).to.contain(REDACTED);
      });
    }
  });

  it("masks URL-encoded and base64url forms", () => {
    const r = new Redactor();
    r.add(SECRET);
    const url = `https://x.example/?auth=${encodeURIComponent(SECRET)}&n=1`;
    const b64url = Buffer.from(SECRET).toString("base64url");
    expect(r.apply(url)).to.equal(`https://x.example/?auth=${REDACTED}&n=1`);
    expect(r.apply(`k=${b64url}`)).to.not.contain(b64url.slice(4, 12));
  });

  it("an excerpt that cuts the secret: redacting first leaves nothing; a cut excerpt leaves no part of 4 or more characters", () => {
    const r = new Redactor();
    r.add(TOKEN);
    const body = "x".repeat(170) + TOKEN + " more";
    // Cut first (the leak): 30 of the token's 32 characters before "...".
    const cut = excerpt(body, 200);
    expect(cut).to.contain(TOKEN.slice(0, 30));
    expect(r.apply(cut)).to.equal("x".repeat(170) + REDACTED + "...");
    // Only 5 characters left at the cut: fewer than a run, masked because they stand at the cut.
    expect(r.apply(excerpt("y".repeat(195) + TOKEN, 200))).to.equal("y".repeat(195) + REDACTED + "...");
    // Redacted first, then cut: the marker is what gets cut.
    expect(excerpt(r.apply(body), 200)).to.equal("x".repeat(170) + REDACTED + " more");
  });

  it("leaves text without a secret alone, including 'Bearer' and short common parts", () => {
    const r = new Redactor();
    r.add(SECRET);
    const text = "GET https://cdn.example.com/purge answered 401 Unauthorized: Bearer credentials required...";
    expect(r.apply(text)).to.equal(text);
    expect(r.apply(["a", "b", "c"])).to.deep.equal(["a", "b", "c"]);
  });

  it("masks the body lines of a PEM key but not its armour, so messages about 'private key' stay readable", () => {
    const r = new Redactor();
    const body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    r.add(`-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`);
    expect(r.apply("is not a PEM private key")).to.equal("is not a PEM private key");
    expect(r.apply(`got ${body.slice(3, 40)}`)).to.equal(`got ${REDACTED}`);
  });

  it("stays linear: 1 MiB of text with several secrets is redacted in well under a second", () => {
    const r = new Redactor();
    for (let i = 0; i < 8; i++) r.add(`${SECRET}-${i}`);
    r.add("-----BEGIN PRIVATE KEY-----\n" + "A1b2C3d4".repeat(200) + "\n-----END PRIVATE KEY-----");
    const big = ("lorem ipsum dolor sit amet, " + "0123456789abcdef".repeat(4)).repeat(12_000).slice(0, 1 << 20) + SECRET;
    const list = Array.from({ length: 100_000 }, (_, i) => String.fromCharCode(97 + (i % 26)));
    const t0 = process.hrtime.bigint();
    const out = r.apply(big);
    const outList = r.apply(list);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(out.endsWith(REDACTED)).to.equal(true);
    expect(outList).to.deep.equal(list);
    expect(ms).to.be.below(1_000);
  });

  it("runs redacting the same secret share its tables (a thousand waiting steps with one token hold one); a run with several secrets masks each", () => {
    const tableOf = (r: Redactor) => (r as unknown as { own: unknown[] }).own;
    const a = new Redactor(), b = new Redactor();
    a.add(TOKEN);
    b.add(TOKEN);
    expect(tableOf(a)[0], "one table for the token").to.equal(tableOf(b)[0]);
    b.add("second-secret-value-0042");
    expect(tableOf(a), "adding to one run does not touch the other's").to.have.length(1);
    const out = b.apply({ one: `x ${TOKEN.toUpperCase()} y`, two: Buffer.from("second-secret-value-0042").toString("base64"), three: "toK_5fG7" });
    expect(leaks(out)).to.deep.equal([]);
    expect(out.two, "the second secret's base64 is masked too").to.contain(REDACTED).and.not.contain(Buffer.from("second-secret-value-0042").toString("base64").slice(0, 12));
    expect(a.apply("second-secret-value-0042"), "a's run knows only its own secret").to.equal("second-secret-value-0042");
  });
});
