// Bounds on what a step outputs. KubeVela copies every output into the Application's status and
// its workflow context ConfigMap (at most 1 MiB, and written on every reconcile): a step with a
// huge output, or thousands of them, made that write fail (the Application stayed `running`
// forever) or made each reconcile take tens of seconds. So a step declares at most MAX_OUTPUTS
// outputs (checked when the run starts) and its outputs, serialized, stay within the byte caps
// below (checked by the engine on every step's result, after redaction).
import { InputError } from "./errors.js";

/** Outputs a step may declare (http-request also outputs `status`). */
export const MAX_OUTPUTS = 32;
/** Serialized JSON of one output. */
export const MAX_OUTPUT_BYTES = 16 * 1024;
/** Serialized JSON of all outputs of a step: well under KubeVela's 1 MiB context. */
export const MAX_OUTPUTS_BYTES = 64 * 1024;

/** InputError when a step declares more outputs than allowed. */
export function checkDeclaredOutputs(outputs: Record<string, unknown> | undefined): void {
  const n = Object.keys(outputs ?? {}).length;
  if (n > MAX_OUTPUTS) throw new InputError(`outputs: ${n} outputs declared; a step may declare at most ${MAX_OUTPUTS}; output an object or a list in one of them`);
}

/** Why these outputs are too large to hand to KubeVela, or undefined. */
export function outputsTooLarge(outputs: Record<string, unknown>): string | undefined {
  let total = 2; // {}
  for (const [name, value] of Object.entries(outputs)) {
    const bytes = Buffer.byteLength(JSON.stringify(value) ?? "null");
    if (bytes > MAX_OUTPUT_BYTES) return `outputs.${name}: ${formatBytes(bytes)} is more than the ${formatBytes(MAX_OUTPUT_BYTES)} one output may be; output a smaller field`;
    total += bytes + Buffer.byteLength(JSON.stringify(name)) + 2;
  }
  if (total > MAX_OUTPUTS_BYTES) return `outputs: ${formatBytes(total)} is more than the ${formatBytes(MAX_OUTPUTS_BYTES)} a step may output; output smaller fields`;
  return undefined;
}

/** 512 bytes, 16 KiB, 1.2 MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${Number((n / 1024).toFixed(n < 10 * 1024 ? 1 : 0))} KiB`;
  return `${Number((n / (1024 * 1024)).toFixed(1))} MiB`;
}
