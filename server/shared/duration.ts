import { InputError } from "./errors.js";

const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const part = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;

/** Parses a Go duration ("1m30s", "500ms", "10s") — the form KubeVela users already write. */
export function parseDuration(text: string, field: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  let total = 0;
  let end = 0;
  part.lastIndex = 0;
  for (let m = part.exec(s); m; m = part.exec(s)) {
    total += Number(m[1]) * (unitMs[m[2]!] ?? 0);
    end = part.lastIndex;
  }
  if (s.length === 0 || end !== s.length) {
    throw new InputError(`${field}: "${text}" is not a duration; use a Go duration such as "30s", "5m" or "1h30m"`);
  }
  return Math.round(total);
}

/** Formats milliseconds the way a person reads them in `vela status`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  // Hours as Go writes them, without the zero parts: 1h, 1h30m, 72h, 1h0m5s → 1h5s.
  const h = Math.floor(m / 60);
  return `${h}h${m % 60 ? `${m % 60}m` : ""}${s % 60 ? `${s % 60}s` : ""}`;
}
