/**
 * Version order for rollouts: dotted numeric parts compare as numbers ("3815.2.10" >
 * "3815.2.9"), anything else compares as text; a pre-release suffix ("1.2.0-rc1") sorts before
 * the release. Good for Flatcar-style and semver versions.
 */
export function compareVersions(a: string, b: string): number {
  const [aMain = "", aPre] = splitPre(a);
  const [bMain = "", bPre] = splitPre(b);
  const ap = aMain.split(/[.+_]/);
  const bp = bMain.split(/[.+_]/);
  for (let i = 0; i < Math.max(ap.length, bp.length); i++) {
    const x = ap[i] ?? "0";
    const y = bp[i] ?? "0";
    const nx = /^\d+$/.test(x) ? Number(x) : Number.NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : Number.NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return Math.sign(c);
  }
  if (aPre === bPre) return 0;
  if (aPre === undefined) return 1;
  if (bPre === undefined) return -1;
  return aPre < bPre ? -1 : 1;
}

function splitPre(v: string): [string, string | undefined] {
  const i = v.indexOf("-");
  return i < 0 ? [v, undefined] : [v.slice(0, i), v.slice(i + 1)];
}
