/**
 * `slipway config render`: our YAML or a legacy #cloud-config in, Ignition JSON out. The output
 * is checked by the same validator as `config validate`, and every finding is reported at the
 * place in the *input* it came from.
 */
import { dirname } from "node:path";
import { authoringPathFor, readAuthoring } from "./authoring.ts";
import { cloudConfigPathFor, isCloudConfig, readCloudConfig } from "./cloudconfig.ts";
import { type IgnitionConfig, type ProvisionSpec, toIgnition } from "./model.ts";
import { type Diagnostic, type PathSegment, SourceDoc } from "./source.ts";
import { validateIgnition } from "./validate.ts";

export type InputFormat = "yaml" | "cloud-config" | "ignition";

export interface RenderResult {
  format: InputFormat;
  /** Undefined when the input has errors. */
  config: IgnitionConfig | undefined;
  diagnostics: Diagnostic[];
}

export interface RenderOptions {
  /** Base directory for `contents.local`; defaults to the input file's directory. */
  filesDir?: string;
}

export function detectFormat(text: string): InputFormat {
  if (isCloudConfig(text)) return "cloud-config";
  return /^\s*\{/.test(text) ? "ignition" : "yaml";
}

export function renderConfig(text: string, file: string, opts: RenderOptions = {}): RenderResult {
  const format = detectFormat(text);
  const parsed =
    format === "ignition" ? SourceDoc.parseJson(text, file) : SourceDoc.parse(text, file);
  if (!parsed.doc) return { format, config: undefined, diagnostics: parsed.errors };
  const doc = parsed.doc;

  if (format === "ignition") {
    // Already Ignition: validate and pass it through unchanged.
    const v = validateIgnition(doc);
    return {
      format,
      config: v.ok ? (doc.value as IgnitionConfig) : undefined,
      diagnostics: v.diagnostics,
    };
  }

  let read: { spec: ProvisionSpec; diagnostics: Diagnostic[] };
  let locate: (ign: readonly PathSegment[]) => readonly PathSegment[];
  if (format === "cloud-config") {
    const { spec, r, origins } = readCloudConfig(doc);
    read = { spec, diagnostics: r.diagnostics };
    locate = (p) => cloudConfigPathFor(p, origins);
  } else {
    const { spec, r } = readAuthoring(doc, { filesDir: opts.filesDir ?? dirname(file) });
    read = { spec, diagnostics: r.diagnostics };
    locate = (p) => authoringPathFor(p, doc);
  }
  const config = toIgnition(read.spec);
  const diagnostics = [...read.diagnostics, ...checkOutput(config, doc, locate)];
  const ok = !diagnostics.some((d) => d.severity === "error");
  const sorted = dedupe(diagnostics).sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { format, config: ok ? config : undefined, diagnostics: sorted };
}

/** Validate the rendered Ignition, moving each finding back onto the input document. */
function checkOutput(
  config: IgnitionConfig,
  doc: SourceDoc,
  locate: (ign: readonly PathSegment[]) => readonly PathSegment[],
): Diagnostic[] {
  const { doc: out } = SourceDoc.parseJson(JSON.stringify(config), "(rendered)");
  if (!out) return [];
  return validateIgnition(out).diagnostics.map((d) => {
    const at = locate(parsePath(d.path));
    return { ...doc.at(at, d.message, d.severity) };
  });
}

/** `$.storage.files.0.path` → ["storage", "files", 0, "path"]. */
export function parsePath(path: string): PathSegment[] {
  return path
    .split(".")
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** The reader and the output check can both see one mistake; say it once. */
function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const key = `${d.severity}|${d.path}|${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Stable JSON text for a config: two-space indent, trailing newline. */
export function ignitionJson(config: IgnitionConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
