// 8. The executor's idle memory: the product entry (server/main.ts compiled, no bench
// instrumentation) started against the local control plane with its defaults (StepRun store,
// Lease, Application watch, namespaces' Secrets), RSS once it is ready and has settled, no step
// running. Variants in the same run, interleaved: with Node's --enable-source-maps, and with
// @kubernetes/client-node preloaded (what the executor imported until it got its own client).
import { spawn } from "node:child_process";
import { sleep } from "../server/shared/retry.js";
import { fmt, log, median, procStat } from "./lib/common.js";
import { compileExecutor, imageNodeFlags } from "./lib/executor.js";
import { freePort } from "./lib/target.js";

export const PRODUCT_ENTRY = "bench/.build/server/main.js";

export interface IdleRow { variant: string; nodeFlags: string[]; rssMiB: number[] }
export interface IdleResult { settleS: number; rows: IdleRow[] }

/** The rows: the image's node flags (Dockerfile ENTRYPOINT), then each with one thing changed. */
function variants(): [string, string[]][] {
  const image = imageNodeFlags();
  const without = (flag: string) => image.filter((f) => !f.startsWith(flag));
  return [
    [`as the image runs it (\`node ${image.join(" ")} build/server/main.js\`)`, image],
    // V8 grows the young generation (two semi-spaces, up to 16 MiB each by default) as the
    // executor allocates, and keeps it: the image caps it.
    ["without `--max-semi-space-size` (V8's default young generation)", without("--max-semi-space-size")],
    ["with `--max-semi-space-size=1`", [...without("--max-semi-space-size"), "--max-semi-space-size=1"]],
    ["with `--memory-saver-mode` (V8 releases freed pages, keeps its heap tight)", [...image, "--memory-saver-mode"]],
    ["without `--enable-source-maps`", without("--enable-source-maps")],
    ["with @kubernetes/client-node imported too (the client it used before)", [...image, "--import", "@kubernetes/client-node"]],
  ];
}

/** RSS (MiB, median of 5 samples a second apart) of one executor, `settleS` after it is ready. */
async function idleRss(nodeFlags: string[], entry: string[], settleS: number, token: string): Promise<number> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeFlags, ...entry, "--host", "127.0.0.1", "--port", String(port), "--log-level", "warn"], {
    env: { ...process.env, STEP_EXECUTOR_TOKEN: token },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => { stderr = (stderr + d).slice(-4_000); });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the executor exited: ${stderr}`);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`the executor was not ready in 60 s: ${stderr}`);
      await sleep(200);
    }
    await sleep(settleS * 1000);
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      samples.push(procStat(child.pid!).rssBytes / 2 ** 20);
      await sleep(1_000);
    }
    return median(samples);
  } finally {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** `token`: the running executor's, since a replica writes the namespaces' Secrets with it. */
export async function idleMemory(smoke: boolean, token: string): Promise<IdleResult> {
  // The smoke run has no time to compile: the sources under tsx, same code.
  const entry = smoke ? ["--import", "tsx", "server/main.ts"] : [PRODUCT_ENTRY];
  if (!smoke) await compileExecutor();
  const settleS = smoke ? 1 : 15;
  const rounds = smoke ? 1 : 3;
  const rows: IdleRow[] = variants().map(([variant, nodeFlags]) => ({ variant, nodeFlags, rssMiB: [] }));
  for (let round = 0; round < rounds; round++) {
    for (const row of rows) {
      row.rssMiB.push(await idleRss(row.nodeFlags, entry, settleS, token));
      log(`idle: ${row.variant}: ${fmt(row.rssMiB.at(-1)!)} MiB`);
    }
  }
  return { settleS, rows };
}

export function idleMarkdown(r: IdleResult): string {
  const base = r.rows[0] ? median(r.rows[0].rssMiB) : NaN;
  return [
    `The executor as the image starts it (server/main.ts compiled by tsc, defaults: StepRun store, Lease, Application watch), against the local control plane, no step running; RSS ${r.settleS} s after /readyz answers, median of 5 samples a second apart; ${r.rows[0]?.rssMiB.length ?? 0} rounds, variants interleaved, median of the rounds. Goal (issue 16): ≤ 96 MiB.`,
    "",
    "| variant | idle RSS | rounds (MiB) | vs the image |",
    "|---|---|---|---|",
    ...r.rows.map((x) => `| ${x.variant} | ${fmt(median(x.rssMiB))} MiB | ${x.rssMiB.map((v) => fmt(v)).join(" / ")} | ${x === r.rows[0] ? "–" : `${median(x.rssMiB) >= base ? "+" : "−"}${fmt(Math.abs(median(x.rssMiB) - base))} MiB`} |`),
    "",
    "Before (2026-12-07, one run of the same method, with a kubeconfig whose API server does not answer, so the young generation had not grown): 156 MiB with @kubernetes/client-node as the kube client, both CEL workers started at the first evaluation and kept, Octokit imported at start. Now the executor talks to the API server with server/kube/api-client.ts (JSON over one kept-alive agent, watches), CEL workers start when evaluations wait and stop after 30 s idle, Octokit loads with the first github-actions step and CEL's library with the first expression (96.5 → 90.4 MiB, measured the same way on 2026-12-07), and the image caps V8's young generation (its CPU cost under load: §3's `node --max-semi-space-size` rows).",
  ].join("\n");
}
