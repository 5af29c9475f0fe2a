/** Database rows → the JSON shapes of the admin API (camelCase, booleans, "HH:MM"). */
import type { Selectable } from "kysely";
import type {
  ActivityTable,
  ApplicationTable,
  EventTable,
  GroupTable,
  InstanceTable,
  PackageTable,
} from "../db/schema.ts";

export function hhmm(min: number): string {
  return `${String(Math.floor(min / 60)).padStart(2, "0")}:${String(min % 60).padStart(2, "0")}`;
}

export function parseHhmm(s: string): number {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(s);
  if (!m) throw new Error(`"${s}" is not HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}

export const appJson = (a: ApplicationTable) => ({
  id: a.id,
  name: a.name,
  description: a.description,
  createdAt: Number(a.created_at),
});

export const packageJson = (p: PackageTable) => ({
  id: p.id,
  appId: p.app_id,
  version: p.version,
  filename: p.filename,
  url: p.base_url,
  size: Number(p.size),
  sha256: p.sha256,
  signature: p.signature,
  metadataSize: p.metadata_size === null ? null : Number(p.metadata_size),
  createdAt: Number(p.created_at),
});

export const groupJson = (g: GroupTable, channelName: string | null) => ({
  id: g.id,
  appId: g.app_id,
  name: g.name,
  track: g.track,
  channel: channelName,
  policy: {
    updatesEnabled: g.updates_enabled === 1,
    safeMode: g.safe_mode === 1,
    maxUpdatesPerPeriod: g.max_updates_per_period,
    periodIntervalS: g.period_interval_s,
    updateTimeoutS: g.update_timeout_s,
    officeHours: g.office_hours === 1,
    timezone: g.timezone,
    officeStart: hhmm(g.office_start_min),
    officeEnd: hhmm(g.office_end_min),
  },
  haltedReason: g.halted_reason,
  createdAt: Number(g.created_at),
});

export const instanceJson = (i: InstanceTable) => ({
  appId: i.app_id,
  machineId: i.machine_id,
  alias: i.alias,
  ip: i.ip,
  oem: i.oem,
  oemVersion: i.oem_version,
  version: i.version,
  track: i.track,
  groupId: i.group_id,
  status: i.status,
  updateVersion: i.update_version,
  updateGrantedAt: i.update_granted_at === null ? null : Number(i.update_granted_at),
  errorCode: i.error_code === null ? null : Number(i.error_code),
  lastCheckAt: Number(i.last_check_at),
  createdAt: Number(i.created_at),
});

export const eventJson = (e: Selectable<EventTable>) => ({
  id: Number(e.id),
  type: e.type,
  result: e.result,
  errorCode: e.error_code === null ? null : Number(e.error_code),
  version: e.version,
  previousVersion: e.previous_version,
  createdAt: Number(e.created_at),
});

export const activityJson = (a: Selectable<ActivityTable>) => ({
  id: Number(a.id),
  appId: a.app_id,
  groupId: a.group_id,
  channelId: a.channel_id,
  severity: a.severity,
  class: a.class,
  version: a.version,
  message: a.message,
  createdAt: Number(a.created_at),
});
