// http-request's `tls`: a CA bundle to trust instead of the public CAs and a client certificate
// (mutual TLS), read when the step runs and checked; and what a refused handshake means.
import { X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import { describeError, InputError, TerminalError } from "../../server/shared/errors.js";
import type { SecretKeyRef } from "../../server/kube/secrets.js";
import type { TlsMaterial } from "../../server/outbound/http-client.js";
import type { StepContext } from "../../server/contract/step.js";
import type { HttpRequestParameter } from "../generated/http-request.js";
import { waitForValue } from "../../server/kube/wait-for-input.js";
import { configMapKey } from "./lookups.js";

/** Where the request's TLS material comes from (parameter `tls`), read when the step runs. */
export interface TlsRefs {
  ca?: { configMap: SecretKeyRef } | { secret: SecretKeyRef };
  clientCertificateSecret?: string;
}

export function prepareTls(t: NonNullable<HttpRequestParameter["tls"]>, url: URL): TlsRefs {
  if (url.protocol !== "https:") throw new InputError("tls: the url is http://; TLS settings apply to https:// only");
  const refs: TlsRefs = {};
  if (t.ca) {
    const { configMapKeyRef: cm, secretKeyRef: secret } = t.ca;
    if (!cm === !secret) throw new InputError("tls.ca: set exactly one of configMapKeyRef or secretKeyRef");
    refs.ca = cm ? { configMap: cm } : { secret: secret! };
  }
  if (t.clientCertificateSecret !== undefined) refs.clientCertificateSecret = t.clientCertificateSecret;
  return refs;
}

/** Why `pem` is not a bundle of PEM certificates, or undefined (node:tls takes any text as a CA and trusts nothing). */
export function caBundleProblem(pem: string): string | undefined {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) return "no -----BEGIN CERTIFICATE----- block";
  for (const [i, block] of blocks.entries()) {
    try { new X509Certificate(block); } catch (err) { return `certificate ${i + 1}: ${describeError(err)}`; }
  }
  return undefined;
}

/** The TLS material of the request, checked: a CA bundle and a client certificate that node:tls accepts. */
export async function resolveTls(ctx: StepContext, t: TlsRefs, deadline: number): Promise<TlsMaterial> {
  const material: TlsMaterial = {};
  if (t.ca) {
    const fromConfigMap = "configMap" in t.ca;
    const ref = "configMap" in t.ca ? t.ca.configMap : t.ca.secret;
    const field = fromConfigMap ? "tls.ca.configMapKeyRef" : "tls.ca.secretKeyRef";
    const where = `${fromConfigMap ? "ConfigMap" : "Secret"} ${ctx.run.namespace}/${ref.name} key "${ref.key}"`;
    const get = fromConfigMap ? () => configMapKey(ctx, ref) : () => ctx.secrets.resolve(ref);
    material.ca = await waitForValue(ctx, get, { field, what: "the CA bundle" }, deadline);
    const problem = caBundleProblem(material.ca);
    if (problem) throw new TerminalError(`${field}: ${where} is not a PEM certificate bundle (${problem})`);
  }
  if (t.clientCertificateSecret !== undefined) {
    const name = t.clientCertificateSecret;
    const use = { field: "tls.clientCertificateSecret", what: "the client certificate" };
    material.cert = await waitForValue(ctx, () => ctx.secrets.resolve({ name, key: "tls.crt" }), use, deadline);
    material.key = await waitForValue(ctx, () => ctx.secrets.resolve({ name, key: "tls.key" }), use, deadline);
    try { createSecureContext({ cert: material.cert, key: material.key }); } catch (err) {
      throw new TerminalError(`tls.clientCertificateSecret: Secret ${ctx.run.namespace}/${name}: tls.crt and tls.key are not a PEM certificate and its private key (${describeError(err)})`);
    }
  }
  return material;
}

/** Node's codes for a server certificate it does not trust (node:tls, OpenSSL's verify errors). */
const UNTRUSTED = /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** Why the TLS handshake failed for good (an untrusted server, a refused client certificate), or undefined. */
export function tlsRefusal(err: unknown, tls: TlsRefs | undefined): string | undefined {
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  const code = e.code ?? e.cause?.code ?? "";
  const detail = describeError(err);
  if (UNTRUSTED.test(code)) {
    return `the server's certificate is not trusted (${code}: ${detail}); ${tls?.ca ? "tls.ca must hold the CA that signed it, and the url's host must be one of its names" : "if a private CA signed it, set tls.ca to that CA's certificate"}`;
  }
  if (/ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED)/.test(code)) {
    return `the server refused the TLS handshake (${code}); ${tls?.clientCertificateSecret ? "it does not accept the client certificate of tls.clientCertificateSecret" : "it may require a client certificate: set tls.clientCertificateSecret"}`;
  }
  return undefined;
}

/**
 * A TLS 1.3 server refuses a client certificate after the client finished its handshake: the
 * client sees only the connection closed. On https, say what that may mean.
 */
export function closedAfterHandshake(err: unknown, url: URL, tls: TlsRefs | undefined): string {
  const e = err as { code?: string; cause?: { code?: string } };
  if (url.protocol !== "https:" || (e.code ?? e.cause?.code) !== "UND_ERR_SOCKET") return "";
  return tls?.clientCertificateSecret
    ? " (if the server checks client certificates, it may not accept the one of tls.clientCertificateSecret)"
    : " (if the server requires a client certificate, set tls.clientCertificateSecret)";
}
