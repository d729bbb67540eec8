// The user-facing error texts of the code, for the troubleshooting page's completeness test.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The fixed text of every user-facing error: messages of thrown executor errors, start-up errors
 * (stderr, ConfigError) and the step definitions' own failure texts, each up to its first
 * interpolation. Texts with less than 12 fixed characters, or a single word, say nothing to look up.
 */
export function errorMessages(): string[] {
  // Every .ts/.cue file under dir, sub-folders included (server/ and steps/ are rooms of folders).
  const files = (dir: string) => readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts") || f.endsWith(".cue")).map((f) => readFileSync(join(dir, f), "utf8"));
  const ts = [...files("server"), ...files("steps")].join("\n");
  const cue = files("addon/definitions").join("\n");
  const found = new Set<string>();
  const keep = (text: string) => {
    const fixed = text.split(/\$\{|\\\(/)[0]!.replace(/^step-executor: /, "").trimEnd();
    if (fixed.length >= 12 && fixed.includes(" ")) found.add(fixed);
  };
  const errors = "InputError|TerminalError|UnavailableError|StoreUnavailableError|StoreRejectedError|NotFoundError|PayloadTooLargeError|ForbiddenAddressError|UnknownKindError|SecretMissingError|ConfigError";
  for (const m of ts.matchAll(new RegExp(`new (?:${errors})\\(\\s*(?:\`([^\`]*)\`|"((?:[^"\\\\]|\\\\.)*)")`, "g"))) keep((m[1] ?? m[2]!).replace(/\\"/g, "\""));
  for (const m of ts.matchAll(/stderr\.write\(`([^`]*)`/g)) keep(m[1]!);
  for (const m of cue.matchAll(/(?:message: |text: )"((?:[^"\\]|\\.)*)"/g)) keep(m[1]!.replace(/\\"/g, '"'));
  for (const m of cue.matchAll(/^\s*"((?:the step-executor addon|ConfigMap vela-system|Secret vela-system)(?:[^"\\]|\\.)*)"/gm)) keep(m[1]!);
  return [...found].sort();
}
