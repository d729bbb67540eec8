// The generated parameter schemas (steps/generated/) against their source, the CUE definitions.
import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { parseAllDocuments } from "yaml";
import { kinds, readJson, removeDir, root, sh, tempDir, type Kind } from "./fixture.js";
import { schemas } from "../../steps/generated/index.js";

type Schema = { [key: string]: unknown };

const generated = join(root, "steps/generated");

describe("addon: generated parameter schemas", function () {
  this.timeout(300_000);

  it("npm run gen reproduces the committed steps/generated exactly", async () => {
    const dir = tempDir("gen");
    try {
      await sh("bash", [join(root, "scripts/gen-schemas.sh"), dir]);
      const fresh = readdirSync(dir).sort();
      expect(readdirSync(generated).sort(), "files in steps/generated").to.deep.equal(fresh);
      for (const f of fresh) {
        expect(readFileSync(join(generated, f), "utf8"), `steps/generated/${f} is stale: run npm run gen`).to.equal(readFileSync(join(dir, f), "utf8"));
      }
    } finally {
      removeDir(dir);
    }
  });

  it("has one schema per definition, the same in the .schema.json and the index", () => {
    expect(kinds).to.include.members(["apply-and-wait", "http-request", "read-object-and-wait"]);
    expect(Object.keys(schemas).sort()).to.deep.equal([...kinds]);
    for (const kind of kinds) {
      expect(schemas[kind], kind).to.deep.equal(readJson(join(generated, `${kind}.schema.json`)));
    }
  });

  for (const kind of kinds) {
    it(`${kind}: every parameter field has a description (its +usage)`, () => {
      const missing: string[] = [];
      const walk = (node: Schema, path: string) => {
        const props = node.properties as Record<string, Schema> | undefined;
        for (const [name, sub] of Object.entries(props ?? {})) {
          const p = `${path}.${name}`;
          if (typeof sub.description !== "string" || sub.description.trim() === "" || sub.description.includes("+usage")) missing.push(p);
          walk(sub, p);
        }
        if (node.additionalProperties && typeof node.additionalProperties === "object") walk(node.additionalProperties as Schema, `${path}[*]`);
        for (const alt of (node.oneOf as Schema[] | undefined) ?? []) walk(alt, path);
      };
      walk(schemas[kind] as unknown as Schema, "parameter");
      expect(missing, "fields without a description").to.deep.equal([]);
    });
  }
});

describe("addon: parameter validation with the generated schemas", () => {
  // As server/http/validation.ts compiles them.
  const ajv = new Ajv({ allErrors: false, strict: false, useDefaults: true, coerceTypes: false, verbose: true });
  const validate = Object.fromEntries(kinds.map((k) => [k, ajv.compile(schemas[k] as object)]));

  const valid: [string, Kind, unknown][] = [
    ["http-request: only a url", "http-request", { url: "https://example.com/hook" }],
    ["http-request: everything", "http-request", {
      url: "https://example.com/hook", method: "POST", headers: { "X-A": "1" },
      secretHeaders: { Authorization: { name: "api", key: "token" } }, body: { a: [1, 2] },
      timeout: "5s", retries: 0, backoff: "500ms", maxBackoff: "10s",
      successCondition: "response.status == 201", failureCondition: "response.status == 409",
      outputs: { id: "response.body.id" },
    }],
    ["http-request: a string body", "http-request", { url: "https://example.com", method: "PUT", body: "raw" }],
    ["read-object-and-wait: minimal", "read-object-and-wait", { apiVersion: "apps/v1", kind: "Deployment", name: "web" }],
    ["read-object-and-wait: everything", "read-object-and-wait", {
      apiVersion: "v1", kind: "Service", name: "web", namespace: "prod", condition: "has(object.spec.clusterIP)",
      failureCondition: "false", timeout: "1m", outputs: { ip: "object.spec.clusterIP" },
    }],
    ["apply-and-wait: any object", "apply-and-wait", {
      value: { apiVersion: "batch/v1", kind: "Job", metadata: { name: "migrate" }, spec: { anything: { goes: true } } },
      outputs: { done: "object.status.succeeded" },
    }],
  ];
  for (const [name, kind, parameter] of valid) {
    it(`accepts ${name}`, () => {
      const ok = validate[kind]!(structuredClone(parameter));
      expect(ok, JSON.stringify(validate[kind]!.errors)).to.equal(true);
    });
  }

  it("fills the defaults the CUE parameter declares", () => {
    const p: Record<string, unknown> = { url: "https://example.com" };
    expect(validate["http-request"]!(p)).to.equal(true);
    expect(p).to.deep.equal({ url: "https://example.com", method: "GET", timeout: "10s", retries: 3, backoff: "1s", maxBackoff: "30s" });
    const r: Record<string, unknown> = { apiVersion: "v1", kind: "Pod", name: "p" };
    expect(validate["read-object-and-wait"]!(r)).to.equal(true);
    expect(r.timeout).to.equal("5m");
  });

  const invalid: [string, Kind, unknown, { keyword: string; instancePath?: string }][] = [
    ["a missing url", "http-request", { method: "GET" }, { keyword: "required" }],
    ["an unknown field", "http-request", { url: "https://x", header: { a: "b" } }, { keyword: "additionalProperties" }],
    ["an unknown field in a secretHeaders entry", "http-request", { url: "https://x", secretHeaders: { A: { name: "s", key: "k", namespace: "other" } } }, { keyword: "additionalProperties", instancePath: "/secretHeaders/A" }],
    ["a wrong type (retries as a string)", "http-request", { url: "https://x", retries: "3" }, { keyword: "type", instancePath: "/retries" }],
    ["retries out of range", "http-request", { url: "https://x", retries: 11 }, { keyword: "maximum", instancePath: "/retries" }],
    ["negative retries", "http-request", { url: "https://x", retries: -1 }, { keyword: "minimum", instancePath: "/retries" }],
    ["fractional retries", "http-request", { url: "https://x", retries: 1.5 }, { keyword: "type", instancePath: "/retries" }],
    ["an unknown method", "http-request", { url: "https://x", method: "TRACE" }, { keyword: "enum", instancePath: "/method" }],
    ["a number body", "http-request", { url: "https://x", body: 5 }, { keyword: "type", instancePath: "/body" }],
    ["a non-string header value", "http-request", { url: "https://x", headers: { a: 1 } }, { keyword: "type", instancePath: "/headers/a" }],
    ["a missing name", "read-object-and-wait", { apiVersion: "v1", kind: "Pod" }, { keyword: "required" }],
    ["an unknown field", "read-object-and-wait", { apiVersion: "v1", kind: "Pod", name: "p", labels: "x" }, { keyword: "additionalProperties" }],
    ["a non-string output", "read-object-and-wait", { apiVersion: "v1", kind: "Pod", name: "p", outputs: { a: true } }, { keyword: "type", instancePath: "/outputs/a" }],
    ["a missing value", "apply-and-wait", { timeout: "1m" }, { keyword: "required" }],
    ["a value that is not an object", "apply-and-wait", { value: "kind: Job" }, { keyword: "type", instancePath: "/value" }],
  ];
  for (const [name, kind, parameter, want] of invalid) {
    it(`${kind}: rejects ${name}`, () => {
      expect(validate[kind]!(structuredClone(parameter))).to.equal(false);
      const err = validate[kind]!.errors?.[0];
      expect(err?.keyword).to.equal(want.keyword);
      if (want.instancePath !== undefined) expect(err?.instancePath).to.equal(want.instancePath);
    });
  }

  it("the examples in addon/README.md are valid parameters", () => {
    const readme = readFileSync(join(root, "addon/README.md"), "utf8");
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const seen = new Set<string>();
    for (const block of blocks) {
      for (const doc of parseAllDocuments(block)) {
        const app = doc.toJS() as { spec?: { workflow?: { steps?: { name: string; type: string; properties?: unknown; inputs?: unknown[] }[] } } };
        for (const step of app.spec?.workflow?.steps ?? []) {
          if (!(kinds as readonly string[]).includes(step.type)) continue;
          seen.add(step.type);
          const ok = validate[step.type]!(structuredClone(step.properties ?? {}));
          expect(ok, `${step.name}: ${JSON.stringify(validate[step.type]!.errors)}`).to.equal(true);
        }
      }
    }
    expect([...seen].sort()).to.deep.equal([...kinds]);
  });
});
