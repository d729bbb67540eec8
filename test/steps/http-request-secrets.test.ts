// A target that echoes the secretHeaders it was sent (a real server on 127.0.0.1), and a tenant
// who writes outputs and conditions to get the secret out: through the engine (memory store,
// Secrets from a map), so the run's redaction is the one the executor uses.
import { expect } from "chai";
import { InputError } from "../../server/shared/errors.js";
import { REDACTED } from "../../server/shared/redact.js";
import { httpRequest } from "../../steps/http-request/step.js";
import type { StepKind } from "../../server/contract/step.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";
import { memoryEngine, newRun } from "../server/engine-fixture.js";

const SECRET = "Bearer tok_5fG7hJ2kL9mN3pQ8rS4tU6vW1xY0zA2b";
const kind = httpRequest as unknown as StepKind;

/** Runs of 8 characters of the secret still in the value's strings, joined (case-insensitively). */
function leaks(value: unknown): string[] {
  const strings = (v: unknown): string => typeof v === "string" ? v : Array.isArray(v) ? v.map(strings).join("")
    : v && typeof v === "object" ? Object.entries(v).map(([k, x]) => k + strings(x)).join("") : "";
  const text = strings(value).toLowerCase();
  const forms = [SECRET, Buffer.from(SECRET).toString("hex"), Buffer.from(SECRET).toString("base64")];
  return forms.flatMap((f) => Array.from({ length: f.length - 7 }, (_, i) => f.slice(i, i + 8).toLowerCase())).filter((run) => text.includes(run));
}

describe("http-request with secretHeaders: a target echoing them", () => {
  let echo: Target;
  let env: ReturnType<typeof memoryEngine>;
  before(async () => {
    // Status from the path; the body quotes the Authorization header at offset 170 (cut by a 200-character excerpt).
    echo = await startTarget((req, res) => {
      const status = Number(/\/(\d{3})/.exec(req.path)?.[1] ?? 200);
      if (req.path.includes("text")) return reply(res, status, `${"x".repeat(170)}${req.headers.authorization} trailing`);
      reply(res, status, { authorization: req.headers.authorization, escaped: "" });
    });
  });
  beforeEach(() => { env = memoryEngine({ secrets: { cdn: { auth: SECRET } } }); });
  afterEach(() => env.close());
  after(() => echo.close());
  const step = (path: string, extra: Record<string, unknown> = {}) => ({
    url: `${echo.url}${path}`, method: "GET", timeout: "5s", retries: 0, backoff: "10ms", maxBackoff: "10ms",
    secretHeaders: { Authorization: { name: "cdn", key: "auth" } }, ...extra,
  });

  it("outputs built from the echo (substring, upperAscii, bytes, split, %x, replace) carry no part of the secret", async () => {
    const outputs = {
      prefix: "response.body.authorization.substring(0, 9)",
      upper: "response.body.authorization.upperAscii()",
      b64: "bytes(response.body.authorization)",
      chars: "response.body.authorization.split('')",
      hex: "'%x'.format([response.body.authorization])",
      replaced: "response.body.authorization.replace('5', '_')",
    };
    const { view, record } = await env.runToEnd(kind, step("/200", { outputs }));
    expect(view.phase, view.message).to.equal("succeeded");
    expect(echo.requests.at(-1)!.headers.authorization).to.equal(SECRET); // it was sent
    expect(leaks(view.outputs), JSON.stringify(view.outputs)).to.deep.equal([]);
    expect(leaks(record), JSON.stringify(record)).to.deep.equal([]);
    expect(view.outputs.prefix).to.equal(REDACTED.substring(0, 9)); // CEL saw the echo redacted
  });

  it("a failureCondition cannot test guesses of the secret (startsWith on the echo)", async () => {
    const right = await env.runToEnd(kind, step("/200", { failureCondition: "response.body.authorization.startsWith('Bearer tok_5f')" }));
    const wrong = await env.runToEnd(kind, step("/200", { failureCondition: "response.body.authorization.startsWith('Bearer tok_6')" }));
    expect(right.view.phase).to.equal("succeeded");
    expect(wrong.view.phase).to.equal("succeeded");
  });

  it("a failure message withholds the response body of a request that carried secretHeaders", async () => {
    const { view, record } = await env.runToEnd(kind, step("/400/text"));
    expect(view.phase).to.equal("failed");
    expect(view.message).to.equal(`GET ${echo.url}/400/text answered 400 Bad Request (response body withheld: the request carried secretHeaders; the executor flag --body-excerpt-with-secrets quotes it)`);
    expect(leaks(record)).to.deep.equal([]);
  });

  it("with --body-excerpt-with-secrets, the excerpt is redacted before it is cut: no part of a secret at the cut", async () => {
    const quoting = memoryEngine({ secrets: { cdn: { auth: SECRET } }, tuning: { bodyExcerptWithSecrets: true } });
    try {
      const { view } = await quoting.runToEnd(kind, step("/400/text"));
      expect(view.message).to.equal(`GET ${echo.url}/400/text answered 400 Bad Request: ${"x".repeat(170)}${REDACTED} trailing`);
    } finally {
      await quoting.close();
    }
  });

  it("without secretHeaders the body is quoted as before", async () => {
    const { view } = await env.runToEnd(kind, step("/400/text", { secretHeaders: undefined, headers: { Authorization: "none" } }));
    expect(view.message).to.match(/answered 400 Bad Request: x{170}none trailing$/);
  });

  it("refuses Host and other connection-level headers, naming the field", () => {
    const prepare = (extra: Record<string, unknown>) => () => httpRequest.prepare(step("/200", extra) as never, newRun());
    expect(prepare({ headers: { Host: "169.254.169.254" } })).to.throw(InputError, /^headers\.Host: the executor sets the connection-level header "Host" itself; remove it and put the host in url$/);
    for (const name of ["Connection", "transfer-encoding", "Content-Length", "Upgrade", "TE", "Proxy-Authorization", "Keep-Alive"]) {
      expect(prepare({ headers: { [name]: "x" } }), name).to.throw(InputError, new RegExp(`^headers\\.${name}: the executor sets the connection-level header "${name}" itself; remove it$`));
    }
    expect(prepare({ secretHeaders: { host: { name: "cdn", key: "auth" } } })).to.throw(InputError, /^secretHeaders\.host: /);
    expect(prepare({ headers: { "X-Host": "a", Authorization: "b" } })).not.to.throw();
  });
});
