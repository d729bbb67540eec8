// Caller authentication. Definitions sign the exact body with HMAC-SHA256 keyed by the shared
// token (a leaked signature is worthless for any other body); direct clients may send the
// token as a bearer. Both comparisons are constant-time. Several tokens may be valid at once
// (current and previous) so the token can be rotated without downtime.
import { createHmac, timingSafeEqual } from "node:crypto";
import { AuthError } from "./errors.js";

export const SIGNATURE_HEADER = "x-step-executor-signature";

export function sign(token: string, body: Buffer | string): string {
  return "sha256=" + createHmac("sha256", token).update(body).digest("hex");
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Throws AuthError unless the request carries a valid signature or bearer token. */
export function authenticate(tokens: readonly string[], headers: { authorization?: string; signature?: string }, body: Buffer): void {
  const { authorization, signature } = headers;
  let ok = false;
  for (const token of tokens) {
    if (signature !== undefined && equal(signature, sign(token, body))) ok = true;
    if (authorization !== undefined && equal(authorization, `Bearer ${token}`)) ok = true;
  }
  if (!ok) throw new AuthError("unauthenticated: the request signature or bearer token is missing or wrong");
}
