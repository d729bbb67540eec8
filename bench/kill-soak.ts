// Kill soak: two executor replicas share the StepRun store behind a balancer; for each iteration
// an Application runs `deploy` (apply-component) then `call` (http-request POST to a target that
// answers after 0–300 ms), and one replica is killed with SIGKILL at a random moment 100–1000 ms
// after the Application is created (the step's life on this machine: first poll after ~250 ms,
// side effect from the second poll on, workflow finished by ~0.5–1 s) — before the claim, between claim and intent, with the request in
// flight, after the result, or after the workflow ended (the moment is classified from the
// StepRun and the target just before the kill). The holder of the run is the victim when there
// is one, else a random replica; it is restarted at once under a new identity. Counted per
// Application: deliveries at the target, effects (distinct Idempotency-Keys: what an API honouring
// the header applies), StepRuns (sessions), the workflow's end.
//
//   npx tsx bench/kill-soak.ts [iterations=100]     (control plane up, addon built: npm run addon:build)
//
// test/e2e/runs.e2e.test.ts runs a 10-iteration version. The result of the last full run is in
// docs/runs.md.
import { pathToFileURL } from "node:url";
import { applyYaml, application } from "../test/e2e/harness.js";
import { readApp, sleep, startCountingTarget, startRunsCluster, stepPhase, stepRunsOf, workflowEnded, type CountingTarget, type RunsCluster } from "./runs-lib.js";

export type Stage = "before-claim" | "claimed" | "intent-recorded" | "in-flight" | "result-recorded" | "workflow-ended";

export interface SoakIteration {
  i: number;
  app: string;
  killAtMs: number;
  stage: Stage;
  victim: "holder" | "random";
  deliveries: number;
  effects: number;
  /** StepRuns that started (a second one would be a second run of the step). */
  sessions: number;
  /** StepRuns of sessions KubeVela dropped before confirming them (never started: harmless). */
  droppedSessions: number;
  attempts: number;
  phase: string | undefined;
  /** From the kill to the workflow's end. */
  recoveryMs: number;
  /** When there is more than one StepRun: each one, and KubeVela's step ids. */
  detail?: unknown;
}

export interface SoakReport {
  iterations: SoakIteration[];
  byStage: Record<string, number>;
  finished: number;
  exactlyOneEffect: number;
  /** Runs with more than one delivery, all of them in the documented window (a kill with the request in flight). */
  duplicateDeliveriesInWindow: number;
  duplicateDeliveriesOutsideWindow: number;
  /** Applications whose step started under more than one session. */
  extraSessions: number;
  /** Applications where KubeVela dropped a session before confirming it (a status write conflict). */
  droppedSessions: number;
  recoveryMs: { median: number; max: number };
}

const STEP = "call";
/** How long after the victim's exit a delivery still counts as one it sent (see the kill below). */
const IN_FLIGHT_SLACK_MS = 250;

export async function killSoak(cluster: RunsCluster, target: CountingTarget, iterations: number, log: (line: string) => void = () => undefined): Promise<SoakReport> {
  const results: SoakIteration[] = [];
  for (let i = 0; i < iterations; i++) {
    const app = `soak-${i}-${Date.now().toString(36)}`;
    const killAtMs = Math.round(100 + Math.random() * 900);
    const t0 = Date.now();
    await applyYaml(application(cluster.ns, app, [{ name: STEP, type: "http-request", properties: { url: `${target.url}/effect`, method: "POST", body: { app } } }]));
    await sleep(Math.max(0, killAtMs - (Date.now() - t0)));
    const [records, state] = await Promise.all([stepRunsOf(cluster.ns, app), readApp(cluster.ns, app)]);
    const rec = records[0];
    const holder = rec?.status?.phase === "running" ? rec.status.holder : undefined;
    let stage: Stage;
    if (workflowEnded(state)) stage = "workflow-ended";
    else if (!rec) stage = "before-claim";
    else if (rec.status?.phase !== "running") stage = "result-recorded";
    else if (target.deliveries(app) > 0) stage = "in-flight";
    else if (rec.status?.checkpoint) stage = "intent-recorded";
    else stage = "claimed";
    const byHolder = holder ? cluster.byIdentity(holder) : undefined;
    const victim = byHolder ?? cluster.replicas[Math.floor(Math.random() * cluster.replicas.length)]!;
    const killedAt = Date.now();
    await victim.stop("SIGKILL");
    const exitedAt = Date.now();
    // The state was read just before the kill: a step may have moved on in between (recorded its
    // intent and sent the request before the kill landed). Judge by the target's clock then: a
    // request the victim sent before it died is read by the target up to a moment after the exit
    // is seen (both in this process), while the surviving replica resumes the run only after the
    // victim's Lease ran out (--lease-duration 3s), so any delivery that close to the exit was in flight.
    const first = target.firstDeliveryAt(app);
    if ((stage === "claimed" || stage === "before-claim" || stage === "intent-recorded") && first !== undefined && first <= exitedAt + IN_FLIGHT_SLACK_MS) stage = "in-flight";
    const restarted = victim.start();
    const end = Date.now() + 120_000;
    let s = await readApp(cluster.ns, app);
    while (!workflowEnded(s)) {
      if (Date.now() > end) throw new Error(`soak ${i}: ${app} did not finish within 120 s after a kill at stage ${stage}: ${JSON.stringify(s?.status?.workflow)}`);
      await sleep(100);
      s = await readApp(cluster.ns, app);
    }
    const recoveryMs = Date.now() - killedAt;
    await restarted;
    await sleep(300); // a late duplicate would show up here
    const final = await stepRunsOf(cluster.ns, app);
    const it: SoakIteration = {
      i, app, killAtMs, stage, victim: byHolder ? "holder" : "random",
      deliveries: target.deliveries(app), effects: target.effects(app),
      sessions: final.filter((r) => (r.status?.attempts ?? 0) > 0).length, droppedSessions: final.filter((r) => (r.status?.attempts ?? 0) === 0).length,
      attempts: Math.max(0, ...final.map((r) => r.status?.attempts ?? 0)), phase: stepPhase(s, STEP), recoveryMs,
    };
    if (it.sessions !== 1 || it.droppedSessions > 0) {
      it.detail = {
        records: final.map((r) => ({ session: r.spec.session, ...r.status, outputs: undefined })),
        steps: s?.status?.workflow?.steps?.map((x) => ({ name: x.name, id: x.id, phase: x.phase, reason: x.reason, message: x.message })),
      };
      log(`soak ${i + 1}: ${JSON.stringify(it.detail)}`);
    }
    results.push(it);
    log(`soak ${i + 1}/${iterations}: kill at ${killAtMs} ms (${stage}, ${it.victim}) → ${it.phase}, ${it.deliveries} deliver${it.deliveries === 1 ? "y" : "ies"}, ${it.effects} effect, ${it.sessions} session${it.droppedSessions ? ` (+${it.droppedSessions} dropped by KubeVela)` : ""}, ${it.attempts} attempt, finished ${recoveryMs} ms after the kill`);
  }
  const byStage: Record<string, number> = {};
  for (const r of results) byStage[r.stage] = (byStage[r.stage] ?? 0) + 1;
  const dup = results.filter((r) => r.deliveries > 1);
  const inWindow = (r: SoakIteration) => r.stage === "in-flight" || r.stage === "intent-recorded";
  const rec = results.map((r) => r.recoveryMs).sort((a, b) => a - b);
  return {
    iterations: results,
    byStage,
    finished: results.filter((r) => r.phase === "succeeded").length,
    exactlyOneEffect: results.filter((r) => r.effects === 1).length,
    duplicateDeliveriesInWindow: dup.filter(inWindow).length,
    duplicateDeliveriesOutsideWindow: dup.filter((r) => !inWindow(r)).length,
    extraSessions: results.filter((r) => r.sessions !== 1).length,
    droppedSessions: results.filter((r) => r.droppedSessions > 0).length,
    recoveryMs: { median: rec[Math.floor(rec.length / 2)] ?? 0, max: rec.at(-1) ?? 0 },
  };
}

async function main() {
  const iterations = Number(process.argv[2] ?? 100);
  const cluster = await startRunsCluster();
  const target = await startCountingTarget(() => Math.random() * 300);
  const t0 = Date.now();
  try {
    const report = await killSoak(cluster, target, iterations, (l) => console.log(l));
    const { iterations: _all, ...summary } = report;
    console.log(JSON.stringify({ ...summary, wallSeconds: Math.round((Date.now() - t0) / 1000) }, null, 2));
  } finally {
    await target.close();
    await cluster.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
