// 10,000 malformed or hostile requests: the executor stays up, answers each with a 4xx and a
// clear message, leaks no stack trace, pollutes no prototype and keeps its memory bounded.
import { expect } from "chai";
import { signedHeaders, startExecutor, type Executor } from "../fixtures/executor.js";

const COUNT = 10_000;
const CONCURRENCY = 16;

/** Deterministic PRNG (mulberry32), so a failure can be replayed from its index. */
function rng(seed: number) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const run = { namespace: "default", application: "fuzz", step: "s", session: "x" };
const nest = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** Each generator returns [path, body]; every body is invalid in at least one way. */
const generators: ((r: () => number, i: number) => [string, string | Buffer])[] = [
  (r) => ["/v1/steps/http-request", JSON.stringify({ run, parameter: { url: "http://127.0.0.1:9/" } }).slice(0, 1 + Math.floor(r() * 60))],
  (r) => ["/v1/steps/http-request", Buffer.from(Array.from({ length: 1 + Math.floor(r() * 64) }, () => Math.floor(r() * 256)))],
  () => ["/v1/steps/http-request", Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
  (r) => ["/v1/steps/http-request", JSON.stringify({ run: [run, "x", 1, null, true][Math.floor(r() * 5)] === run ? "run" : 42, parameter: {} })],
  (r) => ["/v1/steps/http-request", JSON.stringify({ run: { ...run, session: [1, null, {}, [], ""][Math.floor(r() * 5)] }, parameter: { url: "http://127.0.0.1:9/" } })],
  () => ["/v1/steps/http-request", `{"__proto__":{"polluted":1},"run":${JSON.stringify(run)},"parameter":{"url":"http://127.0.0.1:9/","__proto__":{"polluted":2}}}`],
  () => ["/v1/steps/http-request", JSON.stringify({ run, parameter: { url: "http://127.0.0.1:9/", constructor: { prototype: { polluted: 3 } } } })],
  (r) => ["/v1/steps/http-request", JSON.stringify({ run, parameter: { url: "http://127.0.0.1:9/", method: "X".repeat(1 + Math.floor(r() * 200_000)) } })],
  (r) => ["/v1/steps/http-request", JSON.stringify({ run, parameter: { url: "http://127.0.0.1:9/", successCondition: "1 == ".repeat(1000 + Math.floor(r() * 50_000)) + "1" } })],
  (r) => ["/v1/steps/http-request", `{"run":${JSON.stringify(run)},"parameter":{"url":"http://127.0.0.1:9/","method":"POST","body":{"deep":${nest(65 + Math.floor(r() * 20_000))}}}}`],
  (r) => ["/v1/steps/http-request", JSON.stringify({ run, parameter: { url: "http://127.0.0.1:9/", successCondition: "(".repeat(33 + Math.floor(r() * 500)) + "1" } })],
  (r) => ["/v1/steps/read-object-and-wait", JSON.stringify({ run, parameter: { apiVersion: r() < 0.5 ? 1 : "v1", kind: ["ConfigMap"], name: { a: 1 } } })],
  (r) => ["/v1/steps/apply-and-wait", JSON.stringify({ run, parameter: { value: r() < 0.5 ? "not an object" : { kind: "ConfigMap" } } })],
  (r) => [`/v1/steps/${["../../etc/passwd", "%00", "http-request%2F..", "x".repeat(300), "__proto__", "constructor"][Math.floor(r() * 6)]}`, JSON.stringify({ run, parameter: {} })],
  (r) => ["/v1/steps/github-actions", JSON.stringify({ run, parameter: { owner: "a", repo: "b", event: "e".repeat(101 + Math.floor(r() * 1000)), credentials: { token: { name: "t" } } } })],
  () => ["/v1/steps/http-request", JSON.stringify({ run, parameter: { url: "file:///etc/passwd" } })],
  () => ["/v1/steps/http-request", JSON.stringify({ run, parameter: { url: "http://127.0.0.1:9/", headers: { "Bad Header": "x" } } })],
  () => ["/v1/steps/http-request", JSON.stringify({ run, parameter: { url: "http://127.0.0.1:9/", headers: { "X-Inject": "a\r\nHost: evil" } } })],
  (r) => ["/v1/steps/http-request", "x".repeat(1_048_577 + Math.floor(r() * 1000))],
];

describe("hostile input", function () {
  this.timeout(300_000);
  let executor: Executor;
  before(async () => { executor = await startExecutor(); });
  after(async () => { await executor.close(); });

  it(`answers ${COUNT} malformed or hostile requests with a clear 4xx each, staying up and bounded`, async () => {
    const r = rng(20261125);
    const bad: string[] = [];
    const statuses = new Map<number, number>();
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let next = 0;
    async function worker() {
      for (let i = next++; i < COUNT; i = next++) {
        const [path, body] = generators[i % generators.length]!(r, i);
        const res = await fetch(executor.url + path, {
          method: "POST", body: typeof body === "string" ? body : new Uint8Array(body),
          headers: { "content-type": "application/json", ...signedHeaders(body) },
        });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        let message = "";
        try { message = (JSON.parse(text) as { message?: string }).message ?? ""; } catch { /* not JSON */ }
        if (res.status < 400 || res.status >= 500 || !message || /\n\s+at |node_modules|\.ts:\d+/.test(message)) {
          bad.push(`#${i} ${path.slice(0, 40)} → ${res.status}: ${text.slice(0, 200)}`);
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const rssGrowthMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    expect(bad.slice(0, 10), `${bad.length} bad answers`).to.deep.equal([]);
    expect((await fetch(executor.url + "/healthz")).status).to.equal(200);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(rssGrowthMiB, "RSS growth (MiB)").to.be.below(256);
  });
});
