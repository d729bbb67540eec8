// An executor (createApp + RunEngine, real kube client) serving only the given step kinds, so a
// test can run the github-actions step with its own GitHub hub and short intervals. Polls are
// signed exactly as the step definitions sign them.
import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { createApp } from "../../server/app.js";
import { sign } from "../../server/auth.js";
import { RunEngine } from "../../server/engine.js";
import { createHttpClient } from "../../server/http-client.js";
import { createKubeReader, loadKubeConfig } from "../../server/kube.js";
import { MemoryRunStore } from "../../server/runs.js";
import type { RunIdentity, StepKind, StepTuning } from "../../steps/types.js";
import { kubeconfigPath } from "../fixtures/kube.js";

const TOKEN = "github-test-token-0123456789";

export interface Answer {
  status: number;
  body: { phase: string; message: string; outputs: Record<string, unknown> };
}

export async function startExecutorWith(kinds: StepKind[], tuning: Partial<StepTuning> = {}) {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const http = createHttpClient();
  const engine = new RunEngine({
    store: new MemoryRunStore(),
    kube: createKubeReader(loadKubeConfig(kubeconfigPath())),
    http,
    log,
    tuning: { pollIntervalMs: 100, secretWaitMs: 1_000, ...tuning },
    firstAnswerWaitMs: 0,
  });
  const app = createApp({ kinds: new Map(kinds.map((k) => [k.kind, k])), engine, tokens: [TOKEN], log, maxBodyBytes: 1 << 20 });
  const server: Server = await new Promise((r) => { const s = app.listen(0, "127.0.0.1", () => r(s)); });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function poll(kind: string, parameter: unknown, run: RunIdentity): Promise<Answer> {
    const body = JSON.stringify({ run, parameter });
    const res = await fetch(`${url}/v1/steps/${kind}`, { method: "POST", body, headers: { "content-type": "application/json", "x-step-executor-signature": sign(TOKEN, body) } });
    return { status: res.status, body: (await res.json()) as Answer["body"] };
  }

  return {
    poll,
    /** Polls every 50 ms until the run leaves `running`; returns the final answer and every distinct message. */
    async pollUntilDone(kind: string, parameter: unknown, run: RunIdentity, limitMs = 20_000) {
      const messages: string[] = [];
      const end = Date.now() + limitMs;
      for (;;) {
        const answer = await poll(kind, parameter, run);
        if (messages.at(-1) !== answer.body.message) messages.push(answer.body.message);
        if (answer.status !== 200 || answer.body.phase !== "running") return { answer, messages };
        if (Date.now() > end) throw new Error(`still running after ${limitMs} ms: ${answer.body.message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      await engine.drain(0);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await http.close();
    },
  };
}

export function newRun(namespace: string): RunIdentity {
  return { namespace, application: "app", step: "gha", session: randomUUID().slice(0, 10) };
}
