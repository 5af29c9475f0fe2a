/**
 * What a host should look like after first boot, independent of how the user wrote it (our
 * YAML or legacy cloud-config), and its one translation to Ignition JSON. Both front ends fill
 * this model, so equal intent renders to equal Ignition.
 */
import type { SpecVersion } from "./spec.ts";
import { renderUpdateConf, UPDATE_CONF_PATH, type UpdateSettings } from "./updateconf.ts";

export type Owner = { id: number } | { name: string };

export interface Contents {
  /** http(s)/tftp/s3/gs/data URL. */
  source: string;
  /** `sha512-<hex>` or `sha256-<hex>` of the (decompressed) contents. */
  hash?: string;
  compression?: "gzip";
}

export interface UserSpec {
  name: string;
  passwordHash?: string;
  sshAuthorizedKeys?: string[];
  groups?: string[];
  uid?: number;
  gecos?: string;
  homeDir?: string;
  shell?: string;
  primaryGroup?: string;
  noCreateHome?: boolean;
  system?: boolean;
}

export interface GroupSpec {
  name: string;
  gid?: number;
  passwordHash?: string;
  system?: boolean;
}

interface NodeSpec {
  path: string;
  overwrite?: boolean;
  user?: Owner;
  group?: Owner;
}
export interface FileSpec extends NodeSpec {
  mode?: number;
  contents?: Contents;
  append?: Contents[];
}
export interface DirectorySpec extends NodeSpec {
  mode?: number;
}
export interface LinkSpec extends NodeSpec {
  target: string;
  hard?: boolean;
}
export interface UnitSpec {
  name: string;
  enabled?: boolean;
  mask?: boolean;
  contents?: string;
  dropins?: { name: string; contents?: string }[];
}

export interface ProvisionSpec {
  spec: SpecVersion;
  users: UserSpec[];
  groups: GroupSpec[];
  files: FileSpec[];
  directories: DirectorySpec[];
  links: LinkSpec[];
  units: UnitSpec[];
  update?: UpdateSettings;
}

export function emptySpec(spec: SpecVersion): ProvisionSpec {
  return { spec, users: [], groups: [], files: [], directories: [], links: [], units: [] };
}

/** The Ignition config as plain JSON-able data; empty sections are left out. */
export type IgnitionConfig = { ignition: { version: string } } & Record<string, unknown>;

export function toIgnition(p: ProvisionSpec): IgnitionConfig {
  const files = p.files.map(fileEntry);
  if (p.update && Object.values(p.update).some((v) => v !== undefined)) {
    files.push(
      fileEntry({
        path: UPDATE_CONF_PATH,
        mode: 0o644,
        overwrite: true,
        contents: { source: dataUrl(renderUpdateConf(p.update)) },
      }),
    );
  }
  const passwd = compact({
    users: p.users.map((u) => compact({ ...u })),
    groups: p.groups.map((g) => compact({ ...g })),
  });
  const storage = compact({
    files,
    directories: p.directories.map((d) => compact({ ...d })),
    links: p.links.map((l) => compact({ ...l })),
  });
  const systemd = compact({
    units: p.units.map((u) => compact({ ...u, dropins: u.dropins?.map((d) => compact({ ...d })) })),
  });
  return compact({ ignition: { version: p.spec }, passwd, storage, systemd }) as IgnitionConfig;
}

function fileEntry(f: FileSpec): Record<string, unknown> {
  return compact({
    path: f.path,
    overwrite: f.overwrite,
    user: f.user,
    group: f.group,
    mode: f.mode,
    contents: f.contents && resource(f.contents),
    append: f.append?.map(resource),
  });
}

function resource(c: Contents): Record<string, unknown> {
  return compact({
    source: c.source,
    compression: c.compression,
    verification: c.hash ? { hash: c.hash } : undefined,
  });
}

/**
 * A data URL for bytes: percent-encoded text or base64, whichever is shorter (text stays
 * readable in the JSON; binaries stay small).
 */
export function dataUrl(content: string | Uint8Array): string {
  const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : Buffer.from(content);
  let escaped = "data:,";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    escaped += /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/.test(c)
      ? c
      : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  const b64 = `data:;base64,${bytes.toString("base64")}`;
  return b64.length < escaped.length ? b64 : escaped;
}

/** Decode a data URL back to bytes (tests and `config show` use it). */
export function decodeDataUrl(url: string): Buffer {
  const comma = url.indexOf(",");
  const meta = url.slice(5, comma);
  const data = url.slice(comma + 1);
  if (meta.split(";").includes("base64")) return Buffer.from(decodeURIComponent(data), "base64");
  const bytes: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === "%") {
      bytes.push(Number.parseInt(data.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(data.charCodeAt(i));
    }
  }
  return Buffer.from(bytes);
}

/** Drop undefined values, empty lists and empty objects, so output has no noise. */
function compact(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0) {
      continue;
    }
    out[k] = v;
  }
  return out;
}
