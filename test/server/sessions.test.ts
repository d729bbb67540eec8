import { expect } from "chai";
import { SessionAliases } from "../../server/runs/sessions.js";

const run = (session: string, step = "purge") => ({ namespace: "ns", application: "app", step, session });

describe("session aliases (KubeVela's lost-status race after a restart)", () => {
  let now = 1_000_000;
  const clock = () => now;

  it("maps a second session to a first one seen once, moments before, with the same revision and parameter", () => {
    const a = new SessionAliases({ windowMs: 5000 }, clock);
    expect(a.resolve(run("S1"), "app-v2", { url: "u" }).session).to.equal("S1");
    now += 30;
    expect(a.resolve(run("S2"), "app-v2", { url: "u" }).session).to.equal("S1");
    // KubeVela persisted S2 and keeps polling with it: it stays mapped.
    now += 1000;
    expect(a.resolve(run("S2"), "app-v2", { url: "u" }).session).to.equal("S1");
    expect(a.resolve(run("S1"), "app-v2", { url: "u" }).session).to.equal("S1");
  });

  const distinct: [string, (a: SessionAliases) => void, () => ReturnType<typeof run>, string | undefined, unknown][] = [
    ["a first session polled more than once (KubeVela persisted it)", (a) => { a.resolve(run("S1"), "r", {}); a.resolve(run("S1"), "r", {}); }, () => run("S2"), "r", {}],
    ["a new revision (a restart)", (a) => { a.resolve(run("S1"), "r1", {}); }, () => run("S2"), "r2", {}],
    ["another parameter", (a) => { a.resolve(run("S1"), "r", { x: 1 }); }, () => run("S2"), "r", { x: 2 }],
    ["another step", (a) => { a.resolve(run("S1", "a"), "r", {}); }, () => run("S2", "b"), "r", {}],
    ["a session after the window", (a) => { a.resolve(run("S1"), "r", {}); now += 6000; }, () => run("S2"), "r", {}],
    ["no revision sent", (a) => { a.resolve(run("S1"), undefined, {}); }, () => run("S2"), undefined, {}],
  ];
  for (const [name, before, next, revision, parameter] of distinct) {
    it(`keeps sessions apart for ${name}`, () => {
      const a = new SessionAliases({ windowMs: 5000 }, clock);
      before(a);
      expect(a.resolve(next(), revision, parameter).session).to.equal("S2");
    });
  }

  it("stays bounded", () => {
    const a = new SessionAliases({ maxEntries: 100 }, clock);
    for (let i = 0; i < 1000; i++) a.resolve(run(`S${i}`, `step-${i}`), "r", {});
    expect((a as unknown as { bySlot: Map<string, unknown> }).bySlot.size).to.be.at.most(100);
  });
});
