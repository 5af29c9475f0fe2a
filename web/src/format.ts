/** Small display helpers: times, sizes, version order and per-version colours. */

export function ago(ms: number, now = Date.now()): string {
  const s = Math.round((now - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export const dateTime = (ms: number) => new Date(ms).toLocaleString();

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function duration(s: number): string {
  if (s % 86400 === 0 && s >= 86400) return `${s / 86400}d`;
  if (s % 3600 === 0 && s >= 3600) return `${s / 3600}h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60}m`;
  return `${s}s`;
}

/** Order versions the way people read them: numeric parts as numbers ("1.10" after "1.9"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-+]/);
  const pb = b.split(/[.\-+]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? "";
    const y = pb[i] ?? "";
    const nx = Number(x);
    const ny = Number(y);
    const c =
      x !== "" && y !== "" && Number.isFinite(nx) && Number.isFinite(ny)
        ? nx - ny
        : x.localeCompare(y);
    if (c !== 0) return c;
  }
  return 0;
}

const PALETTE = [
  "#2563eb",
  "#16a34a",
  "#d97706",
  "#9333ea",
  "#dc2626",
  "#0891b2",
  "#65a30d",
  "#db2777",
  "#475569",
];

/** A stable colour per version within one sorted list (newest gets the first colour). */
export function versionColors(versions: string[]): Map<string, string> {
  const sorted = [...new Set(versions)].sort(compareVersions).reverse();
  return new Map(sorted.map((v, i) => [v, PALETTE[i % PALETTE.length]!]));
}

const EVENT_TYPES: Record<number, string> = {
  0: "unknown event",
  1: "download complete",
  2: "install complete",
  3: "update",
  13: "download started",
  14: "download finished",
};

/** Omaha event type + result in words (3/1 and 3/2 mean different things). */
export function eventLabel(type: number, result: number): { what: string; outcome: string } {
  const what = EVENT_TYPES[type] ?? `event type ${type}`;
  if (result === 0) return { what, outcome: "error" };
  if (result === 9) return { what, outcome: "deferred" };
  if (type === 3 && result === 1) return { what: "update installed", outcome: "reboot pending" };
  if (type === 3 && result === 2) return { what: "update complete", outcome: "rebooted into it" };
  return { what, outcome: result === 1 ? "ok" : `result ${result}` };
}

const ERROR_CODES: Record<number, string> = {
  10000: "rolled back",
  9: "download failed",
  10: "hash mismatch",
  11: "size mismatch",
  12: "payload verification failed",
};

export function errorCodeLabel(code: number): string {
  const name = ERROR_CODES[code];
  return name ? `${name} (${code})` : `code ${code}`;
}
