/**
 * A parsed YAML or JSON document that remembers where each value came from, so a problem found
 * in the plain value at some path can be reported as `file:line:col` plus that path.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";

export type PathSegment = string | number;
export type ValuePath = readonly PathSegment[];

/** One finding about an input: error (rejects it) or warning (accepted, but worth knowing). */
export interface Diagnostic {
  severity: "error" | "warning";
  /** Where in the document: `$.storage.files.0.path` (the notation ignition-validate prints). */
  path: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

/** `$.a.0.b` — the path notation ignition-validate uses, so both verdicts compare directly. */
export function formatPath(path: ValuePath): string {
  return ["$", ...path.map(String)].join(".");
}

/** `file:line:col: error at $.x.y: message` — one line per diagnostic, for people. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file ? `${d.file}${d.line ? `:${d.line}:${d.column ?? 1}` : ""}: ` : "";
  return `${where}${d.severity} at ${d.path}: ${d.message}`;
}

export class SourceDoc {
  readonly file: string;
  readonly value: unknown;
  readonly #root: Node | null;
  readonly #lines: LineCounter;

  private constructor(file: string, value: unknown, root: Node | null, lines: LineCounter) {
    this.file = file;
    this.value = value;
    this.#root = root;
    this.#lines = lines;
  }

  /**
   * Parse YAML 1.2 (JSON is a subset, so JSON gets positions this way too). Syntax errors become
   * diagnostics at the offending line; the caller decides whether to go on.
   */
  static parse(text: string, file: string): { doc: SourceDoc | null; errors: Diagnostic[] } {
    const lines = new LineCounter();
    const parsed = parseDocument(text, {
      lineCounter: lines,
      prettyErrors: false,
      uniqueKeys: true,
    });
    if (parsed.errors.length > 0) {
      const errors = parsed.errors.map((e): Diagnostic => {
        const pos = lines.linePos(e.pos[0]);
        return {
          severity: "error",
          path: "$",
          message: e.message.split("\n")[0] ?? e.message,
          file,
          line: pos.line,
          column: pos.col,
        };
      });
      return { doc: null, errors };
    }
    const root = (parsed.contents as Node | null) ?? null;
    return {
      doc: new SourceDoc(file, parsed.toJS({ maxAliasCount: 100 }), root, lines),
      errors: [],
    };
  }

  /**
   * Strict JSON first (YAML would quietly accept trailing commas and bare words), then the same
   * text through the YAML parser for positions.
   */
  static parseJson(text: string, file: string): { doc: SourceDoc | null; errors: Diagnostic[] } {
    try {
      JSON.parse(text);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const m = /line (\d+) column (\d+)/.exec(message);
      const pos = m ? { line: Number(m[1]), column: Number(m[2]) } : {};
      return {
        doc: null,
        errors: [
          { severity: "error", path: "$", message: `invalid JSON: ${message}`, file, ...pos },
        ],
      };
    }
    return SourceDoc.parse(text, file);
  }

  /** The YAML node at `path`, or the nearest ancestor that exists (a missing key's parent). */
  nodeAt(path: ValuePath): Node | null {
    let node: Node | null = this.#root;
    for (const seg of path) {
      const next = child(node, seg);
      if (next === undefined) return node;
      node = next;
    }
    return node;
  }

  /** Line and column (1-based) of the value at `path`, or of its nearest existing ancestor. */
  position(path: ValuePath): { line: number; column: number } | undefined {
    // A block mapping or list starts on the line after its key: name the key's line instead.
    const node = this.nodeAt(path);
    const key = path.length > 0 && (isMap(node) || isSeq(node)) ? this.keyAt(path) : undefined;
    const offset = (key ?? node)?.range?.[0];
    if (offset === undefined) return undefined;
    const pos = this.#lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  }

  /** The key node of the last segment of `path`, when it names a mapping key that exists. */
  keyAt(path: ValuePath): Node | undefined {
    const parent = this.nodeAt(path.slice(0, -1));
    const last = path.at(-1);
    if (!isMap(parent) || this.nodeAt(path) === parent) return undefined;
    for (const item of parent.items) {
      if (isPair(item) && isScalar(item.key) && String(item.key.value) === String(last)) {
        return item.key;
      }
    }
    return undefined;
  }

  /** The raw source text of the scalar at `path` (e.g. `0644` before YAML read it as a number). */
  sourceText(path: ValuePath): string | undefined {
    const node = this.nodeAt(path);
    if (!isScalar(node) || node.source === undefined) return undefined;
    return typeof node.source === "string" ? node.source : undefined;
  }

  /** A diagnostic located in this document. */
  at(path: ValuePath, message: string, severity: Diagnostic["severity"] = "error"): Diagnostic {
    return { severity, path: formatPath(path), message, file: this.file, ...this.position(path) };
  }
}

function child(node: Node | null, seg: PathSegment): Node | null | undefined {
  if (isMap(node)) {
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const key = isScalar(item.key) ? item.key.value : item.key;
      if (String(key) === String(seg)) return (item.value as Node | null) ?? (item.key as Node);
    }
    return undefined;
  }
  if (isSeq(node) && typeof seg === "number") {
    const item = node.items[seg];
    return item === undefined ? undefined : (item as Node | null);
  }
  return undefined;
}
