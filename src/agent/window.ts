/**
 * Reboot windows, locksmith-style: REBOOT_WINDOW_START="Thu 23:00" (also
 * "Mon..Fri 02:00", "Sat,Sun 04:30" or just "03:00" for every day) plus
 * REBOOT_WINDOW_LENGTH="1h" / "90m" / "1h30m". Times are the host's local
 * time unless `utc` is asked for (tests).
 */
import { InputError } from "../errors.ts";

const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

export interface RebootWindow {
  /** Allowed start weekdays, 0 = Sunday. */
  days: number[];
  /** Minutes after midnight. */
  minuteOfDay: number;
  lengthSeconds: number;
}

function day(name: string, where: string): number {
  const i = DAY_NAMES.indexOf(name.toLowerCase().slice(0, 3));
  if (i < 0 || name.length < 3) {
    throw new InputError(`unknown weekday ${JSON.stringify(name)}`, { where });
  }
  return i;
}

export function parseWindowStart(
  text: string,
  where = "REBOOT_WINDOW_START",
): Omit<RebootWindow, "lengthSeconds"> {
  const parts = text.trim().split(/\s+/);
  const time = parts.pop() ?? "";
  const m = /^(\d{1,2}):(\d{2})$/.exec(time);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59 || parts.length > 1) {
    throw new InputError(
      `expected "[Day[..Day|,Day…]] HH:MM" like "Thu 23:00", got ${JSON.stringify(text)}`,
      { where },
    );
  }
  let days = [0, 1, 2, 3, 4, 5, 6];
  const spec = parts[0];
  if (spec !== undefined && spec !== "*") {
    const set = new Set<number>();
    for (const item of spec.split(",")) {
      const range = item.split("..");
      if (range.length === 2) {
        const a = day(range[0]!, where);
        const b = day(range[1]!, where);
        for (let d = a; ; d = (d + 1) % 7) {
          set.add(d);
          if (d === b) break;
        }
      } else {
        set.add(day(item, where));
      }
    }
    days = [...set].sort((a, b) => a - b);
  }
  return { days, minuteOfDay: Number(m[1]) * 60 + Number(m[2]) };
}

/** "1h", "30m", "1h30m", "45s", "2d" → seconds. */
export function parseDuration(text: string, where = "duration"): number {
  const t = text.trim();
  const re = /(\d+)\s*([dhms])/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    total += Number(m[1]) * { d: 86_400, h: 3600, m: 60, s: 1 }[m[2] as "d" | "h" | "m" | "s"];
    matched = re.lastIndex;
  }
  if (t === "" || matched !== t.length || total === 0) {
    throw new InputError(`expected a duration like "1h" or "1h30m", got ${JSON.stringify(text)}`, {
      where,
    });
  }
  return total;
}

/** Window starts on the days around `nowMs` (a week back to a week ahead), ascending. */
function starts(w: RebootWindow, nowMs: number, utc: boolean): number[] {
  const out: number[] = [];
  const base = new Date(nowMs);
  for (let offset = -8; offset <= 8; offset++) {
    const d = new Date(base);
    if (utc) {
      d.setUTCDate(base.getUTCDate() + offset);
      d.setUTCHours(Math.floor(w.minuteOfDay / 60), w.minuteOfDay % 60, 0, 0);
      if (w.days.includes(d.getUTCDay())) out.push(d.getTime());
    } else {
      d.setDate(base.getDate() + offset);
      d.setHours(Math.floor(w.minuteOfDay / 60), w.minuteOfDay % 60, 0, 0);
      if (w.days.includes(d.getDay())) out.push(d.getTime());
    }
  }
  return out;
}

export function inWindow(w: RebootWindow | undefined, nowMs: number, utc = false): boolean {
  if (w === undefined) return true;
  return starts(w, nowMs, utc).some((s) => s <= nowMs && nowMs < s + w.lengthSeconds * 1000);
}

/** Milliseconds until reboots are allowed (0 when inside the window or without one). */
export function msUntilWindow(w: RebootWindow | undefined, nowMs: number, utc = false): number {
  if (w === undefined || inWindow(w, nowMs, utc)) return 0;
  const next = starts(w, nowMs, utc).find((s) => s > nowMs);
  return next === undefined ? 86_400_000 : next - nowMs;
}

export function describeWindow(w: RebootWindow | undefined): string {
  if (w === undefined) return "any time";
  const days = w.days.length === 7 ? "daily" : w.days.map((d) => DAY_NAMES[d]!).join(",");
  const hh = String(Math.floor(w.minuteOfDay / 60)).padStart(2, "0");
  const mm = String(w.minuteOfDay % 60).padStart(2, "0");
  return `${days} ${hh}:${mm} for ${w.lengthSeconds}s`;
}
