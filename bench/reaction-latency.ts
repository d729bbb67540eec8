// Reaction latency: how long from "the condition a step waits for became true" to "KubeVela shows
// the step succeeded", with and without the executor's wake-up (docs/runs.md, "Wake-up").
// For each variant (wake on, wake off) an executor (server/main.ts, defaults but the flag) serves
// N Applications whose workflow is `deploy` then `wait` (read-object-and-wait for a ConfigMap).
// Once `wait` is waiting, each Application sleeps a random 5–60 s (so KubeVela's wait backoff has
// grown to a random level, as in real waits), then the ConfigMap is created and the Application's
// status is read every 50 ms until the step shows succeeded. All Applications of a variant run at
// once, staggered by their random delays.
//
//   npx tsx bench/reaction-latency.ts [n=12] [maxDelaySeconds=60]   (control plane up, addon built)
import { pathToFileURL } from "node:url";
import { application, applyYaml } from "../test/e2e/harness.js";
import { kubeClients } from "../test/fixtures/kube.js";
import { readApp, sleep, startRunsCluster, stepPhase } from "./runs-lib.js";

export interface LatencyResult {
  variant: "wake on" | "wake off";
  n: number;
  waitedS: number[];
  reactionMs: number[];
  median: number;
  p90: number;
  max: number;
  mean: number;
}

const pct = (v: number[], p: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};

export async function measure(wake: boolean, n: number, maxDelayS: number, log: (l: string) => void = () => undefined): Promise<LatencyResult> {
  const cluster = await startRunsCluster({ wake, pollInterval: "1s", leaseDuration: "15s", sweepInterval: "5s" }, 1);
  const waitedS: number[] = [];
  const reactionMs: number[] = [];
  try {
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      const app = `lat-${wake ? "on" : "off"}-${i}`;
      await sleep(i * 150);
      await applyYaml(application(cluster.ns, app, [{ name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: `${app}-go`, timeout: "10m" } }]));
      while (stepPhase(await readApp(cluster.ns, app), "wait") !== "running") await sleep(100);
      const delayS = 5 + Math.random() * (maxDelayS - 5);
      await sleep(delayS * 1000);
      const t0 = Date.now();
      await kubeClients().core.createNamespacedConfigMap({ namespace: cluster.ns, body: { metadata: { name: `${app}-go` }, data: {} } });
      while (stepPhase(await readApp(cluster.ns, app), "wait") !== "succeeded") {
        if (Date.now() - t0 > 180_000) throw new Error(`${app}: no success within 180 s`);
        await sleep(50);
      }
      const ms = Date.now() - t0;
      waitedS.push(Math.round(delayS));
      reactionMs.push(ms);
      log(`${wake ? "wake on " : "wake off"} ${app}: waited ${delayS.toFixed(1)} s, reaction ${ms} ms`);
    }));
  } finally {
    await cluster.close();
  }
  return {
    variant: wake ? "wake on" : "wake off", n, waitedS, reactionMs,
    median: pct(reactionMs, 50), p90: pct(reactionMs, 90), max: Math.max(...reactionMs),
    mean: Math.round(reactionMs.reduce((a, b) => a + b, 0) / reactionMs.length),
  };
}

async function main() {
  const n = Number(process.argv[2] ?? 12);
  const maxDelayS = Number(process.argv[3] ?? 60);
  const results: LatencyResult[] = [];
  for (const wake of [true, false]) results.push(await measure(wake, n, maxDelayS, (l) => console.log(l)));
  console.log("\n| variant | n | median | p90 | max | mean |\n|---|---|---|---|---|---|");
  for (const r of results) console.log(`| ${r.variant} | ${r.n} | ${(r.median / 1000).toFixed(2)} s | ${(r.p90 / 1000).toFixed(2)} s | ${(r.max / 1000).toFixed(2)} s | ${(r.mean / 1000).toFixed(2)} s |`);
  console.log(JSON.stringify(results));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
