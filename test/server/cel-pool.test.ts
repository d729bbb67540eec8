import { expect } from "chai";
import express from "express";
import { execFile } from "node:child_process";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CelBusyError, CelLimitError, CelPool } from "../../server/cel/pool.js";
import { NESTED_ALL, NESTED_LISTS, NESTED_MAPS, rejection } from "../fixtures/cel.js";

/** A real /healthz on 127.0.0.1, asked every 20 ms from this thread while `during` runs. */
async function pingWhile(during: Promise<unknown>) {
  const app = express();
  app.get("/healthz", (_req, res) => { res.send("ok"); });
  const server: Server = await new Promise((r) => { const s = app.listen(0, "127.0.0.1", () => r(s)); });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
  const latencies: number[] = [];
  let maxLag = 0;
  let last = performance.now();
  const lag = setInterval(() => { const now = performance.now(); maxLag = Math.max(maxLag, now - last - 10); last = now; }, 10);
  let done = false;
  const settled = during.finally(() => { done = true; });
  const pinger = (async () => {
    while (!done) {
      const t = performance.now();
      expect(await (await fetch(url)).text()).to.equal("ok");
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await settled.catch(() => undefined);
  await pinger;
  clearInterval(lag);
  server.close();
  return { latencies, maxLag };
}

describe("cel pool: hostile expressions stay off the event loop", () => {
  let pool: CelPool;
  beforeEach(async () => {
    pool = new CelPool({ size: 2, timeoutMs: 1_000 });
    await Promise.all([pool.evaluate("1", {}), pool.evaluate("2", {})]); // both workers started
  });
  afterEach(async () => { await pool.close(); });

  it("stops both review findings at the deadline while /healthz keeps answering, then recovers", async () => {
    const started = pool.stats.workersStarted;
    const t0 = performance.now();
    const both = Promise.all([rejection(pool.evaluate(NESTED_ALL, {})), rejection(pool.evaluate(NESTED_MAPS, {}))]);
    const { latencies, maxLag } = await pingWhile(both);
    const [all, maps] = await both;
    const took = performance.now() - t0;

    expect(all).to.be.instanceOf(CelLimitError);
    expect(all.message).to.equal("evaluation exceeded 1s (the executor's limit)");
    // The strings may fill the heap before the deadline: either limit is a clear stop.
    expect(maps).to.be.instanceOf(CelLimitError);
    expect(maps.message).to.be.oneOf(["evaluation exceeded 1s (the executor's limit)", `evaluation used more than ${pool.options.maxHeapMiB} MiB of memory (the executor's limit)`]);
    expect(took).to.be.below(2_500);
    // In-thread, nothing would answer until the evaluation ended (16 s; here at least the 1 s
    // deadline). Off-thread /healthz answers all along; the bound leaves room for a 2-core machine
    // whose cores the two workers (and their replacements starting) keep busy.
    expect(latencies.length, `pings answered while the expressions ran`).to.be.at.least(10);
    expect(Math.max(...latencies), `slowest /healthz (ms)`).to.be.below(600);
    expect(maxLag, `largest event-loop lag (ms)`).to.be.below(600);

    expect(await pool.evaluate("[1, 2, 3].exists(x, x == 2)", {})).to.deep.equal({ ok: true, value: true });
    // Both stopped workers are gone; the next evaluation started the one it needed.
    expect(pool.stats.workersStarted).to.equal(started + 1);
    expect(pool.stats.timeouts + pool.stats.outOfMemory).to.equal(2);
  });

  it("a memory bomb kills only its worker, with a message naming the limit", async () => {
    const small = new CelPool({ size: 1, maxHeapMiB: 24, timeoutMs: 60_000 });
    try {
      const err = await rejection(small.evaluate(NESTED_LISTS, {}));
      expect(err).to.be.instanceOf(CelLimitError);
      expect((err as CelLimitError).limit).to.equal("memory");
      expect(err.message).to.equal("evaluation used more than 24 MiB of memory (the executor's limit)");
      expect(await small.evaluate("'still' + ' here'", {})).to.deep.equal({ ok: true, value: "still here" });
    } finally {
      await small.close();
    }
  });

  it("bounds its queue: beyond it an evaluation is refused at once, and the queued one still runs", async () => {
    const one = new CelPool({ size: 1, maxQueue: 1, timeoutMs: 300 });
    try {
      await one.evaluate("0", {});
      const hostile = rejection(one.evaluate(NESTED_ALL, {}));
      const queued = one.evaluate("1 + 1", {});
      const refused = await rejection(one.evaluate("2 + 2", {}));
      expect(refused).to.be.instanceOf(CelBusyError);
      expect(refused.message).to.equal("the executor's CEL evaluators are busy (1 evaluations waiting)");
      expect((await hostile).message).to.equal("evaluation exceeded 300ms (the executor's limit)");
      expect(await queued).to.deep.equal({ ok: true, value: 2 });
    } finally {
      await one.close();
    }
  });

  it("reports CEL errors as outcomes, not as failures of the pool", async () => {
    const r = await pool.evaluate("object.missing", { object: {} });
    expect(r.ok).to.equal(false);
    expect(r.ok === false && r.error).to.match(/missing/);
    expect(pool.stats.timeouts + pool.stats.crashes).to.equal(0);
  });
});

/** Resolves once `check` holds; fails after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("cel pool: workers only while there is work", () => {
  it("starts none before the first evaluation, one for it, stops it after idleMs, and starts again", async () => {
    const lazy = new CelPool({ size: 2, idleMs: 200 });
    try {
      expect(lazy.workers).to.equal(0);
      expect(await lazy.evaluate("1 + 1", {})).to.deep.equal({ ok: true, value: 2 });
      expect(lazy.workers).to.equal(1);
      expect(lazy.stats.workersStarted).to.equal(1);
      await until(() => lazy.workers === 0, 5_000, "the idle worker stopped");
      expect(lazy.stats.workersIdled).to.equal(1);
      expect(lazy.stats.crashes).to.equal(0);

      expect(await lazy.evaluate("'back' + ' again'", {})).to.deep.equal({ ok: true, value: "back again" });
      expect(lazy.workers).to.equal(1);
      // Several at once start workers up to the pool's size, no more.
      const many = await Promise.all([1, 2, 3, 4, 5].map((n) => lazy.evaluate(`${n} * 2`, {})));
      expect(many.map((o) => o.ok && o.value)).to.deep.equal([2, 4, 6, 8, 10]);
      expect(lazy.workers).to.equal(2);
      expect(lazy.stats.workersStarted).to.equal(3);
      await until(() => lazy.workers === 0, 5_000, "both idle workers stopped");
    } finally {
      await lazy.close();
    }
  });

  it("an idle worker does not keep the process alive", async () => {
    // A child process: its worker's idle timer has 60 s to go, the process must exit long before.
    const pool = new URL("../../server/cel/pool.ts", import.meta.url).href;
    const script = `const { CelPool } = await import(${JSON.stringify(pool)});
      const p = new CelPool({ idleMs: 60_000 });
      const r = await p.evaluate("6 * 7", {});
      console.log(JSON.stringify({ r, workers: p.workers }));`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { timeout: 15_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    expect(JSON.parse(out)).to.deep.equal({ r: { ok: true, value: 42 }, workers: 1 });
  });
});
