/**
 * Load and validate an image config. Every error names file:line and the key
 * (`slipway.yaml:12: packages[3]: not a Debian package name`), using the YAML
 * parser's node positions so the line is the one the user wrote.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { InputError } from "../errors.ts";
import { type ImageConfig, imageConfigSchema } from "./schema.ts";

export { DEFAULT_CONFIG_NAME } from "./names.ts";

export interface LoadedConfig {
  /** Absolute path of the config file. */
  path: string;
  /** Directory relative paths in the config are resolved against. */
  dir: string;
  config: ImageConfig;
  /** Where each key path (`overlays.0.source`) was written, for later errors. */
  lineOf(path: (string | number)[]): number;
}

/** One validation problem; `InputError.message` lists them all. */
export interface ConfigIssue {
  line: number;
  key: string;
  message: string;
}

export class ConfigError extends InputError {
  readonly issues: ConfigIssue[];
  readonly file: string;
  constructor(file: string, issues: ConfigIssue[]) {
    const lines = issues.map((i) => `${file}:${i.line}: ${i.key ? `${i.key}: ` : ""}${i.message}`);
    super(
      issues.length === 1 ? lines[0]! : `${issues.length} problems\n  ${lines.join("\n  ")}`,
      {},
    );
    this.file = file;
    this.issues = issues;
  }
}

function keyString(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

export function loadConfig(file: string): LoadedConfig {
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new InputError(`no image config here (create one with 'slipway init')`, { where: path });
  }
  return parseConfig(readFileSync(path, "utf8"), path);
}

/** Parse config text; `path` is used for messages and for resolving relative paths. */
export function parseConfig(text: string, path: string): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;

  if (doc.errors.length > 0) {
    throw new ConfigError(
      path,
      doc.errors.map((e) => ({
        line: lineAt(e.pos[0]),
        key: "",
        message: e.message.split("\n")[0]!,
      })),
    );
  }

  /** Line of the deepest node the path reaches (a missing key points at its parent). */
  const lineOf = (keyPath: readonly PropertyKey[], unknownKey?: string): number => {
    let node: unknown = doc.contents;
    let line = node && (node as Node).range ? lineAt((node as Node).range![0]) : 1;
    const steps = unknownKey === undefined ? keyPath : [...keyPath, unknownKey];
    for (const step of steps) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === step);
        if (!pair) break;
        if (isScalar(pair.key) && pair.key.range) line = lineAt(pair.key.range[0]);
        node = pair.value;
        if (unknownKey !== undefined && step === unknownKey) break;
      } else if (isSeq(node) && typeof step === "number") {
        const item = node.items[step];
        if (!item) break;
        node = item;
        if ((item as Node).range) line = lineAt((item as Node).range![0]);
      } else break;
    }
    return line;
  };

  const raw = doc.toJS() ?? {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(path, [{ line: 1, key: "", message: "the config must be a mapping" }]);
  }
  const parsed = imageConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(path, issuesFrom(parsed.error, lineOf));
  }
  const loaded: LoadedConfig = {
    path,
    dir: dirname(path),
    config: parsed.data,
    lineOf: (p) => lineOf(p),
  };
  checkReferencedFiles(loaded);
  return loaded;
}

function issuesFrom(
  error: z.ZodError,
  lineOf: (path: readonly PropertyKey[], unknownKey?: string) => number,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys) {
        issues.push({
          line: lineOf(issue.path, k),
          key: keyString([...issue.path, k]),
          message: "unknown key",
        });
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_type" && /received undefined/.test(message)) message = "required";
    if (issue.code === "invalid_value" && "values" in issue) {
      message = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    }
    issues.push({ line: lineOf(issue.path), key: keyString(issue.path), message });
  }
  return issues.sort((a, b) => a.line - b.line);
}

/** Files and directories the config names must exist; say where they were named. */
function checkReferencedFiles(loaded: LoadedConfig): void {
  const { config, dir, path } = loaded;
  const issues: ConfigIssue[] = [];
  const want = (rel: string, keyPath: (string | number)[], kind: "dir" | "file") => {
    const abs = resolve(dir, rel);
    const st = existsSync(abs) ? statSync(abs) : undefined;
    if (!st || (kind === "dir" ? !st.isDirectory() : !st.isFile())) {
      issues.push({
        line: loaded.lineOf(keyPath),
        key: keyString(keyPath),
        message: `${kind === "dir" ? "directory" : "file"} ${abs} does not exist`,
      });
    }
  };
  config.overlays.forEach((o, i) => {
    want(o.source, ["overlays", i, "source"], "dir");
  });
  config.oem.forEach((o, i) => {
    if (o.files) want(o.files, ["oem", i, "files"], "dir");
  });
  if (config.prod.signingKey) want(config.prod.signingKey, ["prod", "signingKey"], "file");
  const ids = new Set<string>();
  config.oem.forEach((o, i) => {
    if (ids.has(o.id)) {
      issues.push({
        line: loaded.lineOf(["oem", i, "id"]),
        key: `oem[${i}].id`,
        message: `duplicate id ${o.id}`,
      });
    }
    ids.add(o.id);
  });
  if (config.flavour === "prod") {
    if (!config.prod.signingKey) {
      issues.push({
        line: loaded.lineOf(["flavour"]),
        key: "prod.signingKey",
        message: "prod images need the update-signing public key (prod.signingKey)",
      });
    }
    if (config.dev.debugPassword || config.dev.users.length > 0) {
      issues.push({
        line: loaded.lineOf(["dev"]),
        key: "dev",
        message: "prod images allow no debug access: remove dev.debugPassword and dev.users",
      });
    }
  }
  if (config.oem.length === 0) {
    issues.push({
      line: loaded.lineOf(["oem"]),
      key: "oem",
      message: "at least one OEM variant is needed",
    });
  }
  if (issues.length > 0) throw new ConfigError(path, issues);
}
