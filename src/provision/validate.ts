/**
 * Structural validation of an Ignition 3.x config, independent of the ignition-validate binary:
 * types, spec version, field gating per spec minor, paths, modes, hashes, data URLs, unit names
 * and contents, duplicate entries. Paths are reported in ignition-validate's `$.a.0.b` notation
 * so the two verdicts can be compared line for line. Disk layout sections (disks, raid,
 * filesystems, luks) are type-checked only at the top level.
 */
import { posix } from "node:path";
import { type Diagnostic, type PathSegment, SourceDoc, type ValuePath } from "./source.ts";
import { isSupportedSpec, type SpecVersion, specMinor } from "./spec.ts";

type Schema =
  | { kind: "string" | "int" | "bool" | "any" }
  | { kind: "array"; of: Schema }
  | { kind: "object"; fields: Record<string, Field> };
interface Field {
  schema: Schema;
  /** First spec minor (3.x) that has this field; older specs treat it as an unused key. */
  since?: number;
}

const str: Schema = { kind: "string" };
const int: Schema = { kind: "int" };
const bool: Schema = { kind: "bool" };
const any: Schema = { kind: "any" };
const arr = (of: Schema): Schema => ({ kind: "array", of });
const obj = (fields: Record<string, Schema | Field>): Schema => ({
  kind: "object",
  fields: Object.fromEntries(
    Object.entries(fields).map(([k, v]) => [k, "schema" in v ? v : { schema: v }]),
  ),
});

const resource = obj({
  source: str,
  compression: str,
  verification: obj({ hash: str }),
  httpHeaders: { schema: arr(obj({ name: str, value: str })), since: 1 },
});
const nodeOwner = obj({ id: int, name: str });
const node = { path: str, overwrite: bool, user: nodeOwner, group: nodeOwner };

const CONFIG_SCHEMA = obj({
  ignition: obj({
    version: str,
    config: obj({ merge: arr(resource), replace: resource }),
    timeouts: obj({ httpResponseHeaders: int, httpTotal: int }),
    security: obj({ tls: obj({ certificateAuthorities: arr(resource) }) }),
    proxy: { schema: obj({ httpProxy: str, httpsProxy: str, noProxy: arr(str) }), since: 1 },
  }),
  passwd: obj({
    users: arr(
      obj({
        name: str,
        passwordHash: str,
        sshAuthorizedKeys: arr(str),
        uid: int,
        gecos: str,
        homeDir: str,
        noCreateHome: bool,
        primaryGroup: str,
        groups: arr(str),
        noUserGroup: bool,
        noLogInit: bool,
        shell: str,
        system: bool,
        shouldExist: { schema: bool, since: 2 },
      }),
    ),
    groups: arr(
      obj({
        name: str,
        gid: int,
        passwordHash: str,
        system: bool,
        shouldExist: { schema: bool, since: 2 },
      }),
    ),
  }),
  storage: obj({
    disks: arr(any),
    raid: arr(any),
    filesystems: arr(any),
    luks: { schema: arr(any), since: 2 },
    files: arr(obj({ ...node, contents: resource, append: arr(resource), mode: int })),
    directories: arr(obj({ ...node, mode: int })),
    links: arr(obj({ ...node, target: str, hard: bool })),
  }),
  systemd: obj({
    units: arr(
      obj({
        name: str,
        enabled: bool,
        mask: bool,
        contents: str,
        dropins: arr(obj({ name: str, contents: str })),
      }),
    ),
  }),
  kernelArguments: {
    schema: obj({ shouldExist: arr(str), shouldNotExist: arr(str) }),
    since: 3,
  },
});

const UNIT_SUFFIXES = [
  ".service",
  ".socket",
  ".device",
  ".mount",
  ".automount",
  ".swap",
  ".target",
  ".path",
  ".timer",
  ".snapshot",
  ".slice",
  ".scope",
];

export interface ValidationResult {
  /** The spec version the config declares, when it is one we know. */
  version: SpecVersion | undefined;
  diagnostics: Diagnostic[];
  ok: boolean;
}

/** Validate Ignition JSON text; `file` names it in diagnostics. */
export function validateIgnitionText(text: string, file: string): ValidationResult {
  const { doc, errors } = SourceDoc.parseJson(text, file);
  if (!doc) return { version: undefined, diagnostics: errors, ok: false };
  return validateIgnition(doc);
}

/** Validate a parsed config (JSON or YAML source, so findings carry line numbers). */
export function validateIgnition(doc: SourceDoc): ValidationResult {
  const out: Diagnostic[] = [];
  const report = (path: ValuePath, message: string, severity: Diagnostic["severity"] = "error") =>
    out.push(doc.at(path, message, severity));
  const cfg = doc.value;

  if (!isObject(cfg)) {
    report([], "an Ignition config must be a JSON object");
    return { version: undefined, diagnostics: out, ok: false };
  }
  const version = checkVersion(cfg, report);
  if (!version) return { version: undefined, diagnostics: out, ok: false };
  const minor = specMinor(version);

  checkShape(cfg, CONFIG_SCHEMA, [], minor, report);
  checkResources(cfg, minor, report);
  checkPasswd(cfg, report);
  checkStorage(cfg, minor, report);
  checkSystemd(cfg, report);

  out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  return { version, diagnostics: out, ok: !out.some((d) => d.severity === "error") };
}

type Report = (path: ValuePath, message: string, severity?: Diagnostic["severity"]) => void;

function checkVersion(cfg: Record<string, unknown>, report: Report): SpecVersion | undefined {
  const ign = cfg.ignition;
  const version = isObject(ign) ? ign.version : undefined;
  if (typeof version !== "string" || version === "") {
    report(["ignition", "version"], 'ignition.version is required (e.g. "3.3.0")');
    return undefined;
  }
  if (!isSupportedSpec(version)) {
    const hint =
      version === "3.4.0"
        ? ' (Ignition 2.14 in the image accepts 3.4.0 only as "3.4.0-experimental")'
        : " (supported: 3.0.0, 3.1.0, 3.2.0, 3.3.0, 3.4.0-experimental)";
    report(["ignition", "version"], `unsupported config version "${version}"${hint}`);
    return undefined;
  }
  return version;
}

/** Types and unknown keys, walking the schema; null is an absent optional value. */
function checkShape(
  value: unknown,
  schema: Schema,
  path: PathSegment[],
  minor: number,
  report: Report,
): void {
  if (value === null || schema.kind === "any") return;
  switch (schema.kind) {
    case "string":
      if (typeof value !== "string") report(path, `expected a string, got ${describe(value)}`);
      return;
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value)) {
        report(path, `expected an integer, got ${describe(value)}`);
      }
      return;
    case "bool":
      if (typeof value !== "boolean")
        report(path, `expected true or false, got ${describe(value)}`);
      return;
    case "array":
      if (!Array.isArray(value)) {
        report(path, `expected a list, got ${describe(value)}`);
        return;
      }
      value.forEach((item, i) => {
        checkShape(item, schema.of, [...path, i], minor, report);
      });
      return;
    case "object":
      if (!isObject(value)) {
        report(path, `expected an object, got ${describe(value)}`);
        return;
      }
      for (const [key, v] of Object.entries(value)) {
        const field = schema.fields[key];
        if (!field || (field.since ?? 0) > minor) {
          report([...path, key], `Unused key ${key}`, "warning");
          continue;
        }
        checkShape(v, field.schema, [...path, key], minor, report);
      }
  }
}

/** Every place a fetchable resource can appear: sources, hashes, compression. */
function checkResources(cfg: Record<string, unknown>, minor: number, report: Report): void {
  const ign = objAt(cfg, "ignition");
  const config = objAt(ign, "config");
  for (const [i, r] of listAt(config, "merge").entries()) {
    checkResource(r, ["ignition", "config", "merge", i], minor, report);
  }
  if (isObject(config?.replace)) {
    checkResource(config.replace, ["ignition", "config", "replace"], minor, report);
  }
  const cas = listAt(objAt(objAt(ign, "security"), "tls"), "certificateAuthorities");
  for (const [i, r] of cas.entries()) {
    checkResource(r, ["ignition", "security", "tls", "certificateAuthorities", i], minor, report);
  }
  for (const [i, f] of listAt(objAt(cfg, "storage"), "files").entries()) {
    if (!isObject(f)) continue;
    if (isObject(f.contents)) {
      checkResource(f.contents, ["storage", "files", i, "contents"], minor, report);
    }
    for (const [j, r] of listAt(f, "append").entries()) {
      checkResource(r, ["storage", "files", i, "append", j], minor, report);
    }
  }
}

function checkResource(r: unknown, path: PathSegment[], minor: number, report: Report): void {
  if (!isObject(r)) return;
  if (typeof r.source === "string") {
    const problem = sourceProblem(r.source, minor);
    if (problem) report([...path, "source"], problem);
  }
  if (typeof r.compression === "string" && !["", "gzip"].includes(r.compression)) {
    report([...path, "compression"], `invalid compression method "${r.compression}" (use gzip)`);
  }
  const hash = objAt(r, "verification")?.hash;
  if (typeof hash === "string") {
    const problem = hashProblem(hash, minor);
    if (problem) report([...path, "verification", "hash"], problem);
  }
}

/** Why a resource URL would be refused, or undefined when it is fine. */
export function sourceProblem(source: string, minor: number): string | undefined {
  if (source === "") return undefined;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(source)?.[1]?.toLowerCase();
  const schemes = ["http", "https", "tftp", "s3", "data", ...(minor >= 1 ? ["gs"] : [])];
  if (minor >= 4) schemes.push("arn");
  if (!scheme || !schemes.includes(scheme)) {
    return `invalid url scheme in "${truncate(source)}" (use ${schemes.join(", ")})`;
  }
  if (scheme === "data") return dataUrlProblem(source);
  try {
    new URL(source);
  } catch {
    return `invalid url "${truncate(source)}"`;
  }
  return undefined;
}

const URL_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;

/** RFC 2397: `data:[<mediatype>][;base64],<data>`, with the characters a URL may hold. */
export function dataUrlProblem(url: string): string | undefined {
  const comma = url.indexOf(",");
  if (comma < 0) return "invalid data url: no comma before the data";
  const meta = url.slice("data:".length, comma);
  const data = url.slice(comma + 1);
  if (!URL_CHARS.test(meta) || !URL_CHARS.test(data)) return "invalid data character";
  if (/%(?![0-9A-Fa-f]{2})/.test(data)) return "invalid percent escape in data url";
  if (meta.split(";").includes("base64")) {
    let raw: string;
    try {
      raw = decodeURIComponent(data);
    } catch {
      return "invalid percent escape in data url";
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(raw) || raw.length % 4 === 1) {
      return "invalid base64 data in data url";
    }
  }
  return undefined;
}

/** `sha512-<128 hex>` (all 3.x) or `sha256-<64 hex>` (3.1 and newer). */
export function hashProblem(hash: string, minor: number): string | undefined {
  const m = /^([a-z0-9]+)-(.*)$/.exec(hash);
  if (!m) return `invalid hash "${truncate(hash)}" (expected sha512-<hex> or sha256-<hex>)`;
  const [, fn, sum] = m as unknown as [string, string, string];
  const sizes: Record<string, number> = { sha512: 128, ...(minor >= 1 ? { sha256: 64 } : {}) };
  const size = sizes[fn];
  if (size === undefined) {
    return `unrecognized hash function "${fn}" (use ${Object.keys(sizes).join(" or ")})`;
  }
  if (sum.length !== size || !/^[0-9a-f]*$/.test(sum)) {
    return `incorrect size for hash sum: ${fn} needs ${size} lowercase hex digits`;
  }
  return undefined;
}

function checkPasswd(cfg: Record<string, unknown>, report: Report): void {
  const passwd = objAt(cfg, "passwd");
  for (const list of ["users", "groups"] as const) {
    const seen = new Set<string>();
    for (const [i, entry] of listAt(passwd, list).entries()) {
      if (!isObject(entry)) continue;
      const name = entry.name;
      if (typeof name !== "string" || name === "") {
        report(
          ["passwd", list, i, "name"],
          `${list === "users" ? "user" : "group"} name is required`,
        );
        continue;
      }
      if (seen.has(name)) report(["passwd", list, i], `duplicate entry defined (${name})`);
      seen.add(name);
    }
  }
}

type NodeKind = "files" | "directories" | "links";
const NODE_KINDS: NodeKind[] = ["files", "directories", "links"];

function checkStorage(cfg: Record<string, unknown>, minor: number, report: Report): void {
  const storage = objAt(cfg, "storage");
  const firstByPath = new Map<string, PathSegment[]>();
  const linkPaths: string[] = [];
  for (const kind of NODE_KINDS) {
    for (const [i, entry] of listAt(storage, kind).entries()) {
      if (!isObject(entry)) continue;
      const at: PathSegment[] = ["storage", kind, i];
      if (kind === "links" && typeof entry.path === "string") linkPaths.push(entry.path);
      checkNode(entry, at, kind, minor, report);
      if (typeof entry.path !== "string") continue;
      const first = firstByPath.get(entry.path);
      if (!first) firstByPath.set(entry.path, at);
      // Within one list Ignition names the later entry; across lists, the earlier one.
      else report(first[1] === kind ? at : first, `duplicate entry defined (${entry.path})`);
    }
  }
  for (const kind of ["files", "directories"] as const) {
    for (const [i, entry] of listAt(storage, kind).entries()) {
      const p = isObject(entry) ? entry.path : undefined;
      if (typeof p !== "string") continue;
      if (linkPaths.some((l) => p.startsWith(`${l}/`))) {
        report(["storage", kind, i], "file path includes link in config");
      }
    }
  }
}

function checkNode(
  entry: Record<string, unknown>,
  at: PathSegment[],
  kind: NodeKind,
  minor: number,
  report: Report,
): void {
  const p = entry.path;
  if (typeof p !== "string" || p === "") report([...at, "path"], "path is required");
  else if (!p.startsWith("/")) report([...at, "path"], `path not absolute: "${p}"`);
  else if (posix.normalize(p).replace(/(.)\/$/, "$1") !== p) {
    report([...at, "path"], `path is not fully simplified: "${p}"`);
  }
  for (const owner of ["user", "group"] as const) {
    const o = objAt(entry, owner);
    if (o && o.id != null && o.name != null) report([...at, owner], "cannot set both id and name");
  }
  if (typeof entry.mode === "number" && Number.isInteger(entry.mode)) {
    if (entry.mode < 0 || entry.mode > 0o7777) {
      report([...at, "mode"], `illegal file mode ${entry.mode} (use 0 to 0o7777)`);
    } else if (entry.mode & 0o7000 && minor < 4) {
      report(
        [...at, "mode"],
        "setuid/setgid/sticky bits are not supported in spec versions older than 3.4.0",
        "warning",
      );
    }
  }
  if (kind === "links" && (typeof entry.target !== "string" || entry.target === "")) {
    report([...at, "target"], "link target is required");
  }
}

function checkSystemd(cfg: Record<string, unknown>, report: Report): void {
  const seen = new Set<string>();
  for (const [i, unit] of listAt(objAt(cfg, "systemd"), "units").entries()) {
    if (!isObject(unit)) continue;
    const at: PathSegment[] = ["systemd", "units", i];
    const name = unit.name;
    if (typeof name !== "string" || name === "") {
      report([...at, "name"], "unit name is required");
    } else {
      if (!UNIT_SUFFIXES.some((s) => name.endsWith(s) && name.length > s.length)) {
        report([...at, "name"], `invalid systemd unit extension in "${name}"`);
      }
      if (seen.has(name)) report(at, `duplicate entry defined (${name})`);
      seen.add(name);
    }
    if (typeof unit.contents === "string") {
      const problem = unitContentProblem(unit.contents);
      if (problem) report([...at, "contents"], `invalid unit content: ${problem}`);
    }
    const dropinNames = new Set<string>();
    for (const [j, d] of listAt(unit, "dropins").entries()) {
      if (!isObject(d)) continue;
      const dn = d.name;
      if (typeof dn !== "string" || !dn.endsWith(".conf")) {
        report([...at, "dropins", j, "name"], "invalid systemd drop-in extension (use .conf)");
      } else if (dropinNames.has(dn)) {
        report([...at, "dropins", j], `duplicate entry defined (${dn})`);
      }
      if (typeof dn === "string") dropinNames.add(dn);
      if (typeof d.contents === "string") {
        const problem = unitContentProblem(d.contents);
        if (problem) report([...at, "dropins", j, "contents"], `invalid unit content: ${problem}`);
      }
    }
  }
}

/**
 * The unit-file syntax errors systemd's (and Ignition's) parser rejects: an unclosed section
 * header, or a line in a section that is neither `Key=Value`, a comment nor a continuation.
 */
export function unitContentProblem(contents: string): string | undefined {
  let inSection = false;
  let continued = false;
  for (const [i, raw] of contents.split("\n").entries()) {
    const line = raw.trim();
    const wasContinued = continued;
    continued = line.endsWith("\\");
    if (wasContinued || line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      if (!line.endsWith("]")) return `line ${i + 1}: unable to find end of section`;
      inSection = true;
      continue;
    }
    if (inSection && !line.includes("=")) return `line ${i + 1}: expected Key=Value, got "${line}"`;
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function objAt(v: unknown, key: string): Record<string, unknown> | undefined {
  if (!isObject(v)) return undefined;
  const x = v[key];
  return isObject(x) ? x : undefined;
}
function listAt(v: unknown, key: string): unknown[] {
  if (!isObject(v)) return [];
  const x = v[key];
  return Array.isArray(x) ? x : [];
}
function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return `${typeof v} ${JSON.stringify(v)}`;
}
function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
