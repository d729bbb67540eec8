// Resource limits of outbound HTTP (server/outbound/http-client.ts): per-host concurrency and queue, the
// response size caps and the time cap, against slow and huge servers on 127.0.0.1.
import type { ServerResponse } from "node:http";
import { expect } from "chai";
import { createHttpClient, HostBusyError, HostLimiter, type HttpClient, type HttpClientOptions } from "../../server/outbound/http-client.js";
import { reply, startTarget, type Target } from "../fixtures/target.js";

describe("outbound limits: per-host concurrency and queue, size and time caps", function () {
  const clients: HttpClient[] = [];
  const targets: Target[] = [];
  const client = (o: Partial<HttpClientOptions> = {}) => { const c = createHttpClient({ allow: ["127.0.0.1"], ...o }); clients.push(c); return c; };
  const target = async (h: Parameters<typeof startTarget>[0]) => { const t = await startTarget(h); targets.push(t); return t; };
  const get = (c: HttpClient, url: string, timeoutMs = 5_000) => c.send({ method: "GET", url: new URL(url), headers: {}, timeoutMs });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(targets.splice(0).map((t) => t.close()));
  });

  it("holds at most `hostConcurrency` requests in flight per host, queues `hostQueue`, refuses the rest at once", async () => {
    const held: ServerResponse[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const slow = await target((_req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.on("finish", () => inFlight--);
      held.push(res);
    });
    const c = client({ hostConcurrency: 2, hostQueue: 1 });
    const first = [1, 2, 3].map((i) => get(c, `${slow.url}/${i}`));
    await waitFor(() => slow.requests.length === 2);
    // Two in flight, one queued: the fourth is refused without being sent.
    // Refused while the three are still held: it did not wait for a slot.
    const err = await get(c, `${slow.url}/4`).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(HostBusyError);
    expect(held.filter((r) => !r.writableEnded)).to.have.length(2);
    expect(err!.message).to.match(/^2 requests to 127\.0\.0\.1:\d+ are in flight and 1 more are waiting, the executor's limit per host \(flags --outbound-host-concurrency, --outbound-host-queue\); this one was not sent$/);
    // Release them one by one: the queued request goes out as soon as a slot frees.
    while (held.length < 3 || held.some((r) => !r.writableEnded)) {
      await waitFor(() => held.some((r) => !r.writableEnded));
      reply(held.find((r) => !r.writableEnded)!, 200, "ok");
      await new Promise((r) => setTimeout(r, 20));
    }
    const answers = await Promise.all(first);
    expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 200]);
    expect(maxInFlight).to.equal(2);
    expect(slow.requests.map((r) => r.path)).to.deep.equal(["/1", "/2", "/3"]);
  });

  it("another host is not held up by a slow one", async () => {
    const held: ServerResponse[] = [];
    const slow = await target((_req, res) => { held.push(res); });
    const fast = await target((_req, res) => reply(res, 200, "fast"));
    const c = client({ hostConcurrency: 1, hostQueue: 0 });
    const pending = get(c, slow.url);
    await waitFor(() => held.length === 1);
    expect((await get(c, fast.url)).body).to.equal("fast");
    reply(held[0]!, 200, "slow");
    expect((await pending).body).to.equal("slow");
  });

  it("a request still queued when its time is up fails as not sent, naming the limit", async () => {
    const held: ServerResponse[] = [];
    const slow = await target((_req, res) => { held.push(res); });
    const c = client({ hostConcurrency: 1, hostQueue: 5 });
    const pending = get(c, slow.url, 5_000);
    await waitFor(() => held.length === 1);
    const err = await get(c, slow.url, 200).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(HostBusyError);
    expect(err!.message).to.match(/no free connection to 127\.0\.0\.1:\d+ within the timeout: 1 requests to it were in flight .*--outbound-host-concurrency/);
    expect(slow.requests).to.have.length(1);
    reply(held[0]!, 200, "done");
    await pending;
  });

  it("HostLimiter frees the slot of a finished request and forgets idle hosts", async () => {
    const l = new HostLimiter(1, 1);
    const release = await l.acquire("h");
    const queued = l.acquire("h");
    expect(l.load("h")).to.deep.equal({ active: 1, queued: 1 });
    release();
    release(); // twice is harmless
    (await queued)();
    expect(l.load("h")).to.deep.equal({ active: 0, queued: 0 });
  });

  it("send keeps at most maxResponseBytes of a huge body and marks it truncated", async () => {
    const chunk = Buffer.alloc(64 * 1024, "x");
    let written = 0;
    const huge = await target((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      // 64 MiB unless the client stops reading; stops when the socket closes.
      const pump = () => {
        while (written < 64 << 20 && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("close", () => { written = Infinity; });
      pump();
    });
    const c = client({ maxResponseBytes: 256 * 1024 });
    const res = await get(c, huge.url);
    expect(res.truncated).to.equal(true);
    expect(res.body.length).to.equal(256 * 1024);
  });

  it("fetch (GitHub) fails an answer larger than maxFetchResponseBytes instead of buffering it", async () => {
    const big = await target((_req, res) => reply(res, 200, "y".repeat(300 * 1024)));
    const c = client({ maxFetchResponseBytes: 100 * 1024 });
    const err = await c.fetch(big.url).then((r) => r.text()).then(() => undefined, (e: Error) => e);
    expect(err, "the body was read whole").to.be.instanceOf(Error);
    expect(`${err!.message} ${(err!.cause as Error | undefined)?.message ?? ""}`).to.match(/max ?size|exceed/i);
  });

  it("the time cap covers a body that trickles in: the exchange is abandoned at timeoutMs", async () => {
    const trickle = await target((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      const timer = setInterval(() => res.write("."), 50);
      res.on("close", () => clearInterval(timer));
    });
    const c = client();
    const started = Date.now();
    const err = await get(c, trickle.url, 400).then(() => undefined, (e: Error) => e);
    const took = Date.now() - started;
    expect(err?.name).to.equal("TimeoutError");
    expect(took).to.be.within(350, 2_000);
  });
});

async function waitFor(cond: () => boolean, limitMs = 5_000) {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
