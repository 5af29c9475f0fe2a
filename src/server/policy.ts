/**
 * Rollout policy, Nebraska semantics: pure functions of the group's policy, the channel, a
 * few counters and the time, so every rule is testable with a controlled clock.
 */
import { compareVersions } from "./versions.ts";

export type Clock = () => number;
export const systemClock: Clock = () => Date.now();

export interface GroupPolicy {
  updatesEnabled: boolean;
  /** Until one host completes the new version, at most one host updates; failures halt. */
  safeMode: boolean;
  maxUpdatesPerPeriod: number;
  periodIntervalS: number;
  updateTimeoutS: number;
  officeHours: boolean;
  timezone: string;
  /** Office hours as minutes after local midnight, [start, end), Monday to Friday. */
  officeStartMin: number;
  officeEndMin: number;
  haltedReason: string | null;
}

export interface ChannelView {
  targetVersion: string | null;
  allowDowngrade: boolean;
  /** Versions every host must pass through on the way up. */
  floors: string[];
  blacklist: Set<string>;
}

/**
 * The version a host on `current` should move to next, or null: the channel's package unless
 * it is blacklisted, is not newer (and downgrades are off), or a floor lies in between (then
 * the lowest such floor).
 */
export function nextVersion(current: string, ch: ChannelView): string | null {
  const target = ch.targetVersion;
  if (target === null || ch.blacklist.has(target)) return null;
  const cmp = compareVersions(target, current);
  if (cmp === 0) return null;
  if (cmp < 0) return ch.allowDowngrade ? target : null;
  const floors = ch.floors
    .filter((f) => !ch.blacklist.has(f))
    .filter((f) => compareVersions(f, current) > 0 && compareVersions(f, target) < 0)
    .sort(compareVersions);
  return floors[0] ?? target;
}

export interface RolloutCounters {
  /** Hosts in the group granted an update within the current period. */
  grantedInPeriod: number;
  /** Hosts in the group holding a granted, unfinished update to the target. */
  inProgress: number;
  /** Hosts in the group that completed the target version. */
  completed: number;
}

export type GrantDecision = { grant: true } | { grant: false; reason: string };

export function decideGrant(now: number, p: GroupPolicy, c: RolloutCounters): GrantDecision {
  if (p.haltedReason !== null) return { grant: false, reason: `group halted: ${p.haltedReason}` };
  if (!p.updatesEnabled) return { grant: false, reason: "updates paused" };
  if (p.officeHours && !inOfficeHours(now, p.timezone, p.officeStartMin, p.officeEndMin)) {
    return { grant: false, reason: "outside office hours" };
  }
  if (p.safeMode && c.completed === 0 && c.inProgress > 0) {
    return { grant: false, reason: "safe mode: waiting for the first host to complete" };
  }
  if (c.grantedInPeriod >= p.maxUpdatesPerPeriod) {
    return { grant: false, reason: "max updates per period reached" };
  }
  return { grant: true };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Whether `now` falls in office hours (Mon–Fri, [start, end) minutes) in `timezone`. */
export function inOfficeHours(
  now: number,
  timezone: string,
  startMin: number,
  endMin: number,
): boolean {
  let fmt = formatters.get(timezone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      weekday: "short",
      hour: "numeric",
      minute: "numeric",
      hourCycle: "h23",
    });
    formatters.set(timezone, fmt);
  }
  const parts = Object.fromEntries(fmt.formatToParts(new Date(now)).map((x) => [x.type, x.value]));
  if (parts.weekday === "Sat" || parts.weekday === "Sun") return false;
  const minute = Number(parts.hour) * 60 + Number(parts.minute);
  return minute >= startMin && minute < endMin;
}

/** Throws RangeError for a timezone Intl does not know. */
export function validateTimezone(tz: string): void {
  new Intl.DateTimeFormat("en-US", { timeZone: tz });
}
