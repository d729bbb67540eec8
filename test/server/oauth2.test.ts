// The OAuth2 token cache (server/outbound/oauth2.ts) against a real token endpoint on 127.0.0.1,
// with the cache's clock under the test's control: when a token is reused, refreshed and shared.
import { expect } from "chai";
import { createHttpClient } from "../../server/outbound/http-client.js";
import { TokenCache, TokenRefusedError, type ClientCredentials } from "../../server/outbound/oauth2.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";

describe("OAuth2 token cache", () => {
  let idp: Target;
  let n = 0;
  let lifetimeS: number | undefined = 600;
  const http = createHttpClient({ allow: ["127.0.0.1"] });
  before(async () => {
    idp = await startTarget(async (r, res) => {
      await new Promise((w) => setTimeout(w, 20)); // long enough for concurrent asks to overlap
      if (r.body.includes("token_type_test")) return reply(res, 200, { access_token: "mac-1", token_type: "mac" });
      reply(res, 200, { access_token: `t${++n}`, token_type: "bearer", ...(lifetimeS !== undefined ? { expires_in: lifetimeS } : {}) });
    });
  });
  after(async () => { await idp.close(); await http.close(); });
  const creds = (over: Partial<ClientCredentials> = {}): ClientCredentials => ({
    namespace: "tenant-a", tokenURL: new URL(`${idp.url}/token`), clientID: "c", clientSecret: "s", scopes: [], params: {}, authStyle: "basic", ...over,
  });

  it("reuses a token until shortly before it expires (60 s before, or half its lifetime if shorter), then fetches a new one", async () => {
    let now = 1_000_000;
    const cache = new TokenCache(http, {}, () => now);
    lifetimeS = 600;
    const a = await cache.token(creds());
    expect(a.expiresAt).to.equal(1_000_000 + 540_000);
    now += 539_000;
    expect((await cache.token(creds())).accessToken).to.equal(a.accessToken);
    now += 2_000;
    expect((await cache.token(creds())).accessToken).to.not.equal(a.accessToken);
    lifetimeS = 60; // a short-lived token is refreshed at half its life
    const short = await cache.token(creds({ clientID: "short" }));
    expect(short.expiresAt - now).to.equal(30_000);
    lifetimeS = undefined; // no expires_in: 5 minutes assumed
    const unknown = await cache.token(creds({ clientID: "unknown" }));
    expect(unknown.expiresAt - now).to.equal(240_000);
  });

  it("steps asking at once share one request; other namespaces or credentials get their own token", async () => {
    const cache = new TokenCache(http);
    lifetimeS = 600;
    const before = idp.requests.length;
    const same = await Promise.all([cache.token(creds()), cache.token(creds()), cache.token(creds())]);
    expect(new Set(same.map((t) => t.accessToken)).size).to.equal(1);
    expect(idp.requests.length - before).to.equal(1);
    const other = await cache.token(creds({ namespace: "tenant-b" }));
    const rotated = await cache.token(creds({ clientSecret: "s2" }));
    expect(new Set([same[0]!.accessToken, other.accessToken, rotated.accessToken]).size).to.equal(3);
  });

  it("drops a token the API refused, so the next ask fetches another", async () => {
    const cache = new TokenCache(http);
    const a = await cache.token(creds());
    cache.invalidate(creds(), a);
    expect((await cache.token(creds())).accessToken).to.not.equal(a.accessToken);
  });

  it("refuses a token type other than bearer", async () => {
    const cache = new TokenCache(http);
    let err: unknown;
    try { await cache.token(creds({ params: { token_type_test: "1" } })); } catch (x) { err = x; }
    expect(err).to.be.instanceOf(TokenRefusedError);
    expect((err as Error).message).to.equal(`token endpoint ${idp.url}/token issued a "mac" token; only bearer tokens are supported`);
  });
});
