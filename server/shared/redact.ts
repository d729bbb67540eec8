// Redaction in one place: every secret value a run resolves is registered here, and every
// message and output leaves the run through `apply` (http-request also passes the response
// through it before CEL sees it, so expressions cannot take an echoed secret apart).
//
// A tenant shapes what reaches the status with CEL, and a target may echo what it was sent, so
// the exact value is not enough. Masked, besides the exact value:
//  - any run of GRAM or more characters of a secret (ASCII case-insensitive): substrings,
//    upper/lower-cased copies, a secret cut at either edge of an excerpt;
//  - the same runs in base64 (std and url, all 3 alignments), hex and URL-encoding;
//  - runs spread over adjacent strings of one value (`split("")` gives a list of characters):
//    matching runs over the concatenation of all strings of the value, in document order;
//  - fewer than GRAM characters of a secret's start just before an excerpt's "..." cut.
// Matching is one pass of a rolling hash over the text (a hash set of every GRAM-long run of
// every form of every secret), so cost is linear in the text, whatever the number of secrets.
// What this cannot catch (other transformations, guessing) is listed in SECURITY.md.

import { createHash } from "node:crypto";

/** Values shorter than this are not redacted: masking "a" or "1" would garble every message. */
export const MIN_REDACTED_LENGTH = 4;
/** Runs of this many characters of a secret are masked wherever they appear. */
export const GRAM = 8;
export const REDACTED = "[redacted]";
/** The mark of a cut excerpt (excerpt()); the Redactor masks a secret's start left just before it. */
export const ELLIPSIS = "...";

const BASE = 0x01000193; // FNV prime: a good enough multiplier for a 32-bit polynomial hash
const BASE_POW = (() => { let p = 1; for (let i = 0; i < GRAM; i++) p = Math.imul(p, BASE); return p; })();

/** ASCII upper case folded to lower case, code unit by code unit (so indexes stay put). */
function fold(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}
function foldString(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Cuts text to `max` characters for a message, marking a cut with "...". Redact before cutting when you can. */
export function excerpt(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) + ELLIPSIS : text;
}

/** The forms of one secret line whose GRAM-long runs are masked: itself and its common encodings. */
function encodedForms(line: string): string[] {
  const forms = [line, encodeURIComponent(line), encodeURIComponent(line).replace(/%20/g, "+")];
  const bytes = Buffer.from(line, "utf8");
  forms.push(bytes.toString("hex"));
  // base64 of a substring is a run of the base64 of the secret from the same offset modulo 3.
  for (let i = 0; i < 3 && i < bytes.length; i++) {
    const b64 = bytes.subarray(i).toString("base64").replace(/=+$/, "");
    forms.push(b64, b64.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return forms;
}

/**
 * What is masked for one secret value: its folded GRAM-long runs (every form) by hash — most hashes
 * have one run, so a string rather than a set — and its folded starts shorter than GRAM.
 */
interface GramTable {
  grams: Map<number, string | string[]>;
  starts: Set<string>;
}

function addGram(grams: GramTable["grams"], h: number, g: string): void {
  const had = grams.get(h);
  if (had === undefined) grams.set(h, g);
  else if (typeof had === "string") { if (had !== g) grams.set(h, [had, g]); }
  else if (!had.includes(g)) had.push(g);
}

function hasGram(grams: GramTable["grams"], h: number, g: () => string): boolean {
  const had = grams.get(h);
  if (had === undefined) return false;
  return typeof had === "string" ? had === g() : had.includes(g());
}

function buildTable(value: string): GramTable {
  const table: GramTable = { grams: new Map(), starts: new Set() };
  // Per line, without PEM armour: the armour is public, and lines are shown joined in many ways.
  for (const line of value.replace(/-----(BEGIN|END)[A-Z0-9 ]*-----/g, "\n").split(/\r?\n|\\n/)) {
    const t = line.trim();
    if (t.length < MIN_REDACTED_LENGTH) continue;
    for (let n = MIN_REDACTED_LENGTH; n < GRAM && n < t.length; n++) table.starts.add(foldString(t.slice(0, n)));
    if (t.length < GRAM) continue;
    for (const form of encodedForms(t)) {
      const f = foldString(form);
      for (let i = 0; i + GRAM <= f.length; i++) {
        const g = f.slice(i, i + GRAM);
        addGram(table.grams, hashOf(g), g);
      }
    }
  }
  return table;
}

/**
 * One table per secret value for the whole process while any run uses it: a thousand steps with
 * the same token share one (~20 KB each otherwise). The map's keys are hashes, and a table (pieces
 * of its secret) is held only weakly: once no run uses it, it is collected and its key dropped.
 */
const tables = new Map<string, WeakRef<GramTable>>();
const forget = new FinalizationRegistry<string>((key) => {
  if (tables.get(key)?.deref() === undefined) tables.delete(key);
});

function tableOf(value: string): GramTable {
  const key = createHash("sha256").update(value).digest("base64");
  let table = tables.get(key)?.deref();
  if (!table) {
    table = buildTable(value);
    tables.set(key, new WeakRef(table));
    forget.register(table, key);
  }
  return table;
}

export class Redactor {
  /** Exact values (any length ≥ MIN_REDACTED_LENGTH), masked as before. */
  private readonly values = new Set<string>();
  /** The values' tables; with several, one merged table (matching stays one pass whatever their number). */
  private own: GramTable[] = [];
  private table: GramTable | undefined;
  private sortedValues: string[] = [];

  add(value: string): void {
    if (value.length < MIN_REDACTED_LENGTH || this.values.has(value)) return;
    this.values.add(value);
    this.sortedValues = [...this.values].sort((a, b) => b.length - a.length);
    this.own.push(tableOf(value));
    this.table = this.own.length === 1 ? this.own[0] : undefined;
  }

  /** The table to match with: a secret's shared one, or (several secrets) a merge made once. */
  private merged(): GramTable {
    if (!this.table) {
      const grams: GramTable["grams"] = new Map();
      const starts = new Set<string>();
      for (const t of this.own) {
        for (const [h, g] of t.grams) for (const x of typeof g === "string" ? [g] : g) addGram(grams, h, x);
        for (const x of t.starts) starts.add(x);
      }
      this.table = { grams, starts };
    }
    return this.table;
  }

  /** Redacts strings inside any JSON-shaped value (keys too). */
  apply<T>(value: T): T {
    if (this.values.size === 0) return value;
    // A secret spread over adjacent strings is found in their concatenation: all string values in
    // document order (keys apart, so that keys between values cannot break a run up).
    const values: string[] = [];
    const keys: string[] = [];
    collect(value, values, keys);
    const maskedValues = this.maskLeaves(values);
    const maskedKeys = this.maskLeaves(keys);
    let v = 0;
    let k = 0;
    return rebuild(value, () => maskedValues[v++]!, () => maskedKeys[k++]!) as T;
  }

  private maskLeaves(leaves: string[]): string[] {
    const joined = leaves.length === 1 ? leaves[0]! : leaves.join("");
    const regions = this.gramRegions(joined);
    const out: string[] = [];
    let offset = 0;
    let r = 0;
    for (const leaf of leaves) {
      const end = offset + leaf.length;
      if (r >= regions.length || regions[r]![0] >= end) {
        out.push(this.maskRest(leaf));
        offset = end;
        continue;
      }
      let s = "";
      let pos = offset;
      // A region spanning several strings is masked in each of them.
      for (let k = r; k < regions.length && regions[k]![0] < end; k++) {
        const [a, b] = regions[k]!;
        if (b <= offset) continue;
        s += joined.slice(pos, Math.max(a, offset)) + REDACTED;
        pos = Math.min(b, end);
      }
      while (r < regions.length && regions[r]![1] <= end) r++;
      s += joined.slice(pos, end);
      out.push(this.maskRest(s));
      offset = end;
    }
    return out;
  }

  /** Exact values, then a short secret start cut by an excerpt's "...". */
  private maskRest(s: string): string {
    let out = s;
    // Longest first, so a secret containing another secret is masked whole.
    for (const v of this.sortedValues) if (out.includes(v)) out = out.split(v).join(REDACTED);
    return this.merged().starts.size > 0 && out.includes(ELLIPSIS) ? this.maskCuts(out) : out;
  }

  private maskCuts(s: string): string {
    let out = "";
    let last = 0;
    for (let at = s.indexOf(ELLIPSIS); at >= 0; at = s.indexOf(ELLIPSIS, at + ELLIPSIS.length)) {
      let cut = 0;
      for (let n = Math.min(GRAM - 1, at - last); n >= MIN_REDACTED_LENGTH; n--) {
        if (this.merged().starts.has(foldString(s.slice(at - n, at)))) { cut = n; break; }
      }
      out += s.slice(last, at - cut) + (cut ? REDACTED : "") + ELLIPSIS;
      last = at + ELLIPSIS.length;
    }
    return out + s.slice(last);
  }

  /** Merged [start, end) regions of `text` covered by GRAM-long runs of a secret. */
  private gramRegions(text: string): [number, number][] {
    const regions: [number, number][] = [];
    const grams = this.merged().grams;
    if (grams.size === 0 || text.length < GRAM) return regions;
    let h = 0;
    for (let i = 0; i < text.length; i++) {
      h = (Math.imul(h, BASE) + fold(text.charCodeAt(i))) | 0;
      if (i >= GRAM) h = (h - Math.imul(fold(text.charCodeAt(i - GRAM)), BASE_POW)) | 0;
      if (i < GRAM - 1) continue;
      const start = i - GRAM + 1;
      if (!hasGram(grams, h, () => foldString(text.slice(start, i + 1)))) continue;
      const lastRegion = regions[regions.length - 1];
      if (lastRegion && lastRegion[1] >= start) lastRegion[1] = i + 1;
      else regions.push([start, i + 1]);
    }
    return regions;
  }
}

function hashOf(folded: string): number {
  let h = 0;
  for (let i = 0; i < folded.length; i++) h = (Math.imul(h, BASE) + folded.charCodeAt(i)) | 0;
  return h;
}

function collect(value: unknown, values: string[], keys: string[]): void {
  if (typeof value === "string") values.push(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, values, keys);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      keys.push(k);
      collect(v, values, keys);
    }
  }
}

function rebuild(value: unknown, nextValue: () => string, nextKey: () => string): unknown {
  if (typeof value === "string") return nextValue();
  if (Array.isArray(value)) return value.map((v) => rebuild(v, nextValue, nextKey));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const key = nextKey();
      out[key] = rebuild(v, nextValue, nextKey);
    }
    return out;
  }
  return value;
}
