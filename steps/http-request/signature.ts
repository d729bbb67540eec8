// http-request's `signature`: an HMAC of each attempt's exact body (or of "<time>.<body>"), in a
// header the receiver names, keyed with a Secret's value.
import { createHmac } from "node:crypto";
import { InputError } from "../../server/shared/errors.js";
import type { SecretKeyRef } from "../../server/kube/secrets.js";
import type { HttpRequestParameter } from "../generated/http-request.js";
import { checkHeader } from "./headers.js";

/** How each attempt is signed (parameter `signature`). */
export interface Signature {
  ref: SecretKeyRef;
  header: string;
  algorithm: "sha256" | "sha512";
  encoding: "hex" | "base64";
  prefix: string;
  timestampHeader?: string;
}

export function prepareSignature(s: NonNullable<HttpRequestParameter["signature"]>, taken: string[]): Signature {
  const names = [["signature.header", s.header], ...(s.timestampHeader !== undefined ? [["signature.timestampHeader", s.timestampHeader]] : [])] as const;
  for (const [field, name] of names) {
    checkHeader(name, field);
    const clash = taken.find((t) => t.toLowerCase() === name.toLowerCase());
    if (clash) throw new InputError(`${field}: "${name}" is also set in headers or secretHeaders; the signature sets it, remove it there`);
    taken = [...taken, name];
  }
  const prefix = s.prefix ?? `${s.algorithm}=`;
  if (/[\r\n\0]/.test(prefix)) throw new InputError("signature.prefix: must not contain line breaks");
  return { ref: s.secret, header: s.header, algorithm: s.algorithm, encoding: s.encoding, prefix, ...(s.timestampHeader !== undefined ? { timestampHeader: s.timestampHeader } : {}) };
}

/** The headers that sign one attempt: the HMAC of the body (or of "<time>.<body>") and the time. */
export function signatureHeaders(s: Signature, key: string, body: string | undefined, now: number): Record<string, string> {
  const time = String(Math.floor(now / 1000));
  const content = s.timestampHeader !== undefined ? `${time}.${body ?? ""}` : body ?? "";
  const digest = createHmac(s.algorithm, key).update(content, "utf8").digest(s.encoding);
  return { [s.header]: `${s.prefix}${digest}`, ...(s.timestampHeader !== undefined ? { [s.timestampHeader]: time } : {}) };
}
