// The HTTP surface: routes, authentication and one error middleware. No listen here.
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { authenticate, SIGNATURE_HEADER } from "./auth.js";
import type { RunEngine } from "../runs/engine.js";
import { describeError, InputError, NotFoundError, PayloadTooLargeError, StepExecutorError } from "../shared/errors.js";
import type { Metrics } from "../observe/metrics.js";
import { SessionAliases } from "../runs/sessions.js";
import { compileValidator } from "./validation.js";
import type { StepKind } from "../contract/step.js";
import type { RunIdentity } from "../contract/run.js";

export interface AppDeps {
  kinds: ReadonlyMap<string, StepKind>;
  engine: RunEngine;
  tokens: readonly string[];
  /** Accept the token itself as a bearer (--bearer-auth). */
  bearerAuth?: boolean;
  log: Logger;
  maxBodyBytes: number;
  /** Extra readiness check (e.g. the kube client can reach the API server). */
  ready?: () => boolean;
  metrics?: Metrics;
}

const identityPart = { type: "string", minLength: 1, maxLength: 253 };
const validateEnvelope = compileValidator<{ run: RunIdentity & { revision?: string }; parameter: unknown }>({
  type: "object",
  required: ["run", "parameter"],
  additionalProperties: false,
  properties: {
    run: {
      type: "object",
      required: ["namespace", "application", "step", "session"],
      additionalProperties: false,
      // `revision` (context.appRevision) is optional: it only helps recognise KubeVela's
      // duplicate sessions (server/runs/sessions.ts).
      properties: {
        // Names that go into API paths are path-safe (server/kube/object-ref.ts) before anything reads them.
        namespace: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" },
        application: { type: "string", pattern: "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$" },
        step: identityPart, session: identityPart, revision: { type: "string", maxLength: 253 },
      },
    },
    parameter: { type: "object" },
  },
});

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  const sessions = new SessionAliases();
  const validators = new Map([...deps.kinds].map(([k, kind]) => [k, compileValidator<unknown>(kind.schema)]));

  app.get("/healthz", (_req, res) => { res.json({ status: "ok" }); });
  app.get("/readyz", (_req, res) => {
    const ready = !deps.engine.isDraining && (deps.ready?.() ?? true);
    res.status(ready ? 200 : 503).json({ status: ready ? "ready" : "not ready" });
  });

  if (deps.metrics) {
    const { registry } = deps.metrics;
    app.get("/metrics", async (_req, res) => {
      res.set("Content-Type", registry.contentType).send(await registry.metrics());
    });
  }

  // Poll latency and outcome, by kind (unknown kinds are counted as "unknown").
  app.use("/v1/steps/:kind", (req, res, next) => {
    const m = deps.metrics;
    if (!m) return next();
    const kind = deps.kinds.has(req.params.kind ?? "") ? req.params.kind! : "unknown";
    const end = m.pollSeconds.startTimer({ kind });
    const json = res.json.bind(res);
    res.json = (body: { phase?: string }) => {
      end();
      m.polls.inc({ kind, status: String(res.statusCode), phase: body?.phase ?? "" });
      return json(body);
    };
    next();
  });

  app.post(
    "/v1/steps/:kind",
    express.raw({ type: () => true, limit: deps.maxBodyBytes }),
    async (req: Request<{ kind: string }>, res: Response) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      // Parsed before authentication: the signature is checked with the key of the namespace the body names.
      let parsed: unknown;
      let parseError: Error | undefined;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch (err) {
        parseError = err as Error;
      }
      const claimed = (parsed as { run?: { namespace?: unknown } } | null)?.run?.namespace;
      authenticate(deps.tokens, { authorization: req.get("authorization"), signature: req.get(SIGNATURE_HEADER) }, body,
        // A body that names no namespace is signed for "": a key no namespace's Secret holds.
        typeof claimed === "string" ? claimed : "", deps.bearerAuth);
      const kind = deps.kinds.get(req.params.kind);
      if (!kind) throw new NotFoundError(`unknown step kind "${req.params.kind}"; known kinds: ${[...deps.kinds.keys()].join(", ")}`);
      if (parseError) throw new InputError(`the request body is not valid JSON: ${parseError.message}`);
      checkDepth(parsed);
      const envelope = validateEnvelope(parsed, "request");
      const parameter = validators.get(kind.kind)!(envelope.parameter, "parameter");
      const { revision, ...identity } = envelope.run;
      const run = deps.engine.confirmsSessions ? identity : sessions.resolve(identity, revision, parameter);
      const view = await deps.engine.poll(kind, run, parameter);
      res.json(view);
    },
  );

  app.use((_req, _res) => { throw new NotFoundError("no such endpoint; steps are POSTed to /v1/steps/{kind}"); });

  // One error middleware maps typed errors to answers; nothing else reaches the client.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let status = 500;
    let message = "internal error in the step executor; see its logs";
    if (err instanceof StepExecutorError) {
      status = err.status;
      message = err.message;
    } else if (isBodyParserError(err)) {
      const tooLarge = err.type === "entity.too.large";
      status = tooLarge ? 413 : 400;
      message = tooLarge ? new PayloadTooLargeError(`the request body is larger than ${deps.maxBodyBytes} bytes`).message : `bad request body: ${err.message}`;
    } else {
      deps.log.error({ err: describeError(err), path: req.path }, "unexpected error");
    }
    res.status(status).json({ phase: status >= 500 ? "running" : "failed", message, outputs: {} });
  });
  return app;
}

/** Deepest JSON nesting accepted; deeper input would only exhaust stacks further down. */
export const MAX_JSON_DEPTH = 64;

/** Iterative, so hostile nesting cannot overflow the stack here. */
function checkDepth(value: unknown): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > MAX_JSON_DEPTH) throw new InputError(`the request body nests deeper than ${MAX_JSON_DEPTH} levels`);
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
}

function isBodyParserError(err: unknown): err is Error & { type: string } {
  return err instanceof Error && typeof (err as { type?: unknown }).type === "string" && typeof (err as { status?: unknown }).status === "number";
}
