// Configuration from flags and environment variables (flags win), with defaults that suit an
// in-cluster Deployment. Only main.ts calls this.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseDuration } from "./shared/duration.js";
import { AllowListError, OutboundPolicy } from "./outbound/outbound-policy.js";

export interface Config {
  host: string;
  port: number;
  tokens: string[];
  kubeconfig?: string;
  logLevel: string;
  pollIntervalMs: number;
  /** Objects followed by a watch at once; beyond, waits poll. */
  maxObjectWatches: number;
  /** Most runs worked on at once; past it new steps wait (--max-runs). */
  maxRuns: number;
  secretWaitMs: number;
  firstAnswerWaitMs: number;
  shutdownGraceMs: number;
  maxBodyBytes: number;
  allowLinkLocal: boolean;
  /** Failure messages of steps that sent secretHeaders quote the response body (else it is withheld). */
  bodyExcerptWithSecrets: boolean;
  /** Loopback/private/cluster-internal targets steps may call anyway (outbound-policy.ts). */
  outboundAllow: string[];
  /** Outbound requests in flight, and waiting, per target host. */
  outboundHostConcurrency: number;
  outboundHostQueue: number;
  /** Where run records live: "kube" (StepRuns, any number of replicas) or "memory" (one replica). */
  runStore: "kube" | "memory";
  /** This process's name as the holder of runs; default: host name plus a random part. */
  identity?: string;
  /** The namespace of the executors' Leases. */
  leaseNamespace: string;
  /** A replica that did not renew its Lease for this long is dead: its runs are taken over. */
  leaseDurationMs: number;
  /** How often runs without a live executor are looked for (and finished ones pruned). */
  sweepIntervalMs: number;
  /** Finished run records are kept this long, and at most `runMaxFinished` of them. */
  runRetentionMs: number;
  runMaxFinished: number;
  /** Patch the Application when a run finishes, so KubeVela polls the step at once. */
  wake: boolean;
  /** Steps with side effects start on the second poll of a session, once KubeVela stored it. */
  confirmSession: boolean;
  /** Kubernetes Events on the Application for a step's start, retries and end. */
  events: boolean;
  /** Kinds apply-and-wait applies although refused by default (RBAC, Secret, quotas). */
  applyAllowKinds: string[];
  /** Accept the master token as a bearer (direct clients, benchmarks); signed requests need no such thing. */
  bearerAuth: boolean;
  /** vela-core's AuthenticateApplication feature is on: Applications without an identity are read for as `authenticationDefaultUser`. */
  authenticateApplication: boolean;
  authenticationDefaultUser: string;
  /** CEL evaluation (cel-pool.ts): worker threads, deadline per evaluation, heap per worker. */
  celWorkers: number;
  celTimeoutMs: number;
  celHeapMiB: number;
}

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** Every flag: its environment variable, default and help (usage() and docs/configuration.md). */
export const configOptions = {
  host: { type: "string", env: "STEP_EXECUTOR_HOST", default: "0.0.0.0", help: "address to listen on" },
  port: { type: "string", env: "STEP_EXECUTOR_PORT", default: "8080", help: "port to listen on" },
  token: { type: "string", env: "STEP_EXECUTOR_TOKEN", help: "shared token (comma-separated: current,previous)" },
  "token-file": { type: "string", env: "STEP_EXECUTOR_TOKEN_FILE", help: "file holding the token(s)" },
  kubeconfig: { type: "string", env: "", help: "kubeconfig path (default: $KUBECONFIG, else ~/.kube/config, else the pod's ServiceAccount); its user may use a token, a token file, a client certificate or an exec credential plugin" },
  "log-level": { type: "string", env: "STEP_EXECUTOR_LOG_LEVEL", default: "info", help: "trace|debug|info|warn|error" },
  "poll-interval": { type: "string", env: "STEP_EXECUTOR_POLL_INTERVAL", default: "1s", help: "how often a waiting step re-reads an object it cannot watch (past --max-object-watches, or list/watch not allowed)" },
  "max-object-watches": { type: "string", env: "STEP_EXECUTOR_MAX_OBJECT_WATCHES", default: "1000", help: "objects followed by a watch at once (one API server connection each, shared by the steps waiting on it); beyond it, waits poll" },
  "max-runs": { type: "string", env: "STEP_EXECUTOR_MAX_RUNS", default: "1000", help: "most runs worked on at once (each waiting step is one; memory grows with them, docs/operations.md \"Sizing\"); past it a new step waits with the message 'executor at capacity (N runs); waiting' and starts on a later poll" },
  "secret-wait": { type: "string", env: "STEP_EXECUTOR_SECRET_WAIT", default: "5m", help: "how long a step waits for a missing Secret" },
  "first-answer-wait": { type: "string", env: "STEP_EXECUTOR_FIRST_ANSWER_WAIT", default: "1s", help: "how long the first poll of a run waits for a quick result (a wait answers as soon as it has looked once)" },
  "shutdown-grace": { type: "string", env: "STEP_EXECUTOR_SHUTDOWN_GRACE", default: "20s", help: "how long shutdown waits for running steps" },
  "max-body": { type: "string", env: "STEP_EXECUTOR_MAX_BODY_BYTES", default: "1048576", help: "largest request body accepted" },
  "allow-link-local": { type: "boolean", env: "STEP_EXECUTOR_ALLOW_LINK_LOCAL", help: "allow outbound calls to link-local (metadata) addresses" },
  "body-excerpt-with-secrets": { type: "boolean", env: "STEP_EXECUTOR_BODY_EXCERPT_WITH_SECRETS", help: "quote the response body in failure messages of http-request steps that send secretHeaders (off: the body is withheld, since a target may echo the secret)" },
  "outbound-allow": { type: "string", env: "STEP_EXECUTOR_OUTBOUND_ALLOW", default: "", help: "loopback/private/cluster-internal targets steps may call: comma-separated CIDRs, addresses, host names, *.suffix" },
  "outbound-host-concurrency": { type: "string", env: "STEP_EXECUTOR_OUTBOUND_HOST_CONCURRENCY", default: "16", help: "outbound requests in flight per target host" },
  "outbound-host-queue": { type: "string", env: "STEP_EXECUTOR_OUTBOUND_HOST_QUEUE", default: "256", help: "outbound requests waiting per target host; beyond it a request is refused and retried later" },
  "run-store": { type: "string", env: "STEP_EXECUTOR_RUN_STORE", default: "kube", help: "kube (StepRun records: several replicas, survives restarts) or memory (one replica)" },
  identity: { type: "string", env: "STEP_EXECUTOR_IDENTITY", help: "this process's name as holder of runs (default: host name + random)" },
  "lease-namespace": { type: "string", env: "STEP_EXECUTOR_LEASE_NAMESPACE", help: "namespace of the executors' Leases (default: the pod's, else vela-system)" },
  "lease-duration": { type: "string", env: "STEP_EXECUTOR_LEASE_DURATION", default: "15s", help: "a replica silent this long is dead; its runs are taken over" },
  "sweep-interval": { type: "string", env: "STEP_EXECUTOR_SWEEP_INTERVAL", default: "5s", help: "how often runs without a live executor are looked for" },
  "run-retention": { type: "string", env: "STEP_EXECUTOR_RUN_RETENTION", default: "24h", help: "how long records of finished runs are kept" },
  "run-max-finished": { type: "string", env: "STEP_EXECUTOR_RUN_MAX_FINISHED", default: "5000", help: "most records of finished runs kept" },
  wake: { type: "string", env: "STEP_EXECUTOR_WAKE", default: "on", help: "on|off: annotate the Application when a run finishes so KubeVela polls at once" },
  "confirm-session": { type: "string", env: "STEP_EXECUTOR_CONFIRM_SESSION", default: "on", help: "on|off: side effects wait for KubeVela's second poll (off: ~1 s faster, not safe across a controller restart)" },
  events: { type: "string", env: "STEP_EXECUTOR_EVENTS", default: "on", help: "on|off: Kubernetes Events on the Application for a step's start, retries and end" },
  "apply-allow-kinds": { type: "string", env: "STEP_EXECUTOR_APPLY_ALLOW_KINDS", default: "", help: "kinds apply-and-wait applies although refused by default (Role, RoleBinding, Secret, ResourceQuota, LimitRange): comma-separated Kind or group/Kind" },
  "bearer-auth": { type: "string", env: "STEP_EXECUTOR_BEARER_AUTH", default: "off", help: "on|off: also accept the token itself as `Authorization: Bearer` (direct clients); off, only requests signed with a namespace's key are accepted" },
  "authenticate-application": { type: "string", env: "STEP_EXECUTOR_AUTHENTICATE_APPLICATION", default: "off", help: "on|off: set as KubeVela's AuthenticateApplication feature gate; on, steps of an Application that names no user or ServiceAccount read as --authentication-default-user, as KubeVela acts for it" },
  "authentication-default-user": { type: "string", env: "STEP_EXECUTOR_AUTHENTICATION_DEFAULT_USER", default: "kubevela:vela-core", help: "set as vela-core's --authentication-default-user: whom KubeVela (and so the executor) acts as for an Application that names no identity, with --authenticate-application on" },
  "cel-workers": { type: "string", env: "STEP_EXECUTOR_CEL_WORKERS", default: "2", help: "worker threads evaluating CEL conditions and outputs (off the event loop)" },
  "cel-timeout": { type: "string", env: "STEP_EXECUTOR_CEL_TIMEOUT", default: "1s", help: "longest one CEL evaluation may run; past it the step fails and the worker is replaced" },
  "cel-heap": { type: "string", env: "STEP_EXECUTOR_CEL_HEAP_MIB", default: "32", help: "heap of each CEL worker in MiB; an evaluation needing more fails its step (keep workers x (heap + ~20) within the pod's memory)" },
  help: { type: "boolean", env: "", help: "show this help" },
} as const;

export class ConfigError extends Error {}

export function usage(): string {
  return "usage: step-executor [flags]\n" + Object.entries(configOptions)
    .map(([k, o]) => `  --${k.padEnd(18)} ${o.help}${o.env ? ` (env ${o.env}` + ("default" in o ? `, default ${o.default})` : ")") : ""}`)
    .join("\n");
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    const parseOpts = Object.fromEntries(Object.entries(configOptions).map(([k, o]) => [k, { type: o.type }]));
    values = parseArgs({ args: argv, options: parseOpts as never, strict: true, allowPositionals: false }).values as never;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${usage()}`);
  }
  if (values.help) return "help";
  const get = (k: keyof typeof configOptions): string | undefined => {
    const o = configOptions[k];
    const v = values[k] ?? (o.env ? env[o.env] : undefined);
    if (typeof v === "boolean") return v ? "true" : "false";
    return v ?? ("default" in o ? o.default : undefined);
  };
  const duration = (k: keyof typeof configOptions) => {
    try { return parseDuration(get(k)!, `--${k}`); } catch (err) { throw new ConfigError((err as Error).message); }
  };
  let tokenText = get("token");
  const tokenFile = get("token-file");
  if (!tokenText && tokenFile) {
    try { tokenText = readFileSync(tokenFile, "utf8"); } catch (err) {
      throw new ConfigError(`cannot read --token-file ${tokenFile}: ${(err as Error).message}`);
    }
  }
  const tokens = (tokenText ?? "").split(/[,\n]/).map((t) => t.trim()).filter(Boolean);
  if (tokens.length === 0) {
    throw new ConfigError("no token configured: set STEP_EXECUTOR_TOKEN (or --token / --token-file) to the token given to `vela addon enable step-executor token=...`");
  }
  if (tokens.some((t) => t.length < 16)) throw new ConfigError("the token must be at least 16 characters long (e.g. `openssl rand -hex 32`)");
  const port = Number(get("port"));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port: "${get("port")}" is not a port number`);
  const maxBodyBytes = Number(get("max-body"));
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1024) throw new ConfigError(`--max-body: "${get("max-body")}" must be an integer >= 1024`);
  const outboundAllow = get("outbound-allow")!.split(",").map((e) => e.trim()).filter(Boolean);
  try { new OutboundPolicy({ allowLinkLocal: false, allow: outboundAllow }); } catch (err) {
    if (err instanceof AllowListError) throw new ConfigError(`--outbound-allow: ${err.message}`);
    throw err;
  }
  const positive = (k: "outbound-host-concurrency" | "outbound-host-queue" | "max-object-watches" | "max-runs" | "cel-workers" | "cel-heap", min: number) => {
    const n = Number(get(k));
    if (!Number.isInteger(n) || n < min) throw new ConfigError(`--${k}: "${get(k)}" must be an integer >= ${min}`);
    return n;
  };
  const runStore = get("run-store");
  if (runStore !== "kube" && runStore !== "memory") throw new ConfigError(`--run-store: "${runStore}" is not kube or memory`);
  const onOff = (k: "wake" | "confirm-session" | "events" | "bearer-auth" | "authenticate-application") => {
    const v = get(k)!.toLowerCase();
    if (!["on", "off", "true", "false"].includes(v)) throw new ConfigError(`--${k}: "${get(k)}" is not on or off`);
    return v === "on" || v === "true";
  };
  const runMaxFinished = Number(get("run-max-finished"));
  if (!Number.isInteger(runMaxFinished) || runMaxFinished < 0) throw new ConfigError(`--run-max-finished: "${get("run-max-finished")}" must be a non-negative integer`);
  const identity = get("identity");
  if (identity !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(identity)) {
    throw new ConfigError(`--identity: "${identity}" must be a DNS label (lower-case letters, digits and '-', at most 63)`);
  }
  let leaseNamespace = get("lease-namespace");
  if (!leaseNamespace) {
    try { leaseNamespace = readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim(); } catch { /* not in a pod */ }
  }
  const celTimeoutMs = duration("cel-timeout");
  if (celTimeoutMs < 10 || celTimeoutMs > 60_000) throw new ConfigError(`--cel-timeout: "${get("cel-timeout")}" must be between 10ms and 1m`);
  const leaseDurationMs = duration("lease-duration");
  if (leaseDurationMs < 1000) throw new ConfigError("--lease-duration: must be at least 1s");
  const config: Config = {
    host: get("host")!,
    port,
    tokens,
    logLevel: get("log-level")!,
    pollIntervalMs: duration("poll-interval"),
    maxObjectWatches: positive("max-object-watches", 0),
    maxRuns: positive("max-runs", 1),
    secretWaitMs: duration("secret-wait"),
    firstAnswerWaitMs: duration("first-answer-wait"),
    shutdownGraceMs: duration("shutdown-grace"),
    maxBodyBytes,
    allowLinkLocal: get("allow-link-local") === "true",
    bodyExcerptWithSecrets: get("body-excerpt-with-secrets") === "true",
    outboundAllow,
    outboundHostConcurrency: positive("outbound-host-concurrency", 1),
    outboundHostQueue: positive("outbound-host-queue", 0),
    runStore,
    leaseNamespace: leaseNamespace || "vela-system",
    leaseDurationMs,
    sweepIntervalMs: duration("sweep-interval"),
    runRetentionMs: duration("run-retention"),
    runMaxFinished,
    wake: onOff("wake"),
    confirmSession: onOff("confirm-session"),
    events: onOff("events"),
    applyAllowKinds: get("apply-allow-kinds")!.split(",").map((e) => e.trim()).filter(Boolean),
    bearerAuth: onOff("bearer-auth"),
    authenticateApplication: onOff("authenticate-application"),
    authenticationDefaultUser: get("authentication-default-user")!,
    celWorkers: positive("cel-workers", 1),
    celTimeoutMs,
    celHeapMiB: positive("cel-heap", 16),
  };
  const badKind = config.applyAllowKinds.find((k) => !/^([a-z0-9.-]+\/)?([A-Z][A-Za-z0-9]*|\*)$/.test(k));
  if (badKind) throw new ConfigError(`--apply-allow-kinds: "${badKind}" is not Kind or group/Kind (e.g. Role, rbac.authorization.k8s.io/RoleBinding)`);
  if (identity) config.identity = identity;
  const kubeconfig = get("kubeconfig");
  if (kubeconfig) config.kubeconfig = kubeconfig;
  return config;
}
