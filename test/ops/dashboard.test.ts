// The example Grafana dashboard queries the executor's real metric names, and shows every one.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { createMetrics } from "../../server/observe/metrics.js";

interface Panel { id: number; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets: { expr: string }[] }

describe("addon/dashboards/grafana-dashboard.json", () => {
  const dashboard = JSON.parse(readFileSync("addon/dashboards/grafana-dashboard.json", "utf8")) as { uid: string; panels: Panel[] };
  const { registry, ...own } = createMetrics();
  const known = new Set(registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name));
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bstep_executor_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ""))));

  it("queries only metrics the executor exports", () => {
    expect(used.size).to.be.greaterThan(8);
    for (const name of used) expect(known.has(name), name).to.equal(true);
  });

  it("shows every metric of the executor's own", () => {
    for (const m of Object.values(own)) expect(used.has((m as unknown as { name: string }).name), (m as unknown as { name: string }).name).to.equal(true);
  });

  it("has unique panel ids, a place for each panel, and the job filter in every query", () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const p of dashboard.panels) expect(p.gridPos.w * p.gridPos.h, p.title).to.be.greaterThan(0);
    for (const e of exprs) expect(e).to.contain('job=~"$job"');
  });
});
