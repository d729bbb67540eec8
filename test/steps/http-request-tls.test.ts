// http-request's `tls`: a private CA to trust (from a ConfigMap or a Secret) and a client
// certificate (mutual TLS) from a kubernetes.io/tls Secret, against real HTTPS servers on
// 127.0.0.1 with certificates made for the test. Through the engine (memory store), so waiting for
// what is missing, redaction and the run's record are the executor's own.
import { expect } from "chai";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { InputError } from "../../server/shared/errors.js";
import type { KubeReader } from "../../server/kube/kube.js";
import type { StepKind } from "../../server/contract/step.js";
import { httpRequest } from "../../steps/http-request/step.js";
import { makePki, type Pki } from "../fixtures/pki.js";
import { memoryEngine, newRun, secretsOnly } from "../server/engine-fixture.js";

const kind = httpRequest as unknown as StepKind;

interface Https { url: string; clients: string[]; close(): Promise<void> }

/** An HTTPS server on 127.0.0.1 that answers 200 with the client certificate's CN it saw (if any). */
async function startHttps(pki: Pki, mutual: boolean): Promise<Https> {
  const clients: string[] = [];
  const server: Server = createServer({ key: pki.serverKey, cert: pki.serverCert, ...(mutual ? { ca: pki.ca, requestCert: true, rejectUnauthorized: true } : {}) }, (req, res) => {
    const cn = (req.socket as TLSSocket).getPeerCertificate?.()?.subject?.CN ?? "";
    clients.push(String(cn));
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ ok: true, client: cn }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `https://127.0.0.1:${port}`, clients, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

describe("http-request with tls (private CA, mutual TLS)", function () {
  this.timeout(30_000);
  let pki: Pki;
  let plain: Https;
  let mutual: Https;
  let env: ReturnType<typeof memoryEngine>;
  const configMaps: Record<string, Record<string, string>> = {};

  before(async () => {
    pki = makePki();
    plain = await startHttps(pki, false);
    mutual = await startHttps(pki, true);
    Object.assign(configMaps, { "internal-ca": { "ca.crt": pki.ca }, "wrong-ca": { "ca.crt": pki.otherCa }, "not-pem": { "ca.crt": "hello" } });
  });
  after(async () => { await plain?.close(); await mutual?.close(); });
  beforeEach(() => {
    const secrets = {
      "ca-secret": { "ca.crt": pki.ca },
      "client-tls": { "tls.crt": pki.clientCert, "tls.key": pki.clientKey },
      "stranger-tls": { "tls.crt": pki.strangerCert, "tls.key": pki.strangerKey },
      "mismatched-tls": { "tls.crt": pki.clientCert, "tls.key": pki.strangerKey },
    };
    const kube: KubeReader = {
      ...secretsOnly(secrets),
      readObject: async (ref) => ref.kind === "ConfigMap" && configMaps[ref.name] ? { apiVersion: "v1", kind: "ConfigMap", metadata: { name: ref.name, namespace: ref.namespace }, data: configMaps[ref.name] } : undefined,
    };
    env = memoryEngine({ kube });
  });
  afterEach(() => env.close());
  const step = (url: string, tls?: Record<string, unknown>) => ({ url: `${url}/status`, method: "GET", timeout: "5s", retries: 2, backoff: "10ms", maxBackoff: "10ms", ...(tls ? { tls } : {}) });
  const caFrom = (name: string) => ({ ca: { configMapKeyRef: { name, key: "ca.crt" } } });

  it("trusts a private CA from a ConfigMap (and from a Secret)", async () => {
    const viaConfigMap = await env.runToEnd(kind, step(plain.url, caFrom("internal-ca")));
    expect(viaConfigMap.view.phase, viaConfigMap.view.message).to.equal("succeeded");
    const viaSecret = await env.runToEnd(kind, step(plain.url, { ca: { secretKeyRef: { name: "ca-secret", key: "ca.crt" } } }));
    expect(viaSecret.view.phase, viaSecret.view.message).to.equal("succeeded");
  });

  it("without tls.ca, a privately signed server fails at once (not retried), saying what to set", async () => {
    const before = plain.clients.length;
    const { view } = await env.runToEnd(kind, step(plain.url));
    expect(view.phase).to.equal("failed");
    expect(view.message).to.match(new RegExp(`^GET ${plain.url}/status: the server's certificate is not trusted \\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY): .*\\); if a private CA signed it, set tls.ca to that CA's certificate$`));
    expect(plain.clients.length).to.equal(before);
  });

  it("a CA that did not sign the server's certificate fails, naming tls.ca", async () => {
    const { view } = await env.runToEnd(kind, step(plain.url, caFrom("wrong-ca")));
    expect(view.phase).to.equal("failed");
    expect(view.message).to.match(/the server's certificate is not trusted \(.*\); tls.ca must hold the CA that signed it, and the url's host must be one of its names$/);
  });

  it("mutual TLS: presents the client certificate of a kubernetes.io/tls Secret", async () => {
    const { view, record } = await env.runToEnd(kind, step(mutual.url, { ...caFrom("internal-ca"), clientCertificateSecret: "client-tls" }));
    expect(view.phase, view.message).to.equal("succeeded");
    expect(mutual.clients.at(-1)).to.equal("client");
    // The private key is registered with the run's redaction: never in the run's record.
    const keyBody = pki.clientKey.split("\n").slice(1, -2).join("");
    expect(JSON.stringify(record)).to.not.include(keyBody.slice(0, 24));
  });

  it("mutual TLS refused (no client certificate, or one the server does not trust): the message says what to check", async () => {
    // A TLS 1.3 server refuses the certificate after the client's handshake: the client sees the
    // connection closed (retried like any network error), so the message names the likely cause.
    const none = await env.runToEnd(kind, step(mutual.url, caFrom("internal-ca")));
    expect(none.view.phase).to.equal("failed");
    expect(none.view.message).to.match(/ \(if the server requires a client certificate, set tls\.clientCertificateSecret\)$/);
    const stranger = await env.runToEnd(kind, step(mutual.url, { ...caFrom("internal-ca"), clientCertificateSecret: "stranger-tls" }));
    expect(stranger.view.phase).to.equal("failed");
    expect(stranger.view.message).to.match(/ \(if the server checks client certificates, it may not accept the one of tls\.clientCertificateSecret\)$/);
    expect(mutual.clients, "the server answered neither").to.not.include("stranger");
  });

  it("material that is not usable fails with the field and what is wrong; a missing ConfigMap is waited for, then named", async () => {
    const notPem = await env.runToEnd(kind, step(plain.url, caFrom("not-pem")));
    expect(notPem.view.message).to.match(/^tls\.ca\.configMapKeyRef: ConfigMap tenant\/not-pem key "ca\.crt" is not a PEM certificate bundle \(.+\)$/);
    const mismatched = await env.runToEnd(kind, step(mutual.url, { ...caFrom("internal-ca"), clientCertificateSecret: "mismatched-tls" }));
    expect(mismatched.view.message).to.match(/^tls\.clientCertificateSecret: Secret tenant\/mismatched-tls: tls\.crt and tls\.key are not a PEM certificate and its private key \(.+\)$/);
    const absent = await env.runToEnd(kind, step(plain.url, caFrom("absent")));
    expect(absent.view).to.deep.include({ phase: "failed", message: "ConfigMap tenant/absent not found, needed for the CA bundle; gave up after 1s" });
  });

  it("refuses tls on an http:// url, and a ca naming both a ConfigMap and a Secret", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...step(plain.url.replace("https:", "http:"), caFrom("internal-ca")) }, "tls: the url is http://; TLS settings apply to https:// only"],
      [step(plain.url, { ca: { configMapKeyRef: { name: "a", key: "b" }, secretKeyRef: { name: "a", key: "b" } } }), "tls.ca: set exactly one of configMapKeyRef or secretKeyRef"],
      [step(plain.url, { ca: {} }), "tls.ca: set exactly one of configMapKeyRef or secretKeyRef"],
    ];
    for (const [parameter, message] of cases) {
      let err: unknown;
      try { await env.engine.poll(kind, newRun(), parameter); } catch (x) { err = x; }
      expect(err, message).to.be.instanceOf(InputError).with.property("message", message);
    }
  });
});
