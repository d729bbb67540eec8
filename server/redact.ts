// Redaction in one place: every secret value a run resolves is registered here, and every
// message and output leaves the run through `apply`.

/** Values shorter than this are not redacted: masking "a" or "1" would garble every message. */
export const MIN_REDACTED_LENGTH = 4;
export const REDACTED = "[redacted]";

export class Redactor {
  private readonly values = new Set<string>();

  add(value: string): void {
    if (value.length >= MIN_REDACTED_LENGTH) this.values.add(value);
  }

  /** Redacts strings inside any JSON-shaped value. */
  apply<T>(value: T): T {
    if (this.values.size === 0) return value;
    return this.walk(value) as T;
  }

  private walk(value: unknown): unknown {
    if (typeof value === "string") return this.redactString(value);
    if (Array.isArray(value)) return value.map((v) => this.walk(v));
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[this.redactString(k)] = this.walk(v);
      return out;
    }
    return value;
  }

  private redactString(s: string): string {
    let out = s;
    // Longest first, so a secret containing another secret is masked whole.
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) out = out.split(v).join(REDACTED);
    return out;
  }
}
