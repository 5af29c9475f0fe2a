/**
 * Legacy CoreOS `#cloud-config` read into the provisioning model, so it renders to the same
 * Ignition as the equivalent YAML. Keys without an Ignition equivalent are skipped with a
 * warning naming each one (etcd2, fleet, flannel, runtime units, …).
 */
import { gunzipSync } from "node:zlib";
import { reportUpdateProblems } from "./authoring.ts";
import type { Owner, ProvisionSpec, UnitSpec, UserSpec } from "./model.ts";
import { dataUrl, emptySpec } from "./model.ts";
import { DocReader } from "./read.ts";
import type { PathSegment, SourceDoc } from "./source.ts";
import { DEFAULT_SPEC_VERSION } from "./spec.ts";
import type { UpdateField, UpdateSettings } from "./updateconf.ts";

export function isCloudConfig(text: string): boolean {
  return /^#cloud-config[ \t]*\r?$/m.test(text.split("\n", 1)[0] ?? "");
}

type P = readonly PathSegment[];

/** Where each rendered entry came from, to point Ignition-level findings at cloud-config lines. */
export interface CloudConfigOrigins {
  files: P[];
  users: P[];
  units: P[];
}

export function readCloudConfig(doc: SourceDoc): {
  spec: ProvisionSpec;
  r: DocReader;
  origins: CloudConfigOrigins;
} {
  const r = new DocReader(doc);
  const spec = emptySpec(DEFAULT_SPEC_VERSION);
  const origins: CloudConfigOrigins = { files: [], users: [], units: [] };
  const top = r.map(doc.value, [], null) ?? {};
  const SUPPORTED = ["ssh_authorized_keys", "hostname", "users", "write_files", "coreos"];
  for (const key of Object.keys(top)) {
    if (!SUPPORTED.includes(key)) r.unsupported([key]);
  }

  // Top-level keys belong to the `core` user, as coreos-cloudinit did it.
  const coreKeys = r.strList(top.ssh_authorized_keys, ["ssh_authorized_keys"]);
  if (coreKeys?.length) {
    spec.users.push({ name: "core", sshAuthorizedKeys: coreKeys });
    origins.users.push(["ssh_authorized_keys"]);
  }
  for (const [i, u] of r.list(top.users, ["users"]).entries()) {
    const user = readUser(r, u, ["users", i]);
    if (!user) continue;
    const same = spec.users.find((x) => x.name === user.name);
    if (same) {
      same.sshAuthorizedKeys = [
        ...(same.sshAuthorizedKeys ?? []),
        ...(user.sshAuthorizedKeys ?? []),
      ];
      Object.assign(same, { ...user, sshAuthorizedKeys: same.sshAuthorizedKeys });
    } else {
      spec.users.push(user);
      origins.users.push(["users", i]);
    }
  }

  const hostname = r.str(top.hostname, ["hostname"]);
  if (hostname !== undefined) {
    spec.files.push({
      path: "/etc/hostname",
      mode: 0o644,
      overwrite: true,
      contents: { source: dataUrl(`${hostname}\n`) },
    });
    origins.files.push(["hostname"]);
  }
  for (const [i, f] of r.list(top.write_files, ["write_files"]).entries()) {
    const p = ["write_files", i];
    const m = r.map(f, p, ["path", "content", "encoding", "permissions", "owner"]);
    if (!m) continue;
    const content = decodeContent(r, m, p);
    const owner = readOwnerPair(r, m.owner, [...p, "owner"]);
    spec.files.push({
      path: r.requiredStr(m.path, [...p, "path"], "path") ?? "",
      mode: r.mode(m.permissions, [...p, "permissions"]) ?? 0o644,
      overwrite: true,
      ...owner,
      contents: content === undefined ? undefined : { source: dataUrl(content) },
    });
    origins.files.push(p);
  }

  const coreos = r.map(top.coreos, ["coreos"], null);
  for (const key of Object.keys(coreos ?? {})) {
    if (!["units", "update", "locksmith"].includes(key)) r.unsupported(["coreos", key]);
  }
  for (const [i, u] of r.list(coreos?.units, ["coreos", "units"]).entries()) {
    const unit = readUnit(r, u, ["coreos", "units", i]);
    if (unit) {
      spec.units.push(unit);
      origins.units.push(["coreos", "units", i]);
    }
  }
  const update = readUpdate(r, coreos);
  if (update) spec.update = update;

  for (const p of findSubstitutions(doc.value, [])) {
    r.warn(
      p,
      "$public_ipv4/$private_ipv4 are not substituted; read COREOS_PUBLIC_IPV4/COREOS_PRIVATE_IPV4 from /etc/environment instead",
    );
  }
  return { spec, r, origins };
}

function readUser(r: DocReader, v: unknown, p: P): UserSpec | undefined {
  const known = [
    "name",
    "passwd",
    "groups",
    "ssh_authorized_keys",
    "gecos",
    "homedir",
    "no_create_home",
    "primary_group",
    "system",
    "shell",
    "uid",
  ];
  const m = r.map(v, p, null);
  if (!m) return undefined;
  for (const key of Object.keys(m)) if (!known.includes(key)) r.unsupported([...p, key]);
  const name = r.requiredStr(m.name, [...p, "name"], "user name");
  if (name === undefined) return undefined;
  // `groups` is a list, or a comma-separated string as cloud-init also allowed.
  const groups =
    typeof m.groups === "string"
      ? m.groups
          .split(",")
          .map((g) => g.trim())
          .filter(Boolean)
      : r.strList(m.groups, [...p, "groups"]);
  return {
    name,
    passwordHash: r.str(m.passwd, [...p, "passwd"]),
    sshAuthorizedKeys: r.strList(m.ssh_authorized_keys, [...p, "ssh_authorized_keys"]),
    groups,
    uid: r.int(typeof m.uid === "string" ? Number(m.uid) : m.uid, [...p, "uid"]),
    gecos: r.str(m.gecos, [...p, "gecos"]),
    homeDir: r.str(m.homedir, [...p, "homedir"]),
    shell: r.str(m.shell, [...p, "shell"]),
    primaryGroup: r.str(m.primary_group, [...p, "primary_group"]),
    noCreateHome: r.bool(m.no_create_home, [...p, "no_create_home"]),
    system: r.bool(m.system, [...p, "system"]),
  };
}

/** `content` after `encoding` (b64, gzip+base64, …): plain bytes for a data URL. */
function decodeContent(r: DocReader, m: Record<string, unknown>, p: P): Buffer | undefined {
  const content = r.str(m.content, [...p, "content"]) ?? "";
  const encoding = r.str(m.encoding, [...p, "encoding"])?.toLowerCase() ?? "";
  try {
    switch (encoding) {
      case "":
        return Buffer.from(content, "utf8");
      case "b64":
      case "base64":
        return Buffer.from(content, "base64");
      case "gz+b64":
      case "gz+base64":
      case "gzip+b64":
      case "gzip+base64":
        return gunzipSync(Buffer.from(content, "base64"));
      default:
        r.error([...p, "encoding"], `unsupported encoding "${encoding}" (use b64 or gzip+base64)`);
        return undefined;
    }
  } catch (e) {
    r.error([...p, "content"], `content does not decode as ${encoding}: ${(e as Error).message}`);
    return undefined;
  }
}

/** `owner: "user:group"` (either part a name or a number). */
function readOwnerPair(r: DocReader, v: unknown, p: P): { user?: Owner; group?: Owner } {
  const s = r.str(v, p);
  if (s === undefined || s === "") return {};
  const [u, g] = s.split(":", 2) as [string, string | undefined];
  const one = (x: string | undefined): Owner | undefined =>
    x === undefined || x === "" ? undefined : /^\d+$/.test(x) ? { id: Number(x) } : { name: x };
  return { user: one(u), group: one(g) };
}

function readUnit(r: DocReader, v: unknown, p: P): UnitSpec | undefined {
  const m = r.map(v, p, null);
  if (!m) return undefined;
  const known = ["name", "content", "enable", "command", "mask", "drop_ins", "runtime"];
  for (const key of Object.keys(m)) if (!known.includes(key)) r.unsupported([...p, key]);
  const name = r.requiredStr(m.name, [...p, "name"], "unit name");
  if (name === undefined) return undefined;
  const contents = r.str(m.content, [...p, "content"]);
  let enabled = r.bool(m.enable, [...p, "enable"]);
  const command = r.str(m.command, [...p, "command"]);
  if (command !== undefined) {
    if (["start", "restart", "reload-or-restart", "try-restart"].includes(command)) {
      // Ignition cannot start units; enabling starts it on this and every boot.
      enabled = true;
      if (contents !== undefined && !/^\s*\[Install\]/m.test(contents)) {
        r.warn(
          [...p, "command"],
          `command: ${command} becomes enabled: true, but the unit has no [Install] section to start it`,
        );
      }
    } else {
      r.warn([...p, "command"], `command: ${command} has no Ignition equivalent; skipped`);
    }
  }
  if (r.bool(m.runtime, [...p, "runtime"]) === true) {
    r.warn([...p, "runtime"], "runtime units are not supported; the unit is written to /etc");
  }
  const dropins = r.list(m.drop_ins, [...p, "drop_ins"]).flatMap((d, j) => {
    const dp = [...p, "drop_ins", j];
    const dm = r.map(d, dp, ["name", "content"]);
    const dn = dm && r.requiredStr(dm.name, [...dp, "name"], "drop-in name");
    return dm && dn ? [{ name: dn, contents: r.str(dm.content, [...dp, "content"]) }] : [];
  });
  return {
    name,
    enabled,
    mask: r.bool(m.mask, [...p, "mask"]),
    contents,
    dropins: dropins.length ? dropins : undefined,
  };
}

const UPDATE_PATHS: Record<UpdateField, P> = {
  server: ["coreos", "update", "server"],
  group: ["coreos", "update", "group"],
  rebootStrategy: ["coreos", "update", "reboot-strategy"],
  rebootWindowStart: ["coreos", "locksmith", "window-start"],
  rebootWindowLength: ["coreos", "locksmith", "window-length"],
  etcdEndpoints: ["coreos", "locksmith", "endpoint"],
  fleetlockUrl: ["coreos", "locksmith"],
};

function readUpdate(
  r: DocReader,
  coreos: Record<string, unknown> | undefined,
): UpdateSettings | undefined {
  const up = r.map(coreos?.update, ["coreos", "update"], null);
  const ls = r.map(coreos?.locksmith, ["coreos", "locksmith"], null);
  if (!up && !ls) return undefined;
  for (const key of Object.keys(up ?? {})) {
    if (!["group", "server", "reboot-strategy"].includes(key))
      r.unsupported(["coreos", "update", key]);
  }
  for (const key of Object.keys(ls ?? {})) {
    if (!["window-start", "window-length", "endpoint"].includes(key))
      r.unsupported(["coreos", "locksmith", key]);
  }
  const endpoint = r.str(ls?.endpoint, UPDATE_PATHS.etcdEndpoints);
  const u: UpdateSettings = {
    server: r.str(up?.server, UPDATE_PATHS.server),
    group: r.str(up?.group, UPDATE_PATHS.group),
    rebootStrategy: r.str(up?.["reboot-strategy"], UPDATE_PATHS.rebootStrategy),
    rebootWindowStart: r.str(ls?.["window-start"], UPDATE_PATHS.rebootWindowStart),
    rebootWindowLength: r.str(ls?.["window-length"], UPDATE_PATHS.rebootWindowLength),
    etcdEndpoints: endpoint
      ?.split(",")
      .map((e) => e.trim())
      .filter(Boolean),
  };
  reportUpdateProblems(r, u, UPDATE_PATHS);
  return u;
}

function* findSubstitutions(v: unknown, p: PathSegment[]): Generator<PathSegment[]> {
  if (typeof v === "string" && /\$(public|private)_ipv4\b/.test(v)) yield p;
  else if (Array.isArray(v))
    for (const [i, x] of v.entries()) yield* findSubstitutions(x, [...p, i]);
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) yield* findSubstitutions(x, [...p, k]);
  }
}

/** Map a path in the rendered Ignition back to the cloud-config entry it came from. */
export function cloudConfigPathFor(ign: readonly PathSegment[], o: CloudConfigOrigins): P {
  const i = typeof ign[2] === "number" ? ign[2] : -1;
  if (ign[0] === "storage" && ign[1] === "files") {
    const origin = o.files[i];
    if (!origin) return ["coreos"];
    const field = ign[3] === "mode" ? "permissions" : ign[3] === "contents" ? "content" : ign[3];
    return origin[0] === "write_files" && field !== undefined ? [...origin, field] : origin;
  }
  if (ign[0] === "passwd" && ign[1] === "users") return o.users[i] ?? ["users"];
  if (ign[0] === "systemd" && ign[1] === "units") {
    const origin = o.units[i] ?? ["coreos", "units"];
    const field = ign[3] === "contents" ? "content" : ign[3] === "dropins" ? "drop_ins" : ign[3];
    return field === undefined ? origin : [...origin, field, ...ign.slice(4)];
  }
  return [];
}
