// Parameter validation against the JSON Schemas exported from the CUE definitions (the source
// of truth), with messages that name the field and what is expected.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { InputError } from "../shared/errors.js";

const ajv = new Ajv({ allErrors: false, strict: false, useDefaults: true, coerceTypes: false, verbose: true });

export type Validator<T> = (value: unknown, root: string) => T;

export function compileValidator<T>(schema: object): Validator<T> {
  const validate: ValidateFunction = ajv.compile(schema);
  return (value, root) => {
    if (validate(value)) return value as T;
    // A failed `oneOf` (CUE's `close({a}) | close({b})`) reports its branches' errors first;
    // saying which alternatives exist helps more than the first branch's complaint.
    const errors = validate.errors ?? [];
    const oneOf = errors.find((e) => e.keyword === "oneOf" && describeAlternatives(e));
    throw new InputError(oneOf ? `${dotted(oneOf, root)}: ${describeAlternatives(oneOf)}` : describeAjvError(errors[0], root));
  };
}

function dotted(e: ErrorObject, root: string): string {
  return root + e.instancePath.split("/").slice(1).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p.replace(/~1/g, "/").replace(/~0/g, "~")}`)).join("");
}

/** "set exactly one of token or app" when every alternative is one required key; else undefined. */
function describeAlternatives(e: ErrorObject): string | undefined {
  const branches = e.schema as { required?: string[] }[] | undefined;
  if (!Array.isArray(branches) || !branches.every((b) => b.required?.length === 1)) return undefined;
  return `set exactly one of ${branches.map((b) => b.required![0]).join(" or ")}`;
}

function describeAjvError(e: ErrorObject | undefined, root: string): string {
  if (!e) return `${root}: invalid`;
  const path = dotted(e, root);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "required": return `${path}.${p.missingProperty}: required field is missing`;
    case "additionalProperties": return `${path}: unknown field "${p.additionalProperty}"`;
    case "type": return `${path}: must be ${article(String(p.type))}`;
    case "enum": return `${path}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "oneOf": case "anyOf": return `${path}: does not match any allowed form (${e.message})`;
    default: return `${path}: ${e.message}`;
  }
}

function article(type: string): string {
  return type.split(",").map((t) => (t === "object" || t === "array" || t === "integer" ? `an ${t}` : `a ${t}`)).join(" or ");
}
