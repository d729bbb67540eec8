import { expect } from "chai";
import { parseRetryAfter, retryDelay, sleep } from "../../server/shared/retry.js";

describe("retry", () => {
  it("doubles the delay per retry, with jitter in [d/2, d]", () => {
    const low = (n: number) => retryDelay(n, { initialMs: 100, maxMs: 10_000, random: () => 0 });
    const high = (n: number) => retryDelay(n, { initialMs: 100, maxMs: 10_000, random: () => 1 });
    expect([1, 2, 3, 4].map(low)).to.deep.equal([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map(high)).to.deep.equal([100, 200, 400, 800]);
  });

  it("caps the delay at maxMs", () => {
    expect(retryDelay(30, { initialMs: 1000, maxMs: 5000, random: () => 1 })).to.equal(5000);
  });

  it("prefers Retry-After, bounded by maxRetryAfterMs", () => {
    expect(retryDelay(1, { initialMs: 1000 }, 7000)).to.equal(7000);
    expect(retryDelay(1, { maxRetryAfterMs: 60_000 }, 3_600_000)).to.equal(60_000);
  });

  it("parses Retry-After seconds and HTTP dates", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("12", now)).to.equal(12_000);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now)).to.equal(5000);
    expect(parseRetryAfter("soon", now)).to.equal(undefined);
    expect(parseRetryAfter(undefined, now)).to.equal(undefined);
  });

  it("sleep rejects when aborted", async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    ac.abort(new Error("stop"));
    let caught: unknown;
    try { await p; } catch (err) { caught = err; }
    expect(caught).to.be.instanceOf(Error).with.property("message", "stop");
  });
});
