// Entry point: configuration → wiring → listen; graceful shutdown on SIGTERM/SIGINT.
// The only file that reads the environment.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createApp } from "./app.js";
import { ConfigError, loadConfig, usage } from "./config.js";
import { RunEngine } from "./engine.js";
import { createHttpClient } from "./http-client.js";
import { createKubeReader, loadKubeConfig } from "./kube.js";
import { createLogger } from "./log.js";
import { MemoryRunStore } from "./runs.js";
import { stepKinds } from "../steps/index.js";

async function main() {
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`step-executor: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (config === "help") {
    process.stdout.write(usage() + "\n");
    return;
  }
  const log = createLogger(config.logLevel);
  let kube;
  try {
    kube = createKubeReader(loadKubeConfig(config.kubeconfig));
  } catch (err) {
    process.stderr.write(`step-executor: cannot load a kubeconfig (${(err as Error).message}); set KUBECONFIG or --kubeconfig, or run in a cluster\n`);
    process.exit(2);
  }
  const http = createHttpClient({ allowLinkLocal: config.allowLinkLocal });
  const engine = new RunEngine({
    store: new MemoryRunStore(),
    kube,
    http,
    log,
    tuning: { pollIntervalMs: config.pollIntervalMs, secretWaitMs: config.secretWaitMs },
    firstAnswerWaitMs: config.firstAnswerWaitMs,
  });
  const app = createApp({ kinds: stepKinds, engine, tokens: config.tokens, log, maxBodyBytes: config.maxBodyBytes });
  const server = app.listen(config.port, config.host);
  server.on("error", (err: NodeJS.ErrnoException) => {
    const hint = err.code === "EADDRINUSE" ? `; port ${config.port} is in use: choose another with --port or STEP_EXECUTOR_PORT` : "";
    process.stderr.write(`step-executor: cannot listen on ${config.host}:${config.port}: ${err.message}${hint}\n`);
    process.exit(1);
  });
  await once(server, "listening");
  const addr = server.address() as AddressInfo;
  log.info({ address: addr.address, port: addr.port, kinds: [...stepKinds.keys()] }, "step executor listening");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: no new runs; waiting for running steps");
    // Keep answering polls while draining, so waiting steps see their results.
    await engine.drain(config.shutdownGraceMs);
    server.close();
    server.closeAllConnections();
    await http.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`step-executor: ${(err as Error).message}\n`);
  process.exit(1);
});
