// http-request's `oauth2` (client credentials): a real token endpoint and a real API on 127.0.0.1
// that check what they receive as an identity provider and a resource server would. Runs go
// through the engine (memory store, Secrets from a map), so redaction is the executor's own.
import { expect } from "chai";
import { InputError } from "../../server/shared/errors.js";
import { REDACTED } from "../../server/shared/redact.js";
import { httpRequest } from "../../steps/http-request/step.js";
import type { StepKind } from "../../server/contract/step.js";
import { reply, startTarget, type Recorded, type Target } from "../fixtures/target.js";
import { memoryEngine, newRun } from "../server/engine-fixture.js";

const kind = httpRequest as unknown as StepKind;
const CLIENT = "shop-deployer";
const SECRET = "cs_Zx81pQr4Tt09LmNb77Kd";

describe("http-request with oauth2 client credentials", () => {
  let idp: Target;
  let api: Target;
  let env: ReturnType<typeof memoryEngine>;
  let issued = 0;
  const valid = new Set<string>();
  /** What the token endpoint does next: "ok" issues a token, else the status to answer. */
  let idpMode: "ok" | 401 | 503 = "ok";

  const form = (r: Recorded) => Object.fromEntries(new URLSearchParams(r.body));
  before(async () => {
    idp = await startTarget((r, res) => {
      if (idpMode === 503) { idpMode = "ok"; return reply(res, 503, { error: "temporarily_unavailable" }); }
      const f = form(r);
      const basic = /^Basic (.+)$/.exec(String(r.headers.authorization ?? ""))?.[1];
      const [id, secret] = basic ? Buffer.from(basic, "base64").toString().split(":").map(decodeURIComponent) : [f.client_id, f.client_secret];
      if (idpMode === 401 || r.headers["content-type"] !== "application/x-www-form-urlencoded" || f.grant_type !== "client_credentials" || id !== CLIENT || secret !== SECRET) {
        return reply(res, 401, { error: "invalid_client", error_description: "Client authentication failed" });
      }
      const token = `at_${++issued}_${Math.random().toString(36).slice(2, 14)}`;
      valid.add(token);
      reply(res, 200, { access_token: token, token_type: "Bearer", expires_in: 3600, scope: f.scope });
    });
    // The resource server: the bearer must be a live token; echoes it (a careless API), which redaction must mask.
    api = await startTarget((r, res) => {
      const token = /^Bearer (.+)$/.exec(String(r.headers.authorization ?? ""))?.[1] ?? "";
      if (!valid.has(token)) return reply(res, 401, { error: "invalid_token" });
      reply(res, 200, { ok: true, authorization: r.headers.authorization });
    });
  });
  after(async () => { await idp.close(); await api.close(); });
  beforeEach(() => { env = memoryEngine({ secrets: { idp: { "client-secret": SECRET } } }); idpMode = "ok"; });
  afterEach(() => env.close());

  const oauth2 = (extra: Record<string, unknown> = {}) => ({ tokenURL: `${idp.url}/oauth2/token`, clientID: CLIENT, clientSecret: { name: "idp", key: "client-secret" }, authStyle: "basic", ...extra });
  const step = (extra: Record<string, unknown> = {}) => ({ url: `${api.url}/v1/releases`, method: "GET", timeout: "5s", retries: 2, backoff: "10ms", maxBackoff: "10ms", oauth2: oauth2(), ...extra });

  it("gets a token with HTTP Basic client authentication, sends it as a bearer token, and reuses it across runs until it expires", async () => {
    const tokensBefore = idp.requests.length;
    const first = await env.runToEnd(kind, step({ outputs: { echoed: "response.body.authorization" } }));
    expect(first.view.phase, first.view.message).to.equal("succeeded");
    const second = await env.runToEnd(kind, step());
    expect(second.view.phase, second.view.message).to.equal("succeeded");
    expect(idp.requests.length - tokensBefore, "one token for both runs").to.equal(1);
    const [a, b] = api.requests.slice(-2).map((r) => r.headers.authorization);
    expect(a).to.match(/^Bearer at_/).and.to.equal(b);
    // The API echoed the token: the output shows it masked, and the run's record never holds it.
    expect(first.view.outputs.echoed).to.equal(`Bearer ${REDACTED}`);
    expect(JSON.stringify(first.record)).to.not.include(a!.slice(7));
    expect(JSON.stringify(first.record)).to.not.include(SECRET);
  });

  it("client_secret in the form (authStyle body), with scopes and extra parameters", async () => {
    const { view } = await env.runToEnd(kind, step({ oauth2: oauth2({ authStyle: "body", scopes: ["releases:write", "releases:read"], params: { audience: "https://api.example.com" } }) }));
    expect(view.phase, view.message).to.equal("succeeded");
    const req = idp.requests.at(-1)!;
    expect(req.headers.authorization).to.equal(undefined);
    expect(form(req)).to.deep.equal({ grant_type: "client_credentials", audience: "https://api.example.com", scope: "releases:write releases:read", client_id: CLIENT, client_secret: SECRET });
  });

  it("a token the API refuses (revoked) is renewed once and the request sent again, costing no attempt", async () => {
    await env.runToEnd(kind, step());
    valid.clear(); // the provider revoked every token; the cached one is stale
    const issuedBefore = issued;
    const { view, record } = await env.runToEnd(kind, step({ retries: 0 }));
    expect(view.phase, view.message).to.equal("succeeded");
    expect(issued - issuedBefore).to.equal(1);
    expect(api.requests.slice(-2).map((r) => r.headers.authorization === api.requests.at(-1)!.headers.authorization)).to.deep.equal([false, true]);
    expect(record.attempts).to.equal(1);
  });

  it("refused client credentials fail the step at once with the provider's error, and nothing reaches the API", async () => {
    const apiBefore = api.requests.length;
    idpMode = 401;
    const { view } = await env.runToEnd(kind, step({ oauth2: oauth2({ clientID: "someone-else" }) }));
    expect(view).to.deep.include({ phase: "failed", message: `GET ${api.url}/v1/releases: oauth2: token endpoint ${idp.url}/oauth2/token refused the client credentials (invalid_client: Client authentication failed); nothing was sent` });
    expect(api.requests.length).to.equal(apiBefore);
  });

  it("a token endpoint having a bad moment (503) is retried with the step's backoff", async () => {
    idpMode = 503;
    const { view } = await env.runToEnd(kind, step({ oauth2: oauth2({ scopes: ["retry"] }) }));
    expect(view.phase, view.message).to.equal("succeeded");
  });

  it("waits for a missing client-secret Secret, then fails naming it", async () => {
    const { view } = await env.runToEnd(kind, step({ oauth2: oauth2({ clientSecret: { name: "absent", key: "client-secret" } }) }));
    expect(view).to.deep.include({ phase: "failed", message: "Secret tenant/absent not found, needed for the OAuth2 client secret; gave up after 1s" });
  });

  it("refuses, before anything runs: a plain-http token endpoint off loopback, an Authorization header of its own, reserved form fields", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [step({ oauth2: oauth2({ tokenURL: "http://login.example.com/oauth2/token" }) }), `oauth2.tokenURL: "http://login.example.com/oauth2/token" would send the client secret unencrypted; use https:// (http:// is accepted only for loopback addresses)`],
      [step({ oauth2: oauth2({ tokenURL: "login.example.com" }) }), `oauth2.tokenURL: "login.example.com" is not a valid URL; use the token endpoint's https:// URL`],
      [step({ headers: { authorization: "Bearer mine" } }), "oauth2: the step sends the token as the Authorization header; remove Authorization from headers and secretHeaders"],
      [step({ oauth2: oauth2({ params: { scope: "x" } }) }), "oauth2.params.scope: the step sets it itself; list scopes in oauth2.scopes"],
      [step({ oauth2: oauth2({ params: { client_secret: "x" } }) }), "oauth2.params.client_secret: the step sets it itself"],
    ];
    for (const [parameter, message] of cases) {
      let err: unknown;
      try { await env.engine.poll(kind, newRun(), parameter); } catch (x) { err = x; }
      expect(err, message).to.be.instanceOf(InputError).with.property("message", message);
    }
  });
});
