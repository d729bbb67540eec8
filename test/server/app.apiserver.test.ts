import { expect } from "chai";
import { namespaceKey, sign } from "../../server/http/auth.js";
import { signedHeaders, startExecutor, TEST_TOKEN, type Executor } from "../fixtures/executor.js";

describe("executor HTTP surface", () => {
  let executor: Executor;
  before(async () => { executor = await startExecutor({ maxBodyBytes: 4096 }); });
  after(async () => { await executor.close(); });

  const signed = (body: string) => signedHeaders(body);

  it("answers /healthz and /readyz", async () => {
    for (const path of ["/healthz", "/readyz"]) expect((await fetch(executor.url + path)).status).to.equal(200);
  });

  it("rejects an unsigned request with 401 and no details", async () => {
    const a = await executor.post("/v1/steps/http-request", "{}");
    expect(a.status).to.equal(401);
    expect(a.body).to.deep.equal({ phase: "failed", message: "unauthenticated: the request signature is missing or not made with the key of the namespace it names", outputs: {} });
  });

  it("refuses the bearer token unless --bearer-auth is on, and accepts it then", async () => {
    const refused = await executor.post("/v1/steps/nope", "{}", { authorization: `Bearer ${TEST_TOKEN}` });
    expect(refused.status).to.equal(401);
    expect(refused.body.message).to.contain("--bearer-auth on");
    const direct = await startExecutor({ bearerAuth: true });
    try {
      expect((await direct.post("/v1/steps/nope", "{}", { authorization: `Bearer ${TEST_TOKEN}` })).status).to.equal(404);
    } finally {
      await direct.close();
    }
  });

  it("a body signed with one namespace's key but naming another namespace is refused", async () => {
    const body = JSON.stringify({ run: { namespace: "tenant-b", application: "a", step: "s", session: "x" }, parameter: {} });
    const a = await executor.post("/v1/steps/http-request", body, { "x-step-executor-signature": sign(namespaceKey(TEST_TOKEN, "tenant-a"), body) });
    expect(a.status).to.equal(401);
  });

  it("answers 404 for an unknown kind, listing the known ones", async () => {
    const a = await executor.post("/v1/steps/send-email", "{}", signed("{}"));
    expect(a.status).to.equal(404);
    expect(a.body.message).to.equal('unknown step kind "send-email"; known kinds: http-request, read-object-and-wait, apply-and-wait, github-actions');
  });

  const bad: [string, string, number, RegExp][] = [
    ["malformed JSON", "{not json", 422, /^the request body is not valid JSON: /],
    ["a body that is not an object", "[1,2]", 422, /^request: must be an object/],
    ["a missing run identity", JSON.stringify({ parameter: {} }), 422, /^request.run: required field is missing/],
    ["an incomplete run identity", JSON.stringify({ run: { namespace: "a", application: "b", step: "c" }, parameter: {} }), 422, /^request.run.session: required field is missing/],
    ["an empty namespace", JSON.stringify({ run: { namespace: "", application: "b", step: "c", session: "d" }, parameter: {} }), 422, /^request.run.namespace: must match pattern /],
    ["a namespace that is a path", JSON.stringify({ run: { namespace: "tenant-b/secrets/x", application: "b", step: "c", session: "d" }, parameter: {} }), 422, /^request.run.namespace: must match pattern /],
    ["an unknown envelope field", JSON.stringify({ run: { namespace: "a", application: "b", step: "c", session: "d" }, parameter: {}, extra: 1 }), 422, /^request: unknown field "extra"/],
    ["bad UTF-8", "\u00ff\u00fe", 422, /^the request body is not valid JSON/],
    ["a body over the limit", JSON.stringify({ pad: "x".repeat(10_000) }), 413, /larger than 4096 bytes/],
  ];
  for (const [name, body, status, message] of bad) {
    it(`answers ${status} for ${name}`, async () => {
      const a = await executor.post("/v1/steps/http-request", body, signed(body));
      expect(a.status).to.equal(status);
      expect(a.body.phase).to.equal("failed");
      expect(a.body.message).to.match(message);
      expect(a.body.message).not.to.match(/\n\s+at /); // no stack trace
    });
  }

  it("answers 404 as JSON for unknown paths", async () => {
    const res = await fetch(executor.url + "/v2/whatever");
    expect(res.status).to.equal(404);
    expect(((await res.json()) as { message: string }).message).to.match(/no such endpoint/);
  });

  describe("KubeVela's duplicate sessions after a restart (server/runs/sessions.ts)", () => {
    const first = { namespace: "team-a", application: "web", step: "purge", session: "S1" };
    const second = { ...first, session: "S2" };
    const parameter = { url: "http://127.0.0.1:9/purge", method: "POST" };
    const twoSessions = async (x: Executor) => {
      for (const run of [first, second]) {
        const a = await x.poll("http-request", parameter, { ...run, revision: "web-v1" } as never);
        expect(a.status).to.equal(200);
      }
      return [await x.store.get(first), await x.store.get(second)];
    };

    it("without session confirmation, a second session moments after a first one polled once is the same run", async () => {
      const [a, b] = await twoSessions(executor);
      expect(a?.run.session).to.equal("S1");
      expect(b, "S2 maps to S1: no record of its own").to.equal(undefined);
    });

    it("with session confirmation, each session is its own pending run: the one KubeVela stored is confirmed, whichever replica it reaches", async () => {
      const confirming = await startExecutor({ confirmSessions: true });
      try {
        const [a, b] = await twoSessions(confirming);
        expect(a).to.include({ attempts: 0, holder: "" });
        expect(b).to.include({ attempts: 0, holder: "" });
        expect(b?.run.session).to.equal("S2");
      } finally {
        await confirming.close();
      }
    });
  });
});
