// Validates traffic against GitHub's published OpenAPI description (@octokit/openapi,
// generated/api.github.com.json only — the package main requires all ten descriptions, ~400 MB).
// Only the operations the fake server serves are compiled (the whole document does not compile:
// some schemas use `nullable` without `type`).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export const SPEC_FILE = "@octokit/openapi/generated/api.github.com.json";

type Json = Record<string, unknown>;

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  pathNames: string[];
  operationId: string;
  params: { name: string; in: string; required: boolean; schema: Json }[];
  validatePath: ValidateFunction;
  validateQuery: ValidateFunction;
  body?: { required: boolean; validate: ValidateFunction };
  responses: Map<string, ValidateFunction | "no-content">;
}

export interface Matched {
  operation: Operation;
  pathParams: Record<string, string>;
}

let loaded: { spec: Json; ajv: Ajv } | undefined;

function load() {
  if (!loaded) {
    const spec = JSON.parse(readFileSync(createRequire(import.meta.url).resolve(SPEC_FILE), "utf8")) as Json;
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ $id: "gh", components: spec.components });
    loaded = { spec, ajv };
  }
  return loaded;
}

/** Points the document's local refs (`#/components/…`) at the schema registered as `gh`. */
function rebase<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema).replace(/"\$ref":"#\//g, '"$ref":"gh#/')) as T;
}

function deref(node: Json, spec: Json): Json {
  const ref = node.$ref;
  if (typeof ref !== "string") return node;
  let cur: unknown = spec;
  for (const part of ref.replace(/^#\//, "").split("/")) cur = (cur as Json)[part];
  return deref(cur as Json, spec);
}

export class OpenApiValidator {
  private readonly operations: Operation[] = [];

  /** `served`: [method, path template] pairs exactly as the description names them. */
  constructor(served: [string, string][]) {
    const { spec, ajv } = load();
    const paths = spec.paths as Record<string, Record<string, Json>>;
    for (const [method, template] of served) {
      const op = paths[template]?.[method.toLowerCase()];
      if (!op) throw new Error(`${method} ${template} is not in ${SPEC_FILE}`);
      const params = ((op.parameters ?? []) as Json[]).map((p) => deref(p, spec)) as Operation["params"];
      const group = (where: string) => {
        const ps = params.filter((p) => p.in === where);
        return ajv.compile(rebase({
          type: "object",
          properties: Object.fromEntries(ps.map((p) => [p.name, p.schema])),
          required: ps.filter((p) => p.required).map((p) => p.name),
        }));
      };
      const pathNames: string[] = [];
      const regex = new RegExp("^" + template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{(\w+)\}/g, (_m, n: string) => { pathNames.push(n); return "([^/]+)"; }) + "$");
      const operation: Operation = {
        method: method.toUpperCase(), template, regex, pathNames, operationId: String(op.operationId), params,
        validatePath: group("path"), validateQuery: group("query"), responses: new Map(),
      };
      const rb = op.requestBody ? deref(op.requestBody as Json, spec) : undefined;
      const rbSchema = (rb?.content as Record<string, Json> | undefined)?.["application/json"]?.schema;
      if (rb && rbSchema) operation.body = { required: rb.required === true, validate: ajv.compile(rebase(rbSchema)) };
      for (const [status, r] of Object.entries(op.responses as Record<string, Json>)) {
        const resp = deref(r, spec);
        const schema = (resp.content as Record<string, Json> | undefined)?.["application/json"]?.schema;
        operation.responses.set(status, schema ? ajv.compile(rebase(schema)) : "no-content");
      }
      this.operations.push(operation);
    }
    this.basicError = ajv.compile({ $ref: "gh#/components/schemas/basic-error" });
  }

  private readonly basicError: ValidateFunction;

  match(method: string, pathname: string): Matched | undefined {
    for (const operation of this.operations) {
      if (operation.method !== method.toUpperCase()) continue;
      const m = operation.regex.exec(pathname);
      if (!m) continue;
      const pathParams = Object.fromEntries(operation.pathNames.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      return { operation, pathParams };
    }
    return undefined;
  }

  /** Problems with a request (empty when it conforms). */
  validateRequest(method: string, url: URL, headers: Record<string, string | string[] | undefined>, body: string): { matched?: Matched; errors: string[] } {
    const where = `${method} ${url.pathname}${url.search}`;
    const matched = this.match(method, url.pathname);
    if (!matched) return { errors: [`${where}: no such operation among the served ones`] };
    const op = matched.operation;
    const errors: string[] = [];
    const path = coerce(matched.pathParams, op.params.filter((p) => p.in === "path"));
    if (!op.validatePath(path)) errors.push(...describe(`${where} path`, op.validatePath.errors));
    const queryValues: Record<string, string> = {};
    for (const [k, v] of url.searchParams) queryValues[k] = v;
    const known = new Set(op.params.filter((p) => p.in === "query").map((p) => p.name));
    for (const k of Object.keys(queryValues)) if (!known.has(k)) errors.push(`${where}: query parameter "${k}" is not declared`);
    const query = coerce(queryValues, op.params.filter((p) => p.in === "query"));
    if (!op.validateQuery(query)) errors.push(...describe(`${where} query`, op.validateQuery.errors));
    if (body.length > 0) {
      if (!op.body) errors.push(`${where}: the operation takes no body`);
      else if (!/^application\/json\b/.test(String(headers["content-type"] ?? ""))) errors.push(`${where}: body content-type is ${headers["content-type"]}, not application/json`);
      else {
        let parsed: unknown;
        try { parsed = JSON.parse(body); } catch { errors.push(`${where}: body is not JSON`); }
        if (parsed !== undefined && !op.body.validate(parsed)) errors.push(...describe(`${where} body`, op.body.validate.errors));
      }
    } else if (op.body?.required) errors.push(`${where}: the request body is required`);
    return { matched, errors };
  }

  /**
   * Problems with a response. Statuses the description omits (it lists no 4xx for a workflow
   * dispatch, though GitHub answers 404/422 there) are checked against GitHub's basic-error shape
   * and reported in `undocumented`, apart from errors.
   */
  validateResponse(matched: Matched | undefined, status: number, body: string): { errors: string[]; undocumented?: string } {
    if (!matched) return { errors: [] };
    const op = matched.operation;
    const where = `${op.method} ${op.template} → ${status}`;
    // 304 answers a conditional request on any GET (RFC 9110); the description rarely lists it.
    if (status === 304 && op.method === "GET") {
      return { errors: body.length > 0 ? [`${where}: a 304 must not have a body`] : [], ...(op.responses.has("304") ? {} : { undocumented: `${where} (${op.operationId})` }) };
    }
    const validate = op.responses.get(String(status)) ?? op.responses.get(`${String(status)[0]}XX`) ?? op.responses.get("default");
    if (validate === undefined) {
      if (status < 400) return { errors: [`${where}: status not declared by ${op.operationId}`] };
      return { errors: this.check(where, this.basicError, body), undocumented: `${where} (${op.operationId})` };
    }
    if (validate === "no-content") return { errors: body.length > 0 ? [`${where}: declared without content, but a body was sent`] : [] };
    return { errors: this.check(where, validate, body) };
  }

  private check(where: string, validate: ValidateFunction, body: string): string[] {
    let parsed: unknown;
    try { parsed = JSON.parse(body); } catch { return [`${where}: body is not JSON`]; }
    return validate(parsed) ? [] : describe(where, validate.errors);
  }
}

/** Path and query values are strings on the wire; give them the declared scalar types. */
function coerce(values: Record<string, string>, params: Operation["params"]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    const schema = params.find((p) => p.name === k)?.schema ?? {};
    const types = schema.type ? [schema.type] : ((schema.oneOf ?? schema.anyOf ?? []) as Json[]).map((s) => s.type);
    if (types.includes("integer") && /^-?\d+$/.test(v)) out[k] = Number(v);
    else if (types.includes("boolean") && (v === "true" || v === "false")) out[k] = v === "true";
    else out[k] = v;
  }
  return out;
}

function describe(where: string, errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${where}${e.instancePath || ""}: ${e.message}${e.params && Object.keys(e.params).length ? " " + JSON.stringify(e.params) : ""}`);
}
