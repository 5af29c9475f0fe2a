/**
 * Typed reads from a parsed document with diagnostics at the YAML path: the small toolkit the
 * front ends (our YAML, cloud-config) share. A read that fails reports and returns undefined.
 */
import type { Diagnostic, PathSegment, SourceDoc } from "./source.ts";

export class DocReader {
  readonly doc: SourceDoc;
  readonly diagnostics: Diagnostic[] = [];

  constructor(doc: SourceDoc) {
    this.doc = doc;
  }

  error(path: readonly PathSegment[], message: string): void {
    this.diagnostics.push(this.doc.at(path, message, "error"));
  }
  warn(path: readonly PathSegment[], message: string): void {
    this.diagnostics.push(this.doc.at(path, message, "warning"));
  }

  /** A key the input may hold but we have no equivalent for: skipped, with a warning. */
  unsupported(path: readonly PathSegment[]): void {
    this.warn(path, `"${String(path.at(-1))}" is not supported; skipped`);
  }

  /** The mapping at `path`, warning about keys outside `known` (null: the caller checks). Absent or null → undefined. */
  map(
    v: unknown,
    path: readonly PathSegment[],
    known: readonly string[] | null,
  ): Record<string, unknown> | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) {
      this.error(path, `expected a mapping, got ${kind(v)}`);
      return undefined;
    }
    const m = v as Record<string, unknown>;
    for (const key of Object.keys(m)) {
      if (known && !known.includes(key)) {
        this.warn([...path, key], `unknown key "${key}" (known here: ${known.join(", ")})`);
      }
    }
    return m;
  }

  list(v: unknown, path: readonly PathSegment[]): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.error(path, `expected a list, got ${kind(v)}`);
      return [];
    }
    return v;
  }

  str(v: unknown, path: readonly PathSegment[]): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v;
    // A bare number or boolean where text is wanted (a group "1000", a hostname "007").
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    this.error(path, `expected text, got ${kind(v)}`);
    return undefined;
  }

  requiredStr(v: unknown, path: readonly PathSegment[], what: string): string | undefined {
    const s = this.str(v, path);
    if (s === undefined || s === "") this.error(path, `${what} is required`);
    return s === "" ? undefined : s;
  }

  strList(v: unknown, path: readonly PathSegment[]): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    const out: string[] = [];
    for (const [i, item] of this.list(v, path).entries()) {
      const s = this.str(item, [...path, i]);
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  int(v: unknown, path: readonly PathSegment[]): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "number" && Number.isInteger(v)) return v;
    this.error(path, `expected a whole number, got ${kind(v)}`);
    return undefined;
  }

  bool(v: unknown, path: readonly PathSegment[]): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "boolean") return v;
    this.error(path, `expected true or false, got ${kind(v)}`);
    return undefined;
  }

  /**
   * A file mode. YAML 1.2 reads `0644` as decimal 644, but everyone means octal (Butane reads it
   * so too), so a leading zero in the source text means octal. Strings "0644"/"644" are octal.
   */
  mode(v: unknown, path: readonly PathSegment[]): number | undefined {
    if (v === undefined || v === null) return undefined;
    const text = typeof v === "string" ? v.trim() : this.doc.sourceText(path);
    const octal = text === undefined ? undefined : /^0?o?([0-7]{1,4})$/.exec(text)?.[1];
    if (typeof v === "string" || (text !== undefined && /^0[0-7]/.test(text))) {
      if (octal === undefined) {
        this.error(path, `expected an octal mode like 0644, got ${JSON.stringify(text)}`);
        return undefined;
      }
      return Number.parseInt(octal, 8);
    }
    const n = this.int(v, path);
    if (n !== undefined && n > 0o7777) {
      this.error(path, `mode ${n} is out of range; write it in octal, e.g. 0644`);
      return undefined;
    }
    if (n !== undefined && n > 7 && text !== undefined && /^\d+$/.test(text)) {
      this.warn(
        path,
        `mode ${n} is decimal (octal ${n.toString(8)}); write 0${n} if you meant octal`,
      );
    }
    return n;
  }
}

export function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}
