/**
 * Table types of the update service, shared by SQLite and PostgreSQL. Times are epoch
 * milliseconds (integers), booleans are 0/1 integers: both engines store them the same way, so
 * one query layer serves both.
 */
import type { Generated } from "kysely";

export type Flag = 0 | 1;

export interface ApplicationTable {
  id: string;
  name: string;
  description: string;
  created_at: number;
}

export interface ChannelTable {
  id: string;
  app_id: string;
  name: string;
  package_id: string | null;
  allow_downgrade: Flag;
  created_at: number;
}

/** Mandatory intermediate versions: a host below a floor goes to the floor first. */
export interface ChannelFloorTable {
  channel_id: string;
  package_id: string;
}

/** Packages a channel must never serve. */
export interface ChannelBlacklistTable {
  channel_id: string;
  package_id: string;
}

export interface PackageTable {
  id: string;
  app_id: string;
  version: string;
  /** File name the client appends to the base URL. */
  filename: string;
  /** External base URL; null when `slipway serve` stores and serves the file itself. */
  base_url: string | null;
  size: number;
  /** Hex SHA-256 of the payload file. */
  sha256: string;
  /** Base64 SHA-1 (legacy `hash` attribute). */
  sha1: string;
  signature: string | null;
  metadata_size: number | null;
  created_at: number;
}

/**
 * A delta payload of a package: installs the package's version on a host that runs
 * `from_version` (its active slot is the delta's source). Offered instead of the full file
 * when the host says delta_okay="true".
 */
export interface PackageDeltaTable {
  package_id: string;
  from_version: string;
  filename: string;
  /** External base URL; null when stored next to the package's own file. */
  base_url: string | null;
  size: number;
  /** Hex SHA-256 of the delta payload file. */
  sha256: string;
  sha1: string;
  created_at: number;
}

export interface GroupTable {
  id: string;
  app_id: string;
  name: string;
  /** What hosts send as `track`. */
  track: string;
  channel_id: string | null;
  updates_enabled: Flag;
  safe_mode: Flag;
  max_updates_per_period: number;
  period_interval_s: number;
  update_timeout_s: number;
  office_hours: Flag;
  /** IANA timezone for office hours, e.g. "Europe/Berlin". */
  timezone: string;
  office_start_min: number;
  office_end_min: number;
  /** Why the group stopped granting updates by itself (safe mode failure); null when not halted. */
  halted_reason: string | null;
  created_at: number;
}

export interface InstanceTable {
  app_id: string;
  machine_id: string;
  alias: string;
  ip: string;
  oem: string;
  oem_version: string;
  version: string;
  track: string;
  group_id: string | null;
  status: string;
  boot_id: string;
  /** Version the host ran when the current update was granted. */
  version_before_update: string | null;
  update_version: string | null;
  /** 1 when the granted update was offered as a delta payload. */
  update_is_delta: Flag;
  update_granted_at: number | null;
  error_code: number | null;
  last_check_at: number;
  created_at: number;
}

export interface EventTable {
  id: Generated<number>;
  app_id: string;
  machine_id: string;
  group_id: string | null;
  type: number;
  result: number;
  error_code: number | null;
  version: string;
  previous_version: string | null;
  created_at: number;
}

export interface ActivityTable {
  id: Generated<number>;
  app_id: string | null;
  group_id: string | null;
  channel_id: string | null;
  severity: "info" | "success" | "warning" | "error" | "critical";
  class: string;
  version: string;
  message: string;
  created_at: number;
}

export interface TokenTable {
  id: string;
  name: string;
  scope: "admin" | "viewer";
  /** Hex SHA-256 of the token; the token itself is shown once and never stored. */
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
}

export interface LockGroupTable {
  name: string;
  max_slots: number;
}

export interface LockHolderTable {
  group_name: string;
  holder_id: string;
  acquired_at: number;
}

/** One take or release of a FleetLock slot, in the order the database saw them. */
export interface LockLogTable {
  id: Generated<number>;
  group_name: string;
  holder_id: string;
  /** acquired | released | freed (by an admin) */
  action: "acquired" | "released" | "freed";
  at: number;
}

export interface Database {
  applications: ApplicationTable;
  channels: ChannelTable;
  channel_floors: ChannelFloorTable;
  channel_blacklist: ChannelBlacklistTable;
  packages: PackageTable;
  package_deltas: PackageDeltaTable;
  groups: GroupTable;
  instances: InstanceTable;
  events: EventTable;
  activity: ActivityTable;
  tokens: TokenTable;
  lock_groups: LockGroupTable;
  lock_holders: LockHolderTable;
  lock_log: LockLogTable;
}
