/**
 * The `update:` section of a provisioning config, rendered as /etc/slipway/update.conf — the
 * host's override of the image defaults that the update agent reads. Values are checked with
 * the agent's own parsers so a config that renders is a config the agent accepts.
 */
import { REBOOT_STRATEGIES, type RebootStrategy } from "../agent/config.ts";
import { parseDuration, parseWindowStart } from "../agent/window.ts";
import { SlipwayError } from "../errors.ts";

export const UPDATE_CONF_PATH = "/etc/slipway/update.conf";

export interface UpdateSettings {
  server?: string;
  group?: string;
  rebootStrategy?: string;
  rebootWindowStart?: string;
  rebootWindowLength?: string;
  etcdEndpoints?: string[];
  fleetlockUrl?: string;
}

export type UpdateField = keyof UpdateSettings;
export interface UpdateProblem {
  field: UpdateField;
  message: string;
  severity: "error" | "warning";
}

export function isRebootStrategy(s: string): s is RebootStrategy {
  return (REBOOT_STRATEGIES as readonly string[]).includes(s);
}

/** Everything wrong with the settings, each tied to the field that holds it. */
export function checkUpdateSettings(u: UpdateSettings): UpdateProblem[] {
  const out: UpdateProblem[] = [];
  const err = (field: UpdateField, message: string) =>
    out.push({ field, message, severity: "error" });
  for (const field of ["server", "fleetlockUrl"] as const) {
    const url = u[field];
    if (url !== undefined && !/^https?:\/\/[^\s/]+/.test(url)) {
      err(field, `expected an http(s) URL, got ${JSON.stringify(url)}`);
    }
  }
  for (const e of u.etcdEndpoints ?? []) {
    if (!/^https?:\/\/[^\s/]+/.test(e))
      err("etcdEndpoints", `${JSON.stringify(e)} is not an http(s) URL`);
  }
  if (u.group !== undefined && !/^[A-Za-z0-9._-]+$/.test(u.group)) {
    err(
      "group",
      `group names use letters, digits, ".", "_" and "-"; got ${JSON.stringify(u.group)}`,
    );
  }
  const s = u.rebootStrategy;
  if (s !== undefined && !isRebootStrategy(s)) {
    err(
      "rebootStrategy",
      `unknown reboot strategy ${JSON.stringify(s)} (use ${REBOOT_STRATEGIES.join(", ")})`,
    );
  }
  if (u.rebootWindowStart !== undefined) {
    const m = messageOf(() => parseWindowStart(u.rebootWindowStart!));
    if (m) err("rebootWindowStart", m);
  }
  if (u.rebootWindowLength !== undefined) {
    const m = messageOf(() => parseDuration(u.rebootWindowLength!));
    if (m) err("rebootWindowLength", m);
    if (u.rebootWindowStart === undefined)
      err("rebootWindowLength", "a window length needs a start");
  }
  const hint = "(here or in the image's /usr/share/slipway/update.conf)";
  if (s === "etcd-lock" && !u.etcdEndpoints?.length) {
    out.push({
      field: "rebootStrategy",
      message: `etcd-lock needs etcd endpoints ${hint}`,
      severity: "warning",
    });
  }
  if (s === "fleetlock" && !u.fleetlockUrl) {
    out.push({
      field: "rebootStrategy",
      message: `fleetlock needs a FleetLock URL ${hint}`,
      severity: "warning",
    });
  }
  return out;
}

/** The file text: `KEY="value"` lines, which both the agent and a shell can read. */
export function renderUpdateConf(u: UpdateSettings): string {
  const lines = ["# Written by `slipway config render`; overrides /usr/share/slipway/update.conf."];
  const put = (key: string, v: string | undefined) => {
    if (v !== undefined) lines.push(`${key}="${v}"`);
  };
  put("SERVER", u.server);
  put("GROUP", u.group);
  put("REBOOT_STRATEGY", u.rebootStrategy);
  put("REBOOT_WINDOW_START", u.rebootWindowStart);
  put("REBOOT_WINDOW_LENGTH", u.rebootWindowLength);
  put("ETCD_ENDPOINTS", u.etcdEndpoints?.join(","));
  put("FLEETLOCK_URL", u.fleetlockUrl);
  return `${lines.join("\n")}\n`;
}

function messageOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof SlipwayError) return e.message.replace(/^[A-Za-z_]+: /, "");
    throw e;
  }
}
