// 7. KubeVela's CPU per evaluation of a step's template: what each poll of a waiting step costs the
// controller itself, ours against the built-in way of waiting. Measured in KubeVela's own step
// runner (test/addon/harness: the workflow task runner and providers of v1.10.9, an in-memory API)
// as the harness's user+system CPU for N polls minus that of 1 poll, best of 3. The harness is the
// controller's evaluation alone: a real reconcile adds its status write and workflow-context commit.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { namespaceKey } from "../server/http/auth.js";
import { recordName } from "../server/runs/kube-store.js";
import { harnessOrFail } from "../test/addon/fixture.js";
import { fmt } from "./lib/common.js";
import { WAIT_OBJECT } from "./lib/variants.js";

export interface TemplateCpuRow { variant: string; msPerEvaluation: number; polls: number; message: string }
export interface TemplateCpuResult { polls: number; rows: TemplateCpuRow[] }

const TOKEN = "t".repeat(64);
const run = { namespace: "demo", application: "web", step: "the-step", session: "session-1" };

/** CPU seconds (user + system) of one harness run. */
function harnessCpu(harness: string, input: string): Promise<{ cpu: number; polls: { message?: string }[] }> {
  return new Promise((resolve, reject) => {
    const c = spawn("/usr/bin/time", ["-f", "TIME %U %S", harness]);
    let stdout = "", stderr = "";
    c.stdout.on("data", (d: Buffer) => (stdout += d));
    c.stderr.on("data", (d: Buffer) => (stderr += d));
    c.on("error", reject);
    c.on("close", () => {
      const m = /TIME ([\d.]+) ([\d.]+)/.exec(stderr);
      if (!m) return reject(new Error(`the harness failed: ${stderr.slice(-1000)}`));
      resolve({ cpu: Number(m[1]) + Number(m[2]), polls: (JSON.parse(stdout) as { polls: { message?: string }[] }).polls });
    });
    c.stdin.end(input);
  });
}

export async function templateCpu(addonDir: string, smoke: boolean): Promise<TemplateCpuResult> {
  const harness = await harnessOrFail();
  const polls = smoke ? 5 : 301;
  // A stand-in executor for the polls that call it: always "running".
  const stub = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ phase: "running", message: "waiting for ConfigMap demo/flag", outputs: {} }));
  });
  await new Promise<void>((r) => stub.listen(0, "127.0.0.1", () => r()));
  try {
    const url = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
    const dir = mkdtempSync(join(tmpdir(), "template-cpu-"));
    const waitDef = join(dir, "bench-wait-object.cue");
    writeFileSync(waitDef, WAIT_OBJECT);
    const secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "step-executor", namespace: "demo", annotations: { "step-executor.oam.dev/url": url } }, data: { key: Buffer.from(namespaceKey(TOKEN, "demo")).toString("base64") } };
    const held = (kind: string) => ({ apiVersion: "step-executor.oam.dev/v1alpha1", kind: "StepRun", metadata: { name: recordName(run), namespace: "demo" },
      spec: { application: run.application, step: run.step, session: run.session, kind },
      status: { attempts: 1, outputs: {}, phase: "running", holder: "executor-a", acknowledged: true, message: "waiting for ConfigMap demo/flag: condition is false" } });
    const flag = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "flag", namespace: "demo" }, data: { enabled: "false" } };
    const ours = (kind: string) => join(addonDir, "definitions", `${kind}.cue`);
    const wait = { apiVersion: "v1", kind: "ConfigMap", name: "flag", condition: "object.data.enabled == 'true'" };
    const call = { url: "https://example.com/hook", method: "POST", body: { release: "2026.11" } };
    const variants: [string, object][] = [
      ["`read-object-and-wait`, a waiting poll (answered from its StepRun)", { definition: ours("read-object-and-wait"), properties: wait, objects: [secret, held("read-object-and-wait"), flag] }],
      ["`http-request`, a waiting poll (answered from its StepRun)", { definition: ours("http-request"), properties: call, objects: [secret, held("http-request")] }],
      ["`read-object-and-wait`, a starting poll (calls the executor)", { definition: ours("read-object-and-wait"), properties: wait, objects: [secret, flag] }],
      ["built-in poll: `kube.#Read` + `#ConditionalWait`", { definition: waitDef, properties: { name: "flag" }, objects: [flag] }],
    ];
    const rows: TemplateCpuRow[] = [];
    for (const [variant, s] of variants) {
      const input = (n: number) => JSON.stringify({ namespace: run.namespace, app: run.application, step: run.step, session: run.session, outputs: [], ...s, polls: n });
      const one = await harnessCpu(harness, input(1));
      let best: Awaited<ReturnType<typeof harnessCpu>> | undefined;
      for (let i = 0; i < (smoke ? 1 : 3); i++) {
        const r = await harnessCpu(harness, input(polls));
        if (!best || r.cpu < best.cpu) best = r;
      }
      const extra = best!.polls.length - one.polls.length;
      if (extra < 1) throw new Error(`${variant}: the step did not keep waiting (${JSON.stringify(best!.polls.at(-1))})`);
      rows.push({ variant, msPerEvaluation: ((best!.cpu - one.cpu) / extra) * 1000, polls: best!.polls.length, message: best!.polls.at(-1)?.message ?? "" });
    }
    return { polls, rows };
  } finally {
    stub.close();
  }
}

export function templateCpuMarkdown(r: TemplateCpuResult): string {
  const builtin = r.rows.find((x) => x.variant.startsWith("built-in"));
  return [
    `Each variant evaluated ${r.polls} times by KubeVela v1.10.9's own step runner (test/addon/harness); CPU (user + system) of those polls minus one poll's, best of 3, per evaluation. A waiting step is evaluated on KubeVela's backoff (1 s for its first polls, then up to every 60 s), so this is what each waiting step costs the controller per poll; a real reconcile adds the Application's status write and the workflow context's commit, the same for every kind of step.`,
    "",
    "| variant | CPU per evaluation | × built-in poll |",
    "|---|---|---|",
    ...r.rows.map((x) => `| ${x.variant} | ${fmt(x.msPerEvaluation)} ms | ${builtin ? fmt(x.msPerEvaluation / builtin.msPerEvaluation) : "–"} |`),
    "",
    "Before this section existed (same machine, same harness, one run, 2026-12-07): a waiting `read-object-and-wait` poll cost 15.8 ms with the template as it was, 11.3 ms after the two changes it measured — comment lines left out of the assembled definitions (KubeVela parses the stored template on every evaluation) and the whole call path (the namespace's Secret, the readiness gate, the signed body, the call, the reading of an executor's answer) under one guard that a poll answered from its StepRun skips.",
  ].join("\n");
}
