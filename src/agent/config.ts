/**
 * update.conf: shell-style `KEY=value` lines. The image ships defaults in
 * /usr/share/slipway/update.conf; the host overrides them key by key in
 * /etc/slipway/update.conf. Every path is taken under a root prefix so tests
 * can run the agent against a directory tree standing in for a host.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../errors.ts";
import { parseDuration, parseWindowStart, type RebootWindow } from "./window.ts";

export const REBOOT_STRATEGIES = [
  "reboot",
  "etcd-lock",
  "fleetlock",
  "best-effort",
  "off",
] as const;
export type RebootStrategy = (typeof REBOOT_STRATEGIES)[number];

export interface AgentConfig {
  /** Omaha endpoint, e.g. http://updates.example/v1/update/ */
  server: string | undefined;
  group: string;
  appId: string;
  strategy: RebootStrategy;
  window: RebootWindow | undefined;
  etcdEndpoints: string[];
  etcdLockPrefix: string | undefined;
  /** Places created in a new etcd semaphore. */
  lockMax: number;
  fleetlockUrl: string | undefined;
  /** Lock group; defaults to GROUP. */
  lockGroup: string;
  /** Boot attempts a new slot gets before GRUB falls back. */
  bootTries: number;
  /** Seconds logged-in users are given between the warning and the reboot. */
  rebootWarnSeconds: number;
  /** Public key (PEM) that update payloads must be signed with. */
  publicKey: string;
  /** Seconds between attempts to take the reboot lock. */
  lockRetrySeconds: number;
  /** Where each key came from, for `status` and error messages. */
  sources: Record<string, string>;
}

export const CONFIG_FILES = ["/usr/share/slipway/update.conf", "/etc/slipway/update.conf"];

/** Parse one file's `KEY=value` lines; records file:line per key. */
export function parseConfText(
  text: string,
  file: string,
): Map<string, { value: string; where: string }> {
  const out = new Map<string, { value: string; where: string }>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new InputError(`expected KEY=value, got ${JSON.stringify(line)}`, { where });
    let value = m[2]!.trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
    } else {
      // Unquoted: drop a trailing shell comment.
      value = value.replace(/\s+#.*$/, "");
    }
    out.set(m[1]!, { value, where });
  }
  return out;
}

const KNOWN_KEYS = new Set([
  "SERVER",
  "GROUP",
  "APP_ID",
  // Spelling the image builder writes (src/build/image-files.ts).
  "APPID",
  "REBOOT_STRATEGY",
  "REBOOT_WINDOW_START",
  "REBOOT_WINDOW_LENGTH",
  "ETCD_ENDPOINTS",
  "ETCD_LOCK_PREFIX",
  "LOCK_MAX",
  "LOCK_GROUP",
  "FLEETLOCK_URL",
  "BOOT_TRIES",
  "REBOOT_WARN_SECONDS",
  "LOCK_RETRY_SECONDS",
  "PUBLIC_KEY",
]);

/** Flatcar's application id, which Nebraska and update_engine use. */
export const DEFAULT_APP_ID = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}";

function int(
  raw: { value: string; where: string } | undefined,
  dflt: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return dflt;
  const n = Number(raw.value);
  if (!/^\d+$/.test(raw.value) || n < min || n > max) {
    throw new InputError(`expected an integer ${min}–${max}, got ${JSON.stringify(raw.value)}`, {
      where: raw.where,
    });
  }
  return n;
}

export function configFromEntries(
  entries: Map<string, { value: string; where: string }>,
  root = "/",
): AgentConfig {
  for (const [key, { where }] of entries) {
    if (!KNOWN_KEYS.has(key)) throw new InputError(`unknown key ${key}`, { where });
  }
  const get = (k: string) => entries.get(k);
  const strategyRaw = get("REBOOT_STRATEGY");
  const strategy = (strategyRaw?.value ?? "best-effort") as RebootStrategy;
  if (!REBOOT_STRATEGIES.includes(strategy)) {
    throw new InputError(
      `REBOOT_STRATEGY must be one of ${REBOOT_STRATEGIES.join(", ")}, got ${JSON.stringify(strategy)}`,
      { where: strategyRaw?.where ?? "REBOOT_STRATEGY" },
    );
  }
  const start = get("REBOOT_WINDOW_START");
  const length = get("REBOOT_WINDOW_LENGTH");
  let window: RebootWindow | undefined;
  if (start !== undefined && start.value !== "") {
    const s = parseWindowStart(start.value, start.where);
    const len = length === undefined ? 3600 : parseDuration(length.value, length.where);
    window = { ...s, lengthSeconds: len };
  } else if (length !== undefined && length.value !== "") {
    throw new InputError("REBOOT_WINDOW_LENGTH needs REBOOT_WINDOW_START", {
      where: length.where,
    });
  }
  const group = get("GROUP")?.value || "stable";
  const etcdEndpoints = (get("ETCD_ENDPOINTS")?.value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const e of etcdEndpoints) {
    if (!/^https?:\/\/[^\s/]+/.test(e)) {
      throw new InputError(`ETCD_ENDPOINTS entry ${JSON.stringify(e)} is not an http(s) URL`, {
        where: get("ETCD_ENDPOINTS")!.where,
      });
    }
  }
  const sources: Record<string, string> = {};
  for (const [k, { where }] of entries) sources[k] = where;
  return {
    server: get("SERVER")?.value || undefined,
    group,
    appId: get("APP_ID")?.value || get("APPID")?.value || DEFAULT_APP_ID,
    strategy,
    window,
    etcdEndpoints,
    etcdLockPrefix: get("ETCD_LOCK_PREFIX")?.value || undefined,
    lockMax: int(get("LOCK_MAX"), 1, 1, 10_000),
    fleetlockUrl: get("FLEETLOCK_URL")?.value || undefined,
    lockGroup: get("LOCK_GROUP")?.value || group,
    bootTries: int(get("BOOT_TRIES"), 1, 1, 15),
    rebootWarnSeconds: int(get("REBOOT_WARN_SECONDS"), 300, 0, 86_400),
    lockRetrySeconds: int(get("LOCK_RETRY_SECONDS"), 60, 1, 86_400),
    publicKey: join(root, get("PUBLIC_KEY")?.value || "/usr/share/slipway/update-signing.pem"),
    sources,
  };
}

/** Read the default file then the host override (both optional) under `root`. */
export function loadConfig(root = "/"): AgentConfig {
  const merged = new Map<string, { value: string; where: string }>();
  for (const file of CONFIG_FILES) {
    const path = join(root, file);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new InputError(`cannot read: ${(err as Error).message}`, { where: path });
    }
    for (const [k, v] of parseConfText(text, path)) merged.set(k, v);
  }
  return configFromEntries(merged, root);
}
