/**
 * Slipway's provisioning YAML: a small Butane-like language (same key names as Butane's fcos
 * variant for the parts it covers) read into the provisioning model. See docs/provisioning.md.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import type { Contents, GroupSpec, Owner, ProvisionSpec, UnitSpec, UserSpec } from "./model.ts";
import { dataUrl, emptySpec } from "./model.ts";
import { DocReader } from "./read.ts";
import type { PathSegment, SourceDoc } from "./source.ts";
import { AUTHORING_VARIANT, DEFAULT_SPEC_VERSION, resolveSpec, type SpecVersion } from "./spec.ts";
import type { UpdateField, UpdateSettings } from "./updateconf.ts";
import { checkUpdateSettings } from "./updateconf.ts";

export interface AuthoringOptions {
  /** Where `contents.local` paths are looked up; local files must stay inside it. */
  filesDir: string;
}

type P = readonly PathSegment[];

export function readAuthoring(
  doc: SourceDoc,
  opts: AuthoringOptions,
): { spec: ProvisionSpec; r: DocReader } {
  const r = new DocReader(doc);
  const top =
    r.map(doc.value, [], ["variant", "version", "passwd", "storage", "systemd", "update"]) ?? {};
  const spec = emptySpec(readHeader(r, top));

  const passwd = r.map(top.passwd, ["passwd"], ["users", "groups"]);
  for (const [i, u] of r.list(passwd?.users, ["passwd", "users"]).entries()) {
    const user = readUser(r, u, ["passwd", "users", i]);
    if (user) spec.users.push(user);
  }
  for (const [i, g] of r.list(passwd?.groups, ["passwd", "groups"]).entries()) {
    const group = readGroup(r, g, ["passwd", "groups", i]);
    if (group) spec.groups.push(group);
  }

  const storage = r.map(top.storage, ["storage"], ["files", "directories", "links"]);
  for (const [i, f] of r.list(storage?.files, ["storage", "files"]).entries()) {
    const p = ["storage", "files", i];
    const m = r.map(f, p, [...NODE_KEYS, "mode", "contents", "append"]);
    if (!m) continue;
    const contents = readContents(r, m.contents, [...p, "contents"], opts);
    const append = r
      .list(m.append, [...p, "append"])
      .map((a, j) => readContents(r, a, [...p, "append", j], opts))
      .filter((c): c is Contents => c !== undefined);
    spec.files.push({
      ...readNode(r, m, p),
      mode: r.mode(m.mode, [...p, "mode"]),
      contents,
      append: append.length ? append : undefined,
    });
  }
  for (const [i, d] of r.list(storage?.directories, ["storage", "directories"]).entries()) {
    const p = ["storage", "directories", i];
    const m = r.map(d, p, [...NODE_KEYS, "mode"]);
    if (m) spec.directories.push({ ...readNode(r, m, p), mode: r.mode(m.mode, [...p, "mode"]) });
  }
  for (const [i, l] of r.list(storage?.links, ["storage", "links"]).entries()) {
    const p = ["storage", "links", i];
    const m = r.map(l, p, [...NODE_KEYS, "target", "hard"]);
    if (!m) continue;
    const target = r.requiredStr(m.target, [...p, "target"], "link target") ?? "";
    spec.links.push({ ...readNode(r, m, p), target, hard: r.bool(m.hard, [...p, "hard"]) });
  }

  const systemd = r.map(top.systemd, ["systemd"], ["units"]);
  for (const [i, u] of r.list(systemd?.units, ["systemd", "units"]).entries()) {
    const unit = readUnit(r, u, ["systemd", "units", i]);
    if (unit) spec.units.push(unit);
  }

  const update = readUpdate(r, top.update);
  if (update) spec.update = update;
  return { spec, r };
}

function readHeader(r: DocReader, top: Record<string, unknown>): SpecVersion {
  const variant = r.str(top.variant, ["variant"]);
  const version = r.str(top.version, ["version"]);
  if (variant === undefined && version === undefined) return DEFAULT_SPEC_VERSION;
  if (variant === undefined || version === undefined) {
    r.error(variant === undefined ? ["version"] : ["variant"], "give both variant and version");
    return DEFAULT_SPEC_VERSION;
  }
  const resolved = resolveSpec(variant, version);
  if (typeof resolved === "string") {
    r.error([variant === AUTHORING_VARIANT ? "version" : "variant"], resolved);
    return DEFAULT_SPEC_VERSION;
  }
  if (resolved.note) r.warn(["version"], resolved.note);
  return resolved.spec;
}

const NODE_KEYS = ["path", "overwrite", "user", "group"] as const;

function readNode(r: DocReader, m: Record<string, unknown>, p: P) {
  return {
    path: r.requiredStr(m.path, [...p, "path"], "path") ?? "",
    overwrite: r.bool(m.overwrite, [...p, "overwrite"]),
    user: readOwner(r, m.user, [...p, "user"]),
    group: readOwner(r, m.group, [...p, "group"]),
  };
}

function readOwner(r: DocReader, v: unknown, p: P): Owner | undefined {
  const m = r.map(v, p, ["id", "name"]);
  if (!m) return undefined;
  const id = r.int(m.id, [...p, "id"]);
  const name = r.str(m.name, [...p, "name"]);
  if (id !== undefined && name !== undefined) {
    r.error(p, "give either id or name, not both");
    return undefined;
  }
  if (id !== undefined) return { id };
  if (name !== undefined) return { name };
  r.error(p, "give an id or a name");
  return undefined;
}

function readUser(r: DocReader, v: unknown, p: P): UserSpec | undefined {
  const m = r.map(v, p, [
    "name",
    "password_hash",
    "ssh_authorized_keys",
    "groups",
    "uid",
    "gecos",
    "home_dir",
    "shell",
    "primary_group",
    "no_create_home",
    "system",
  ]);
  if (!m) return undefined;
  const name = r.requiredStr(m.name, [...p, "name"], "user name");
  if (name === undefined) return undefined;
  return {
    name,
    passwordHash: r.str(m.password_hash, [...p, "password_hash"]),
    sshAuthorizedKeys: r.strList(m.ssh_authorized_keys, [...p, "ssh_authorized_keys"]),
    groups: r.strList(m.groups, [...p, "groups"]),
    uid: r.int(m.uid, [...p, "uid"]),
    gecos: r.str(m.gecos, [...p, "gecos"]),
    homeDir: r.str(m.home_dir, [...p, "home_dir"]),
    shell: r.str(m.shell, [...p, "shell"]),
    primaryGroup: r.str(m.primary_group, [...p, "primary_group"]),
    noCreateHome: r.bool(m.no_create_home, [...p, "no_create_home"]),
    system: r.bool(m.system, [...p, "system"]),
  };
}

function readGroup(r: DocReader, v: unknown, p: P): GroupSpec | undefined {
  const m = r.map(v, p, ["name", "gid", "password_hash", "system"]);
  if (!m) return undefined;
  const name = r.requiredStr(m.name, [...p, "name"], "group name");
  if (name === undefined) return undefined;
  return {
    name,
    gid: r.int(m.gid, [...p, "gid"]),
    passwordHash: r.str(m.password_hash, [...p, "password_hash"]),
    system: r.bool(m.system, [...p, "system"]),
  };
}

/** `inline`, `local` (read now) or `source` (fetched by Ignition, verified by hash). */
function readContents(
  r: DocReader,
  v: unknown,
  p: P,
  opts: AuthoringOptions,
): Contents | undefined {
  const m = r.map(v, p, ["inline", "local", "source", "verification", "compression"]);
  if (!m) return undefined;
  const given = (["inline", "local", "source"] as const).filter((k) => m[k] != null);
  if (given.length !== 1) {
    r.error(p, `give exactly one of inline, local or source (got ${given.join(", ") || "none"})`);
    return undefined;
  }
  const verification = r.map(m.verification, [...p, "verification"], ["hash"]);
  const hash = r.str(verification?.hash, [...p, "verification", "hash"]);
  const compression = r.str(m.compression, [...p, "compression"]);
  if (compression !== undefined && compression !== "gzip") {
    r.error([...p, "compression"], `unsupported compression "${compression}" (use gzip)`);
  }
  if (m.inline != null) {
    const text = r.str(m.inline, [...p, "inline"]);
    return text === undefined ? undefined : { source: dataUrl(text), hash };
  }
  if (m.local != null) {
    const bytes = readLocal(r, m.local, [...p, "local"], opts.filesDir);
    return bytes === undefined ? undefined : { source: dataUrl(bytes), hash };
  }
  const source = r.str(m.source, [...p, "source"]);
  if (source === undefined) return undefined;
  if (hash === undefined && /^(http|tftp):/i.test(source)) {
    r.warn([...p, "source"], "fetched over a plain channel without verification.hash: add one");
  }
  return { source, hash, compression: compression === "gzip" ? "gzip" : undefined };
}

function readLocal(r: DocReader, v: unknown, p: P, filesDir: string): Buffer | undefined {
  const rel = r.str(v, p);
  if (rel === undefined) return undefined;
  const full = resolve(filesDir, rel);
  const inside = relative(filesDir, full);
  if (isAbsolute(rel) || inside.startsWith("..") || isAbsolute(inside)) {
    r.error(p, `local file "${rel}" must be a path inside ${filesDir}`);
    return undefined;
  }
  try {
    return readFileSync(full);
  } catch (e) {
    r.error(p, `cannot read local file ${full}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    return undefined;
  }
}

function readUnit(r: DocReader, v: unknown, p: P): UnitSpec | undefined {
  const m = r.map(v, p, ["name", "enabled", "mask", "contents", "dropins"]);
  if (!m) return undefined;
  const name = r.requiredStr(m.name, [...p, "name"], "unit name");
  if (name === undefined) return undefined;
  const dropins = r.list(m.dropins, [...p, "dropins"]).flatMap((d, j) => {
    const dp = [...p, "dropins", j];
    const dm = r.map(d, dp, ["name", "contents"]);
    const dn = dm && r.requiredStr(dm.name, [...dp, "name"], "drop-in name");
    return dm && dn ? [{ name: dn, contents: r.str(dm.contents, [...dp, "contents"]) }] : [];
  });
  return {
    name,
    enabled: r.bool(m.enabled, [...p, "enabled"]),
    mask: r.bool(m.mask, [...p, "mask"]),
    contents: r.str(m.contents, [...p, "contents"]),
    dropins: dropins.length ? dropins : undefined,
  };
}

/** Where each update setting lives in our YAML, for diagnostics. */
const UPDATE_PATHS: Record<UpdateField, P> = {
  server: ["update", "server"],
  group: ["update", "group"],
  rebootStrategy: ["update", "reboot_strategy"],
  rebootWindowStart: ["update", "reboot_window", "start"],
  rebootWindowLength: ["update", "reboot_window", "length"],
  etcdEndpoints: ["update", "etcd_endpoints"],
  fleetlockUrl: ["update", "fleetlock_url"],
};

function readUpdate(r: DocReader, v: unknown): UpdateSettings | undefined {
  const m = r.map(
    v,
    ["update"],
    ["server", "group", "reboot_strategy", "reboot_window", "etcd_endpoints", "fleetlock_url"],
  );
  if (!m) return undefined;
  const w = r.map(m.reboot_window, ["update", "reboot_window"], ["start", "length"]);
  const u: UpdateSettings = {
    server: r.str(m.server, UPDATE_PATHS.server),
    group: r.str(m.group, UPDATE_PATHS.group),
    rebootStrategy: r.str(m.reboot_strategy, UPDATE_PATHS.rebootStrategy),
    rebootWindowStart: r.str(w?.start, UPDATE_PATHS.rebootWindowStart),
    rebootWindowLength: r.str(w?.length, UPDATE_PATHS.rebootWindowLength),
    etcdEndpoints: r.strList(m.etcd_endpoints, UPDATE_PATHS.etcdEndpoints),
    fleetlockUrl: r.str(m.fleetlock_url, UPDATE_PATHS.fleetlockUrl),
  };
  reportUpdateProblems(r, u, UPDATE_PATHS);
  return u;
}

export function reportUpdateProblems(
  r: DocReader,
  u: UpdateSettings,
  paths: Record<UpdateField, P>,
): void {
  for (const problem of checkUpdateSettings(u)) {
    const at = paths[problem.field];
    if (problem.severity === "error") r.error(at, problem.message);
    else r.warn(at, problem.message);
  }
}

/**
 * Where an Ignition JSON path produced from our YAML came from: the same structure with
 * snake_case keys; contents.source names whichever of inline/local/source the user wrote;
 * files past the user's own (update.conf) come from `update`.
 */
export function authoringPathFor(ign: readonly PathSegment[], doc: SourceDoc): PathSegment[] {
  if (ign[0] === "ignition") return ["version"];
  const yamlFiles = (doc.value as { storage?: { files?: unknown[] } } | null)?.storage?.files;
  if (ign[0] === "storage" && ign[1] === "files" && typeof ign[2] === "number") {
    if (ign[2] >= (Array.isArray(yamlFiles) ? yamlFiles.length : 0)) return ["update"];
  }
  const out: PathSegment[] = [];
  for (const seg of ign) {
    if (typeof seg === "number") {
      out.push(seg);
      continue;
    }
    if (seg === "source" && out.at(-1) !== undefined) {
      const node = doc.nodeAt([...out, "local"]) === doc.nodeAt(out) ? undefined : "local";
      const inline = doc.nodeAt([...out, "inline"]) === doc.nodeAt(out) ? undefined : "inline";
      out.push(inline ?? node ?? "source");
      continue;
    }
    out.push(seg.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
  }
  return out;
}
