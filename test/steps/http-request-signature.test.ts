// http-request's `signature`: each request carries an HMAC of the exact body it sends, keyed with
// a Secret's value, so the receiver can verify it came from the step. A real server on 127.0.0.1
// verifies what it received with node:crypto, as a receiver would; runs go through the engine
// (memory store, Secrets from a map), so waiting for a Secret and redaction are the executor's own.
import { expect } from "chai";
import { createHmac, timingSafeEqual } from "node:crypto";
import { InputError } from "../../server/shared/errors.js";
import { httpRequest } from "../../steps/http-request/step.js";
import type { StepKind } from "../../server/contract/step.js";
import { reply, startTarget, type Recorded, type Target } from "../fixtures/target.js";
import { memoryEngine, newRun } from "../server/engine-fixture.js";

const KEY = "whsec_3kq9Lm2Xv8RtB7nP4cZ1";
const kind = httpRequest as unknown as StepKind;

/** What a receiver does: recompute the HMAC over the bytes it received and compare in constant time. */
function verifies(req: Recorded, header: string, expected: { algorithm: string; encoding: "hex" | "base64"; prefix: string; content?: string }): boolean {
  const got = String(req.headers[header.toLowerCase()] ?? "");
  const want = expected.prefix + createHmac(expected.algorithm, KEY).update(expected.content ?? req.body, "utf8").digest(expected.encoding);
  return got.length === want.length && timingSafeEqual(Buffer.from(got), Buffer.from(want));
}

describe("http-request with signature", () => {
  let target: Target;
  let env: ReturnType<typeof memoryEngine>;
  before(async () => {
    // Fails the first attempt of /flaky, so a retry is signed too.
    let flaky = 0;
    target = await startTarget((req, res) => reply(res, req.path === "/flaky" && ++flaky === 1 ? 503 : 200, { ok: true, echo: req.headers }));
  });
  beforeEach(() => { env = memoryEngine({ secrets: { hooks: { key: KEY } } }); });
  afterEach(() => env.close());
  after(() => target.close());
  const step = (extra: Record<string, unknown>) => ({
    url: `${target.url}/hook`, method: "POST", timeout: "5s", retries: 0, backoff: "10ms", maxBackoff: "10ms",
    body: { release: "2026.12.3", note: "ünïcode ✓" }, ...extra,
  });
  const sig = (extra: Record<string, unknown> = {}) => ({ secret: { name: "hooks", key: "key" }, header: "X-Signature-256", algorithm: "sha256", encoding: "hex", ...extra });

  it("by default sends X-Signature-256: sha256=<hex HMAC of the exact body>, which the receiver verifies", async () => {
    const { view, record } = await env.runToEnd(kind, step({ signature: sig() }));
    expect(view.phase, view.message).to.equal("succeeded");
    const req = target.requests.at(-1)!;
    expect(req.headers["x-signature-256"]).to.match(/^sha256=[0-9a-f]{64}$/);
    expect(verifies(req, "X-Signature-256", { algorithm: "sha256", encoding: "hex", prefix: "sha256=" })).to.equal(true);
    // The key itself is never sent, shown or stored; the echo of the headers carries only the digest.
    expect(JSON.stringify(req.headers)).to.not.include(KEY);
    expect(JSON.stringify(record)).to.not.include(KEY);
  });

  it("a tampered body does not verify (the check is real)", async () => {
    await env.runToEnd(kind, step({ signature: sig() }));
    const req = target.requests.at(-1)!;
    expect(verifies({ ...req, body: req.body.replace("2026.12.3", "2026.12.4") }, "X-Signature-256", { algorithm: "sha256", encoding: "hex", prefix: "sha256=" })).to.equal(false);
  });

  it("sha512, base64 and a header and prefix of the receiver's choosing", async () => {
    const { view } = await env.runToEnd(kind, step({ signature: sig({ header: "X-Hub-Signature", algorithm: "sha512", encoding: "base64", prefix: "" }) }));
    expect(view.phase, view.message).to.equal("succeeded");
    const req = target.requests.at(-1)!;
    expect(req.headers).to.not.have.property("x-signature-256");
    expect(verifies(req, "X-Hub-Signature", { algorithm: "sha512", encoding: "base64", prefix: "" })).to.equal(true);
  });

  it("with timestampHeader: sends the time and signs '<time>.<body>', so a receiver can refuse replays", async () => {
    const before = Math.floor(Date.now() / 1000);
    const { view } = await env.runToEnd(kind, step({ signature: sig({ timestampHeader: "X-Signature-Timestamp" }) }));
    expect(view.phase, view.message).to.equal("succeeded");
    const req = target.requests.at(-1)!;
    const time = Number(req.headers["x-signature-timestamp"]);
    expect(time).to.be.within(before, Math.floor(Date.now() / 1000));
    expect(verifies(req, "X-Signature-256", { algorithm: "sha256", encoding: "hex", prefix: "sha256=", content: `${time}.${req.body}` })).to.equal(true);
    expect(verifies(req, "X-Signature-256", { algorithm: "sha256", encoding: "hex", prefix: "sha256=" }), "the body alone is not what was signed").to.equal(false);
  });

  it("signs every attempt, and a GET's empty body", async () => {
    const { view } = await env.runToEnd(kind, step({ url: `${target.url}/flaky`, retries: 1, signature: sig() }));
    expect(view.phase, view.message).to.equal("succeeded");
    const attempts = target.requests.filter((r) => r.path === "/flaky");
    expect(attempts.map((r) => verifies(r, "X-Signature-256", { algorithm: "sha256", encoding: "hex", prefix: "sha256=" }))).to.deep.equal([true, true]);
    const get = await env.runToEnd(kind, { ...step({ method: "GET", signature: sig() }), body: undefined });
    expect(get.view.phase, get.view.message).to.equal("succeeded");
    expect(verifies(target.requests.at(-1)!, "X-Signature-256", { algorithm: "sha256", encoding: "hex", prefix: "sha256=", content: "" })).to.equal(true);
  });

  it("waits for a missing Secret, then fails naming it, having sent nothing", async () => {
    const sent = target.requests.length;
    const { view } = await env.runToEnd(kind, step({ signature: sig({ secret: { name: "absent", key: "key" } }) }));
    expect(view).to.deep.include({ phase: "failed", message: "Secret tenant/absent not found, needed for the request signature; gave up after 1s" });
    expect(target.requests.length).to.equal(sent);
  });

  it("refuses, before anything runs, a signature header also set in headers or secretHeaders, or one that is not a header name", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ headers: { "x-signature-256": "mine" }, signature: sig() }, `signature.header: "X-Signature-256" is also set in headers or secretHeaders; the signature sets it, remove it there`],
      [{ secretHeaders: { "X-Signature-Timestamp": { name: "hooks", key: "key" } }, signature: sig({ timestampHeader: "X-Signature-Timestamp" }) }, `signature.timestampHeader: "X-Signature-Timestamp" is also set in headers or secretHeaders; the signature sets it, remove it there`],
      [{ signature: sig({ header: "X Signature" }) }, `signature.header: "X Signature" is not a valid HTTP header name`],
      [{ signature: sig({ timestampHeader: "X-Signature-256" }) }, `signature.timestampHeader: "X-Signature-256" is also set in headers or secretHeaders; the signature sets it, remove it there`],
    ];
    for (const [extra, message] of cases) {
      let err: unknown;
      try { await env.engine.poll(kind, newRun(), step(extra)); } catch (x) { err = x; }
      expect(err, message).to.be.instanceOf(InputError).with.property("message", message);
    }
  });
});
