// Entry point: configuration → wiring → listen; graceful shutdown on SIGTERM/SIGINT.
// The only file that reads the environment.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createApp } from "./http/app.js";
import { ApplicationWatch } from "./kubevela/application-watch.js";
import { NamespaceKeys } from "./http/namespace-keys.js";
import { followStepLifecycle } from "./kubevela/step-lifecycle.js";
import { ConfigError, loadConfig, usage } from "./config.js";
import { newExecutorIdentity, RunEngine, type EngineDeps } from "./runs/engine.js";
import { ApplicationEvents } from "./observe/events.js";
import { GithubHub } from "../steps/github-actions/github-client.js";
import { createHttpClient } from "./outbound/http-client.js";
import { KubeRunStore, ReplicaLeases } from "./runs/kube-store.js";
import { KubeClient } from "./kube/api-client.js";
import { createKubeReader } from "./kube/kube.js";
import { createLogger } from "./observe/log.js";
import { createMetrics, githubResource, metricsObserver } from "./observe/metrics.js";
import { observers } from "./observe/observe.js";
import { MemoryRunStore } from "./runs/store.js";
import { ObjectWatches } from "./kube/object-watch.js";
import { ApplicationLookup } from "./kubevela/applications.js";
import { ApplicationSessionProbe } from "./kubevela/session-probe.js";
import { ApplicationWaker, noWake } from "./kubevela/wake.js";
import { closeCel, configureCel } from "./cel/cel.js";
import { createStepKinds } from "../steps/index.js";

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
  configureCel({ size: config.celWorkers, timeoutMs: config.celTimeoutMs, maxHeapMiB: config.celHeapMiB });
  const identity = config.identity ?? newExecutorIdentity();
  const log = createLogger(config.logLevel).child({ executor: identity });
  let kube;
  let kc;
  // One lookup of Applications for the run store, Events and reads: one GET per Application, not per run and user.
  let applications;
  // One set of object watches for the process: steps waiting on one object share its watch.
  const watches = new ObjectWatches({ maxWatches: config.maxObjectWatches, pollIntervalMs: config.pollIntervalMs });
  try {
    kc = KubeClient.load(config.kubeconfig);
    applications = new ApplicationLookup(kc);
    kube = createKubeReader(kc, watches, applications);
  } catch (err) {
    process.stderr.write(`step-executor: cannot load a kubeconfig (${(err as Error).message}); set KUBECONFIG or --kubeconfig, or run in a cluster\n`);
    process.exit(2);
  }
  const metrics = createMetrics({ objectsFollowed: () => watches.counts() });
  const http = createHttpClient({
    allowLinkLocal: config.allowLinkLocal,
    allow: config.outboundAllow,
    hostConcurrency: config.outboundHostConcurrency,
    hostQueue: config.outboundHostQueue,
  }, metrics);
  // GitHub calls go through the same client: one outbound policy, one set of host limits.
  const githubHub = new GithubHub({
    http,
    onRateLimit: (resource, remaining) => metrics.githubRateRemaining.set({ resource: githubResource(resource) }, remaining),
  });
  const stepKinds = createStepKinds({ githubHub });
  const events = config.events ? new ApplicationEvents(kc, log, identity, metrics, { applications }) : undefined;
  const retention = { retentionMs: config.runRetentionMs, maxFinished: config.runMaxFinished };
  const waker = config.wake ? new ApplicationWaker(kc, log) : noWake;
  // Every namespace with an Application gets its own key to sign steps with (server/http/auth.ts).
  const applicationWatch = new ApplicationWatch(kc, log);
  const keys = new NamespaceKeys(kc, log, {
    tokens: config.tokens, configNamespace: "vela-system", configName: "step-executor", resyncMs: 5 * 60_000,
  }, applicationWatch);
  let leases: ReplicaLeases | undefined;
  const deps: EngineDeps = {
    store: new MemoryRunStore(retention),
    kube,
    http,
    log,
    tuning: { pollIntervalMs: config.pollIntervalMs, secretWaitMs: config.secretWaitMs, applyAllowKinds: config.applyAllowKinds, bodyExcerptWithSecrets: config.bodyExcerptWithSecrets },
    firstAnswerWaitMs: config.firstAnswerWaitMs,
    identity,
    waker,
    confirmSessions: config.confirmSession,
    verifyClaims: true,
    ...(config.authenticateApplication ? { authenticationDefaultUser: config.authenticationDefaultUser } : {}),
    // Starts a confirmed side effect when KubeVela's status shows the session, not a backoff round later.
    sessionProbe: new ApplicationSessionProbe(kc, applicationWatch),
    observer: observers(metricsObserver(metrics), ...(events ? [events.observer()] : [])),
    maxRuns: config.maxRuns,
  };
  metrics.maxRuns.set(config.maxRuns);
  if (config.runStore === "kube") {
    leases = new ReplicaLeases(kc, log, { identity, namespace: config.leaseNamespace, durationMs: config.leaseDurationMs, requestTimeoutMs: 10_000 });
    try {
      await leases.start();
    } catch (err) {
      process.stderr.write(`step-executor: ${(err as Error).message}; the executor needs its Lease (set --lease-namespace to an existing namespace it may write Leases in, or --run-store memory for a single replica)\n`);
      process.exit(1);
    }
    Object.assign(deps, { store: new KubeRunStore(kc, log, { ...retention, applications }), liveness: leases, handOver: true });
  }
  const engine = new RunEngine(deps);
  // Runs whose step KubeVela ended on its own (timeout, terminate, restart, deletion) stop at once.
  followStepLifecycle(applicationWatch, engine);
  const app = createApp({ kinds: stepKinds, engine, tokens: config.tokens, bearerAuth: config.bearerAuth, log, maxBodyBytes: config.maxBodyBytes, metrics, ready: () => leases?.healthy() ?? true });
  const server = app.listen(config.port, config.host);
  server.on("error", (err: NodeJS.ErrnoException) => {
    const hint = err.code === "EADDRINUSE" ? `; port ${config.port} is in use: choose another with --port or STEP_EXECUTOR_PORT` : "";
    process.stderr.write(`step-executor: cannot listen on ${config.host}:${config.port}: ${err.message}${hint}\n`);
    process.exit(1);
  });
  await once(server, "listening");
  const addr = server.address() as AddressInfo;
  log.info({ address: addr.address, port: addr.port, kinds: [...stepKinds.keys()], runStore: config.runStore, wake: config.wake, events: config.events, outboundAllow: config.outboundAllow }, "step executor listening");
  // Resumes runs whose executor is gone (wakes their Applications so the next poll takes them over).
  if (config.runStore === "kube") engine.startSweeping(config.sweepIntervalMs);
  keys.start();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, running: engine.activeRuns }, leases ? "shutting down: no new runs; handing running steps over" : "shutting down: no new runs; waiting for running steps");
    // Keep answering polls while draining, so waiting steps see their results.
    await engine.drain(config.shutdownGraceMs);
    // Then the Lease goes: whatever could not be released is taken over at once.
    await leases?.stop();
    await keys.stop();
    await applicationWatch.stop();
    watches.close();
    await waker.idle();
    await events?.idle();
    server.close();
    server.closeAllConnections();
    await http.close();
    await githubHub.close();
    await closeCel();
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
