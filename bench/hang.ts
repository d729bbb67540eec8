// 6. A hung executor and the rest of the platform (issue 15 b): W Applications wait at a
// `read-object-and-wait` step (a ConfigMap that never appears); an unrelated Application without
// our steps is created S times and timed until KubeVela shows it `running` — first with the
// executor healthy (baseline), then with it SIGSTOPped after every waiting Application was
// written (each reconcile then evaluates its waiting step). A stopped process still accepts
// connections (the kernel's listen backlog) and never answers: to KubeVela it is an executor that
// answers after any timeout, 60 s included. Baseline and hung samples come from one run.
import type { BenchContext } from "./lib/context.js";
import { application, kube, kubectl, applyYaml, tempNamespace, watchApplications, workflowDone, type AppObject } from "./lib/cluster.js";
import { log, median, pool, sleep } from "./lib/common.js";
import { installWaitDefinition } from "./lib/variants.js";
import { CustomObjectsApi } from "@kubernetes/client-node";

export interface HangResult {
  waiting: number;
  baselineMs: number[];
  hungMs: number[];
  /** Steps of the waiting Applications that failed or showed a call error while the executor was stopped. */
  failures: string[];
  /** Applications created at once, each starting a wait, while the unrelated one was deployed (`burstMs`). */
  burst?: number;
  burstMs?: number[];
  /** Seconds until every burst Application's step was waiting (held by the executor). */
  burstStartedS?: number;
  /** Steps of the burst that failed or showed a call error. */
  burstFailures?: string[];
  /** The same burst with KubeVela's built-in `suspend` step instead of ours: what the burst costs KubeVela by itself. */
  controlMs?: number[];
  /** The same burst with the built-in way of waiting (`kube.#Read` + `#ConditionalWait`), polled on the same backoff as ours. */
  pollControlMs?: number[];
}

const configComponent = (name: string) => [{
  name: `${name}-config`, type: "k8s-objects",
  properties: { objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `${name}-config` }, data: { v: "1" } }] },
}];

export async function hang(ctx: BenchContext): Promise<HangResult> {
  const waiting = ctx.smoke ? 4 : 50;
  const samples = ctx.smoke ? 3 : 10;
  const ns = await tempNamespace("bench-hang");
  const apps = await watchApplications(ns.name);
  const runs = kube().kc.makeApiClient(CustomObjectsApi);
  try {
    await pool(Array.from({ length: waiting }, (_, i) => i), 8, (i) => applyYaml(application(ns.name, `wait-${i}`,
      [{ name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: "never-there", timeout: "1h" } }])));
    // Held by the executor and acknowledged by KubeVela: what every long wait looks like.
    const waitHeld = async (n: number) => {
      for (const end = Date.now() + 600_000; ;) {
        const list = (await runs.listNamespacedCustomObject({ group: "step-executor.oam.dev", version: "v1alpha1", namespace: ns.name, plural: "stepruns" })) as { items: { status?: { phase?: string; holder?: string; acknowledged?: boolean } }[] };
        const held = list.items.filter((r) => r.status?.phase === "running" && r.status.holder && r.status.acknowledged).length;
        if (held >= n) return;
        if (Date.now() > end) throw new Error(`only ${held} of ${n} waits were held and acknowledged after 10 minutes`);
        await sleep(500);
      }
    };
    await waitHeld(waiting);
    let k = 0;
    const deploy = async () => {
      const name = `plain-${k++}`;
      const t0 = performance.now();
      await applyYaml(application(ns.name, name, [{ name: "deploy", type: "apply-component", properties: { component: `${name}-config` } }], configComponent(name)));
      const { at, app } = await apps.until(name, workflowDone, 180_000);
      if (app.status?.status !== "running") throw new Error(`${name} ended ${app.status?.status}`);
      return at - t0;
    };
    const baselineMs: number[] = [];
    for (let i = 0; i < samples; i++) baselineMs.push(await deploy());
    log(`hang: baseline median ${median(baselineMs).toFixed(0)} ms`);

    const failures: string[] = [];
    process.kill(ctx.executor.pid, "SIGSTOP");
    const hungMs: number[] = [];
    try {
      await pool(Array.from({ length: waiting }, (_, i) => i), 8, (i) => kubectl(["annotate", "applications.core.oam.dev", `wait-${i}`, "-n", ns.name, "--overwrite", `bench/poke=${Date.now()}`]));
      for (let i = 0; i < samples; i++) hungMs.push(await deploy());
      for (let i = 0; i < waiting; i++) {
        const a = apps.latest(`wait-${i}`) as AppObject | undefined;
        for (const s of a?.status?.workflow?.steps ?? []) {
          if (s.phase === "failed" || /function call error/.test(s.message ?? "")) failures.push(`wait-${i}/${s.name}: ${s.phase}: ${(s.message ?? "").slice(0, 160)}`);
        }
      }
    } finally {
      process.kill(ctx.executor.pid, "SIGCONT");
    }
    log(`hang: with the executor stopped median ${median(hungMs).toFixed(0)} ms; ${failures.length} failed steps`);

    // A burst: `burst` Applications created at once, each starting a wait (its run's first polls
    // reach the executor), while the unrelated Application is deployed again.
    const burst = ctx.smoke ? 10 : 300;
    await waitHeld(waiting); // the stopped executor's runs were taken back after SIGCONT
    const t0 = performance.now();
    const creating = pool(Array.from({ length: burst }, (_, i) => i), 16, (i) => applyYaml(application(ns.name, `burst-${i}`,
      [{ name: "wait", type: "read-object-and-wait", properties: { apiVersion: "v1", kind: "ConfigMap", name: "never-there", timeout: "1h" } }])));
    const burstMs: number[] = [];
    for (let i = 0; i < samples; i++) burstMs.push(await deploy());
    await creating;
    await waitHeld(waiting + burst);
    const burstStartedS = (performance.now() - t0) / 1000;
    const burstFailures: string[] = [];
    for (let i = 0; i < burst; i++) {
      for (const st of (apps.latest(`burst-${i}`) as AppObject | undefined)?.status?.workflow?.steps ?? []) {
        if (st.phase === "failed" || /function call error/.test(st.message ?? "")) burstFailures.push(`burst-${i}/${st.name}: ${st.phase}: ${(st.message ?? "").slice(0, 160)}`);
      }
    }
    log(`hang: during a burst of ${burst} starting waits median ${median(burstMs).toFixed(0)} ms; all held after ${burstStartedS.toFixed(1)} s; ${burstFailures.length} failed steps`);

    // The control: as many Applications at once whose step is KubeVela's own `suspend` (no addon).
    const control = pool(Array.from({ length: burst }, (_, i) => i), 16, (i) => applyYaml(application(ns.name, `control-${i}`,
      [{ name: "wait", type: "suspend", properties: {} }])));
    const controlMs: number[] = [];
    for (let i = 0; i < samples; i++) controlMs.push(await deploy());
    await control;
    log(`hang: during a burst of ${burst} built-in suspend steps median ${median(controlMs).toFixed(0)} ms`);

    // The fair control: as many Applications starting the built-in way of waiting (kube.#Read +
    // #ConditionalWait on a condition that does not hold), which KubeVela polls on the same backoff.
    await installWaitDefinition(ctx.workDir);
    const polling = pool(Array.from({ length: burst }, (_, i) => i), 16, (i) => applyYaml(application(ns.name, `poll-${i}`,
      [{ name: "wait", type: "bench-wait-object", properties: { name: "never-enabled" } }])));
    const pollControlMs: number[] = [];
    for (let i = 0; i < samples; i++) pollControlMs.push(await deploy());
    await polling;
    log(`hang: during a burst of ${burst} built-in polls (kube.#Read + #ConditionalWait) median ${median(pollControlMs).toFixed(0)} ms`);
    return { waiting, baselineMs, hungMs, failures, burst, burstMs, burstStartedS, burstFailures, controlMs, pollControlMs };
  } finally {
    apps.close();
    await kubectl(["delete", "applications.core.oam.dev", "--all", "-n", ns.name, "--wait=true", "--timeout=180s"]).catch(() => undefined);
    await ns.delete();
  }
}

export function hangMarkdown(r: HangResult): string {
  const [b, h] = [median(r.baselineMs), median(r.hungMs)];
  return [
    `${r.waiting} Applications waiting at a \`read-object-and-wait\` step; an unrelated Application (one \`apply-component\` step) created ${r.baselineMs.length} times before and ${r.hungMs.length} times while the executor was SIGSTOPped (after every waiting Application was written, so each reconcile evaluated its waiting step). Time from \`kubectl apply\` to the workflow shown \`running\`:`,
    "",
    "| | median | max |",
    "|---|---|---|",
    `| executor healthy (baseline) | ${(b / 1000).toFixed(2)} s | ${(Math.max(...r.baselineMs) / 1000).toFixed(2)} s |`,
    `| executor stopped (SIGSTOP) | ${(h / 1000).toFixed(2)} s | ${(Math.max(...r.hungMs) / 1000).toFixed(2)} s |`,
    `| ratio (issue 15 asks ≤ 2) | **${(h / b).toFixed(2)}** | |`,
    "",
    ...(r.burst && r.burstMs ? [
      "",
      `A burst: ${r.burst} more Applications created at once (16 at a time), each starting a \`read-object-and-wait\` step (their first polls reach the executor), while the unrelated Application was deployed ${r.burstMs.length} times: median **${(median(r.burstMs) / 1000).toFixed(2)} s** (max ${(Math.max(...r.burstMs) / 1000).toFixed(2)} s) against ${(b / 1000).toFixed(2)} s before${r.controlMs?.length ? ` and **${(median(r.controlMs) / 1000).toFixed(2)} s** during the same burst of Applications whose step is KubeVela's built-in \`suspend\` (the burst's cost to KubeVela without the addon; ratio ${(median(r.burstMs) / median(r.controlMs)).toFixed(2)})` : ""}${r.pollControlMs?.length ? `, and **${(median(r.pollControlMs) / 1000).toFixed(2)} s** during the same burst of Applications starting the built-in way of waiting (\`kube.#Read\` + \`#ConditionalWait\`, polled on the same backoff; created after ours and the suspend steps, which were still there; ratio ${(median(r.burstMs) / median(r.pollControlMs)).toFixed(2)})${median(r.pollControlMs) >= median(r.burstMs) / 2 ? " — so a burst of starting waits of any kind, not of ours in particular, is what slows KubeVela here" : ""}` : ""}; every burst step was held by the executor ${r.burstStartedS!.toFixed(1)} s after the first was created; failed burst steps: ${r.burstFailures!.length === 0 ? "none" : r.burstFailures!.slice(0, 5).join("; ")}.`,
    ] : []),
    "",
    `Before the steps answered from their StepRuns (issue 15, 8 waiting Applications): **16.7 s** with the executor stopped against **0.1 s** healthy — each evaluation held one of KubeVela's 4 reconcile workers for the 10 s call timeout. Waiting steps' failures while stopped: ${r.failures.length === 0 ? "none" : r.failures.join("; ")}.`,
  ].join("\n");
}
