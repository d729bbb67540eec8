// The CEL worker's JSON ↔ CEL conversions.
import type { CelInput } from "@bufbuild/cel";
import { celLibrary } from "./library.js";

/** JSON → CEL input: integers become int (BigInt) as in Kubernetes CEL, so `replicas + 1` works. */
export function toCelInput(value: unknown): CelInput {
  if (typeof value === "number") return (Number.isInteger(value) ? BigInt(value) : value) as CelInput;
  if (Array.isArray(value)) return value.map(toCelInput) as CelInput;
  if (value && typeof value === "object") {
    const out = new Map<string, CelInput>();
    for (const [k, v] of Object.entries(value)) out.set(k, toCelInput(v));
    return out as CelInput;
  }
  return (value ?? null) as CelInput;
}

/** CEL result → plain JSON value (BigInt within safe range → number, else string). */
export function fromCelValue(value: unknown): unknown {
  const { isCelUint, isCelMap, isCelList } = celLibrary().cel;
  if (typeof value === "bigint") {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (isCelUint(value)) return fromCelValue((value as { value: bigint }).value);
  if (isCelMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value.entries()) out[String(fromCelValue(k))] = fromCelValue(v);
    return out;
  }
  if (isCelList(value)) return [...value].map(fromCelValue);
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (value === undefined) return null;
  if (value !== null && typeof value === "object") return String(value);
  return value;
}
