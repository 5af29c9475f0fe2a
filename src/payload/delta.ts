/**
 * Delta planning at filesystem-block granularity. erofs keeps file data in
 * whole 4 KiB blocks, so when a package is added most blocks of the new
 * image exist somewhere in the old one, only at another address: a hash
 * index of the source's blocks finds them anywhere (op C). The blocks that
 * changed are mostly metadata (inodes, directories) whose bytes shifted
 * numbers: stored as a bytewise difference against the most similar source
 * block they are a small, very compressible stream (op D). The rest is new
 * data (op L). See docs/payload.md for the measurements behind this.
 */
import { createHash } from "node:crypto";
import type { Op } from "./format.ts";

export const BLOCK = 4096;

export interface DeltaPlan {
  ops: Op[];
  /** The data stream the ops consume (L bytes as they are, D bytes as differences). */
  stream: Buffer;
  stats: { copied: number; diffed: number; literal: number };
}

const key = (b: Buffer) => createHash("sha1").update(b).digest("base64");

function equalBytes(a: Buffer, b: Buffer): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same;
}

const WINDOW = 16;
/** B^WINDOW mod 2^32 for removing the byte that leaves the rolling window. */
const BASE = 0x01000193;
let basePow = 1;
for (let i = 0; i < WINDOW; i++) basePow = Math.imul(basePow, BASE);
const OUT_FACTOR = basePow;

/** Polynomial hash of buf[at, at+16), the same value the rolling scan produces. */
function windowHash(buf: Buffer, at: number): number {
  let h = 0;
  for (let i = 0; i < WINDOW; i++) h = (Math.imul(h, BASE) + buf[at + i]!) | 0;
  return h >>> 0;
}

/**
 * For blocks that matched nowhere and have no good neighbour-derived
 * candidate, vote for source offsets sharing 16-byte windows with them:
 * windows sampled every 64 bytes of each block, looked up while a rolling
 * hash runs once over the whole source (a bit filter keeps lookups rare).
 */
function anchorCandidates(src: Buffer, dst: Buffer, blocks: number[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  if (blocks.length === 0 || src.length < WINDOW) return out;
  const STEP = 64;
  const FILTER_BITS = 26;
  const filter = new Uint8Array(1 << (FILTER_BITS - 3));
  const want = new Map<number, number[]>(); // window hash -> target offsets
  for (const b of blocks) {
    const base = b * BLOCK;
    for (let o = 0; o + WINDOW <= BLOCK; o += STEP) {
      let dull = true;
      for (let i = 1; i < WINDOW; i++) if (dst[base + o + i] !== dst[base + o]) dull = false;
      if (dull) continue;
      const h = windowHash(dst, base + o);
      const list = want.get(h);
      if (list) {
        if (list.length < 8) list.push(base + o);
      } else want.set(h, [base + o]);
      const f = h >>> (32 - FILTER_BITS);
      filter[f >>> 3]! |= 1 << (f & 7);
    }
  }
  const votes = new Map<number, Map<number, number>>();
  let h = windowHash(src, 0);
  for (let p = 0; ; p++) {
    const f = h >>> (32 - FILTER_BITS);
    if ((filter[f >>> 3]! >>> (f & 7)) & 1) {
      const hits = want.get(h >>> 0);
      if (hits) {
        for (const d of hits) {
          const b = Math.floor(d / BLOCK);
          const start = p - (d - b * BLOCK);
          if (start < 0 || start + BLOCK > src.length) continue;
          let m = votes.get(b);
          if (!m) {
            m = new Map();
            votes.set(b, m);
          }
          m.set(start, (m.get(start) ?? 0) + 1);
        }
      }
    }
    if (p + WINDOW >= src.length) break;
    h = (Math.imul(h, BASE) + src[p + WINDOW]! - Math.imul(src[p]!, OUT_FACTOR)) >>> 0;
  }
  for (const [b, m] of votes)
    out.set(
      b,
      [...m.entries()]
        .sort((x, y) => y[1] - x[1])
        .slice(0, 3)
        .map(([s]) => s),
    );
  return out;
}

export function planDelta(src: Buffer, dst: Buffer): DeltaPlan {
  const index = new Map<string, number>();
  for (let o = 0; o + BLOCK <= src.length; o += BLOCK) {
    const k = key(src.subarray(o, o + BLOCK));
    if (!index.has(k)) index.set(k, o);
  }
  const n = Math.ceil(dst.length / BLOCK);
  const match = new Array<number>(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const blk = dst.subarray(i * BLOCK, (i + 1) * BLOCK);
    if (blk.length === BLOCK) match[i] = index.get(key(blk)) ?? -1;
  }
  // Neighbouring matches tell where an unmatched block probably came from.
  const before = new Array<number>(n);
  const after = new Array<number>(n);
  let shift = 0;
  for (let i = 0; i < n; i++) {
    if (match[i]! >= 0) shift = match[i]! - i * BLOCK;
    before[i] = shift;
  }
  shift = 0;
  for (let i = n - 1; i >= 0; i--) {
    if (match[i]! >= 0) shift = match[i]! - i * BLOCK;
    after[i] = shift;
  }
  // Best guess from the neighbours first; only poor guesses pay for the anchor scan.
  const guess = new Array<number>(n).fill(-1);
  const guessSame = new Array<number>(n).fill(-1);
  const consider = (i: number, cand: number) => {
    const at = i * BLOCK;
    if (cand < 0 || cand + BLOCK > src.length) return;
    const same = equalBytes(dst.subarray(at, at + BLOCK), src.subarray(cand, cand + BLOCK));
    if (same > guessSame[i]!) {
      guessSame[i] = same;
      guess[i] = cand;
    }
  };
  const poor: number[] = [];
  for (let i = 0; i < n; i++) {
    if (match[i]! >= 0 || (i + 1) * BLOCK > dst.length) continue;
    for (const cand of [i * BLOCK + before[i]!, i * BLOCK + after[i]!, i * BLOCK])
      consider(i, cand);
    if (guessSame[i]! < BLOCK * 0.9) poor.push(i);
  }
  for (const [i, cands] of anchorCandidates(src, dst, poor)) for (const c of cands) consider(i, c);

  const ops: Op[] = [];
  const parts: Buffer[] = [];
  const stats = { copied: 0, diffed: 0, literal: 0 };
  const push = (op: Op) => {
    const last = ops[ops.length - 1];
    if (last && last[0] === op[0]) {
      if (op[0] === "L") {
        (last as ["L", number])[1] += op[1];
        return;
      }
      const l = last as ["C" | "D", number, number];
      if (l[1] + l[2] === op[1]) {
        l[2] += op[2];
        return;
      }
    }
    ops.push(op);
  };
  for (let i = 0; i < n; i++) {
    const at = i * BLOCK;
    const blk = dst.subarray(at, at + BLOCK);
    if (match[i]! >= 0) {
      // Equal blocks (zeros, duplicates) may sit in many places: prefer the
      // one that continues the previous copy, so runs stay long and ops few.
      const last = ops[ops.length - 1];
      let from = match[i]!;
      if (last && last[0] === "C") {
        const next = last[1] + last[2];
        if (next + BLOCK <= src.length && src.subarray(next, next + BLOCK).equals(blk)) from = next;
      }
      push(["C", from, BLOCK]);
      stats.copied += BLOCK;
      continue;
    }
    const best = guess[i]!;
    // A difference pays off when most bytes agree; otherwise it only adds noise.
    if (best >= 0 && guessSame[i]! >= BLOCK / 2) {
      const d = Buffer.allocUnsafe(BLOCK);
      for (let j = 0; j < BLOCK; j++) d[j] = (blk[j]! - src[best + j]!) & 255;
      parts.push(d);
      push(["D", best, BLOCK]);
      stats.diffed += BLOCK;
    } else {
      parts.push(blk);
      push(["L", blk.length]);
      stats.literal += blk.length;
    }
  }
  return { ops, stream: Buffer.concat(parts), stats };
}
