/**
 * A group's hosts per version over time (GET …/groups/:group/timeline), derived from each
 * host's event history: every event records the version the host ran when it sent it.
 */
import { compareVersions } from "./versions.ts";

export interface HostHistory {
  createdAt: number;
  /** When the host last checked in (it may run a newer version than its last event says). */
  lastCheckAt: number;
  version: string;
  events: { createdAt: number; version: string; previousVersion: string | null }[];
}

export interface Timeline {
  versions: string[];
  points: { t: number; counts: Record<string, number> }[];
}

/** The (time, version) steps of one host, oldest first. */
export function hostSteps(h: HostHistory): { t: number; version: string }[] {
  const events = [...h.events].sort((a, b) => a.createdAt - b.createdAt);
  const first = events[0];
  const initial = first ? (first.previousVersion ?? first.version) : h.version;
  const steps = [{ t: h.createdAt, version: initial }];
  for (const e of events) {
    if (e.version !== steps[steps.length - 1]!.version)
      steps.push({ t: e.createdAt, version: e.version });
  }
  if (h.version !== steps[steps.length - 1]!.version)
    steps.push({ t: h.lastCheckAt, version: h.version });
  return steps;
}

export function versionTimeline(hosts: HostHistory[], now: number, buckets = 48): Timeline {
  const all = hosts.map(hostSteps);
  const versions = [...new Set(all.flatMap((s) => s.map((x) => x.version)))].sort(compareVersions);
  if (all.length === 0) return { versions, points: [] };
  const start = Math.min(...all.map((s) => s[0]!.t));
  const span = Math.max(now - start, 1000);
  const points: Timeline["points"] = [];
  for (let i = 0; i <= buckets; i++) {
    const t = start + (span * i) / buckets;
    const counts: Record<string, number> = {};
    for (const steps of all) {
      let v: string | undefined;
      for (const s of steps) {
        if (s.t <= t) v = s.version;
        else break;
      }
      if (v !== undefined) counts[v] = (counts[v] ?? 0) + 1;
    }
    points.push({ t, counts });
  }
  return { versions, points };
}
