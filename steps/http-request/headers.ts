// Header names a step may set: HTTP tokens, never the connection-level headers undici sets.
import { InputError } from "../../server/shared/errors.js";

/** An HTTP token (RFC 9110 §5.6.2): what a header name may be. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * Headers about the connection, which undici sets from the URL and body. Host above all: an
 * override would send a request to an allowed address in the name of another host (a proxy or
 * virtual host then forwards it where the outbound policy would have refused).
 */
const CONNECTION_HEADERS = /^(host|connection|keep-alive|transfer-encoding|content-length|upgrade|te|trailer|expect|proxy-.*)$/i;

/** Refuses, naming `field`, a header name that is not a token or that the executor sets itself. */
export function checkHeader(name: string, field: string) {
  if (!TOKEN.test(name)) throw new InputError(`${field}: "${name}" is not a valid HTTP header name`);
  if (CONNECTION_HEADERS.test(name)) {
    throw new InputError(`${field}: the executor sets the connection-level header "${name}" itself; remove it${/^host$/i.test(name) ? " and put the host in url" : ""}`);
  }
}
