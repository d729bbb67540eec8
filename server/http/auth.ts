// Caller authentication. Each namespace has its own key, derived from the addon's token, which
// the executor writes into Secret `step-executor` of that namespace (server/http/namespace-keys.ts);
// definitions read it as the Application's identity and sign the exact body with it. A request
// is accepted only when its signature matches the key of the namespace its body names, so a
// tenant who can read its own namespace's key cannot speak for another namespace (SECURITY.md).
// The token itself as a bearer (direct clients) is off unless --bearer-auth is on. Comparisons
// are constant-time; several tokens may be valid at once (current, previous) for rotation.
import { createHmac, timingSafeEqual } from "node:crypto";
import { AuthError } from "../shared/errors.js";

export const SIGNATURE_HEADER = "x-step-executor-signature";

export function sign(key: string, body: Buffer | string): string {
  return "sha256=" + createHmac("sha256", key).update(body).digest("hex");
}

/** The key of one namespace: only its Secret holds it, and it proves nothing for another namespace. */
export function namespaceKey(token: string, namespace: string): string {
  return createHmac("sha256", token).update(`step-executor namespace key v1\n${namespace}`).digest("hex");
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface Credentials {
  authorization?: string | undefined;
  signature?: string | undefined;
}

/**
 * Throws AuthError unless the request carries a signature made with the key of `namespace` (the
 * namespace the body claims), or — when `allowBearer` — the token as a bearer.
 */
export function authenticate(tokens: readonly string[], headers: Credentials, body: Buffer, namespace: string | undefined, allowBearer = false): void {
  const { authorization, signature } = headers;
  let ok = false;
  for (const token of tokens) {
    if (signature !== undefined && namespace !== undefined && equal(signature, sign(namespaceKey(token, namespace), body))) ok = true;
    if (allowBearer && authorization !== undefined && equal(authorization, `Bearer ${token}`)) ok = true;
  }
  if (!ok) {
    const bearer = authorization !== undefined && signature === undefined && !allowBearer ? " (bearer tokens are not accepted unless the executor runs with --bearer-auth on)" : "";
    throw new AuthError(`unauthenticated: the request signature is missing or not made with the key of the namespace it names${bearer}`);
  }
}
