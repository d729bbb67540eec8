// http-request's `oauth2` parameter, checked when the step starts; the tokens themselves come
// from the executor's shared cache (server/outbound/oauth2.ts).
import { InputError } from "../../server/shared/errors.js";
import type { SecretKeyRef } from "../../server/kube/secrets.js";
import { isLoopbackHost } from "../../server/outbound/outbound-policy.js";
import type { HttpRequestParameter } from "../generated/http-request.js";

/** OAuth2 client credentials (parameter `oauth2`); the secret is read when the step runs. */
export interface OAuth2 {
  tokenURL: URL;
  clientID: string;
  clientSecret: SecretKeyRef;
  scopes: string[];
  params: Record<string, string>;
  authStyle: "basic" | "body";
}

/** Form fields the token request sets itself. */
const OAUTH2_RESERVED = /^(grant_type|scope|client_id|client_secret)$/;

export function prepareOAuth2(o: NonNullable<HttpRequestParameter["oauth2"]>, headerNames: string[]): OAuth2 {
  let tokenURL: URL;
  try {
    tokenURL = new URL(o.tokenURL);
  } catch {
    throw new InputError(`oauth2.tokenURL: "${o.tokenURL}" is not a valid URL; use the token endpoint's https:// URL`);
  }
  if (tokenURL.protocol !== "https:" && tokenURL.protocol !== "http:") throw new InputError(`oauth2.tokenURL: scheme "${tokenURL.protocol.slice(0, -1)}" is not supported; use https://`);
  // The client secret travels to it: in clear only to this host itself (a local proxy, tests).
  if (tokenURL.protocol === "http:" && !isLoopbackHost(tokenURL.hostname)) {
    throw new InputError(`oauth2.tokenURL: "${tokenURL.origin}${tokenURL.pathname}" would send the client secret unencrypted; use https:// (http:// is accepted only for loopback addresses)`);
  }
  if (headerNames.some((h) => h.toLowerCase() === "authorization")) throw new InputError("oauth2: the step sends the token as the Authorization header; remove Authorization from headers and secretHeaders");
  if (o.clientID === "") throw new InputError("oauth2.clientID: must not be empty");
  const reserved = Object.keys(o.params ?? {}).find((k) => OAUTH2_RESERVED.test(k));
  if (reserved) throw new InputError(`oauth2.params.${reserved}: the step sets it itself${reserved === "scope" ? "; list scopes in oauth2.scopes" : ""}`);
  return { tokenURL, clientID: o.clientID, clientSecret: o.clientSecret, scopes: o.scopes ?? [], params: o.params ?? {}, authStyle: o.authStyle };
}
