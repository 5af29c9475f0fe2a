/**
 * Delta planning at filesystem-block granularity. erofs keeps file data in
 * whole 4 KiB blocks, so when a package is added most blocks of the new
 * image exist somewhere in the old one, only at another address: a hash
 * index of the source's blocks finds them anywhere (op C). The blocks that
 * changed — metadata (inodes, directories) whose numbers shifted, rebuilt
 * code whose addresses moved — are matched byte by byte the way bsdiff
 * does: stretches at one source shift stored as bytewise differences (op
 * D), mostly zeros and very compressible, and what matches nowhere as is
 * (op L). See docs/payload.md for the measurements behind this.
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

/** A 32-bit word view of a buffer (copied only when it is not 4-byte aligned). */
function words(buf: Buffer): Int32Array {
  const b = buf.byteOffset % 4 === 0 ? buf : Buffer.from(buf);
  return new Int32Array(b.buffer, b.byteOffset, b.length >> 2);
}

/** Hash of four 32-bit words (16 bytes). */
function mix(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
  h ^= Math.imul(c ^ Math.imul(d, 0xc2b2ae35), 0x27d4eb2f);
  return (h ^ (h >>> 15)) | 0;
}

/** Hash of the 16 bytes (four words) starting at word index i. */
function windowHash(w: Int32Array, i: number): number {
  return mix(w[i]!, w[i + 1]!, w[i + 2]!, w[i + 3]!);
}

/** The same hash of the 16 bytes at any byte offset (little-endian words, as Int32Array on x86/arm). */
function windowHashAt(b: Buffer, off: number): number {
  return mix(
    b.readInt32LE(off),
    b.readInt32LE(off + 4),
    b.readInt32LE(off + 8),
    b.readInt32LE(off + 12),
  );
}

/**
 * Offsets in a changed block where seeds are looked up: every 8 bytes, at
 * four byte phases (every 16: lz4hc one-file pair 35.6 KB of ops and
 * stream instead of 30.6 KB; every 4: no smaller).
 */
const SEED_STEP = 8;
const SEEDS_PER_BLOCK = (BLOCK / SEED_STEP) * 4;
/**
 * Source offsets kept per seed: 16 (upgrade pair 6% smaller than with 4,
 * 32 no better), fewer when the changed blocks are many, so the table
 * of hits stays ≤ 256 MiB (the +pkg pair, 15.8 M seeds: ~0.65 GB of
 * tables in all). A window found more often than POPULAR times says nothing.
 */
const MAX_SEED_HITS = 16;
const SEED_TABLE_INTS = 64 << 20;
const POPULAR = 32;

/**
 * Exact 16-byte matches between the changed target blocks and the source,
 * at any byte shift: windows at every SEED_STEP bytes of each changed block, each
 * at four byte phases, looked up at every 4-byte aligned source offset (so
 * one phase meets any shift). Returns, per seed (block index in `blocks`
 * × SEEDS_PER_BLOCK + (offset / SEED_STEP) × 4 + phase), up to `per` source
 * offsets where the window starts, -1 for none.
 */
function findSeeds(src: Buffer, dst: Buffer, blocks: number[]): { hits: Int32Array; per: number } {
  const nSeeds = blocks.length * SEEDS_PER_BLOCK;
  const SEED_HITS = Math.max(4, Math.min(MAX_SEED_HITS, Math.floor(SEED_TABLE_INTS / nSeeds)));
  const hits = new Int32Array(nSeeds * SEED_HITS).fill(-1);
  const out = { hits, per: SEED_HITS };
  if (blocks.length === 0 || src.length < 16) return out;
  let cap = 1 << 16;
  while (cap < nSeeds * 2) cap <<= 1;
  // Open addressing by window hash, each slot heading a list of the seeds
  // with that hash (at most SAME_WINDOW of them: repeated content in the
  // target must not make every source lookup walk a long chain).
  const SAME_WINDOW = 8;
  const keys = new Int32Array(cap);
  const head = new Int32Array(cap); // seed + 1; 0 = empty slot
  const count = new Uint8Array(cap);
  const seen = new Uint8Array(cap);
  const next = new Int32Array(nSeeds);
  const FILTER_BITS = 26;
  const filter = new Uint8Array(1 << (FILTER_BITS - 3));
  const slotOf = (h: number) => {
    let slot = (Math.imul(h, 0x9e3779b1) >>> 0) & (cap - 1);
    while (head[slot] !== 0 && keys[slot] !== h) slot = (slot + 1) & (cap - 1);
    return slot;
  };
  const dw = words(dst);
  for (const [bi, b] of blocks.entries()) {
    const base = b * BLOCK;
    for (let o = 0; o < BLOCK; o += SEED_STEP) {
      const i = (base + o) >> 2;
      if (base + o + 19 > dst.length) break;
      if (dw[i] === dw[i + 1] && dw[i] === dw[i + 2] && dw[i] === dw[i + 3]) continue;
      for (let k = 0; k < 4; k++) {
        const h = k === 0 ? windowHash(dw, i) : windowHashAt(dst, base + o + k);
        const seed = bi * SEEDS_PER_BLOCK + (o / SEED_STEP) * 4 + k;
        const slot = slotOf(h);
        if (head[slot] === 0) keys[slot] = h;
        else if (count[slot]! >= SAME_WINDOW) continue;
        next[seed] = head[slot]!;
        head[slot] = seed + 1;
        count[slot]!++;
        const f = h >>> (32 - FILTER_BITS);
        filter[f >>> 3]! |= 1 << (f & 7);
      }
    }
  }
  const sw = words(src);
  const last = sw.length - 4;
  for (let i = 0; i <= last; i++) {
    const h = windowHash(sw, i);
    const f = h >>> (32 - FILTER_BITS);
    if (((filter[f >>> 3]! >>> (f & 7)) & 1) === 0) continue;
    const slot = slotOf(h);
    if (head[slot] === 0) continue;
    const n = seen[slot]!;
    if (n > POPULAR) continue;
    seen[slot] = n + 1;
    for (let seed = head[slot]! - 1; seed >= 0; seed = next[seed]! - 1) {
      if (n < SEED_HITS) hits[seed * SEED_HITS + n] = i << 2;
      else if (n === POPULAR) hits.fill(-1, seed * SEED_HITS, (seed + 1) * SEED_HITS);
    }
  }
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
  const changed: number[] = [];
  const seedBase = new Map<number, number>();
  for (let i = 0; i < n; i++)
    if (match[i]! < 0) {
      seedBase.set(i, changed.length * SEEDS_PER_BLOCK);
      changed.push(i);
    }
  const { hits: seeds, per: SEED_HITS } = findSeeds(src, dst, changed);

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
  const same = (t: number, s: number) => {
    const u = t + s;
    return u >= 0 && u < src.length && dst[t] === src[u];
  };
  const literal = (a: number, b: number) => {
    if (b <= a) return;
    parts.push(dst.subarray(a, b));
    push(["L", b - a]);
    stats.literal += b - a;
  };
  const diff = (a: number, b: number, s: number) => {
    if (b <= a) return;
    const d = Buffer.allocUnsafe(b - a);
    for (let t = a; t < b; t++) d[t - a] = (dst[t]! - src[t + s]!) & 255;
    parts.push(d);
    push(["D", a + s, b - a]);
    stats.diffed += b - a;
  };

  /**
   * A run of changed blocks [a, b), encoded the way bsdiff does: a shift
   * (source offset − target offset) holds until an exact match at another
   * shift has more equal bytes; each shift's stretch is stored as a difference
   * against the source as far as it stays ≥ 50% equal (the share that
   * makes differences compress better than the bytes), the rest literally.
   * Rebuilt code keeps most bytes and changes addresses, so its
   * differences are mostly zeros.
   */
  const region = (a: number, b: number) => {
    const firstBlock = a / BLOCK;
    const starts: number[] = [a];
    const shifts: number[] = [before[firstBlock]!];
    let cur = shifts[0]!;
    const CAP = 256;
    let t = a;
    while (t < b) {
      const rel = t % BLOCK;
      const phase = rel % SEED_STEP;
      if (phase >= 4) {
        t += SEED_STEP - phase;
        continue;
      }
      const blk = Math.floor(t / BLOCK);
      const base = seedBase.get(blk);
      const cands: number[] = [before[blk]!, after[blk]!, 0];
      if (base !== undefined) {
        const seed = base + ((rel - phase) / SEED_STEP) * 4 + phase;
        for (let h = 0; h < SEED_HITS; h++) {
          const p = seeds[seed * SEED_HITS + h]!;
          if (p >= 0) cands.push(p - t);
        }
      }
      let best = cur;
      let bestLen = 0;
      // Any gain switches: the shorter stream outweighs the extra ops (lz4hc
      // one-file pair: switching only for a gain > 8 bytes cost 10% more).
      let bestGain = 0;
      const lim = Math.min(CAP, b - t);
      for (const s of cands) {
        if (s === cur || s === best) continue;
        let len = 0;
        while (len < lim && same(t + len, s)) len++;
        if (len < 12) continue;
        let old = 0;
        for (let j = 0; j < len; j++) if (same(t + j, cur)) old++;
        if (len - old > bestGain) {
          bestGain = len - old;
          best = s;
          bestLen = len;
        }
      }
      if (best === cur) {
        t++;
        continue;
      }
      // The new shift may have matched a little before the seed that found it.
      let from = t;
      const floor = starts[starts.length - 1]!;
      while (from > floor && same(from - 1, best) && !same(from - 1, cur)) from--;
      if (from === floor) {
        shifts[shifts.length - 1] = best;
      } else {
        starts.push(from);
        shifts.push(best);
      }
      cur = best;
      t += bestLen;
    }
    starts.push(b);
    // Each stretch: the longest prefix at its shift with the best (equal − unequal)
    // score as a difference, the longest suffix at the next stretch's shift
    // likewise, literals between.
    let carry = a;
    for (let k = 0; k < shifts.length; k++) {
      const s = shifts[k]!;
      const from = carry;
      const end = starts[k + 1]!;
      let score = 0;
      let bestScore = 0;
      let fwd = from;
      for (let t2 = from; t2 < end; t2++) {
        const u = t2 + s;
        if (u < 0 || u >= src.length) break;
        score += dst[t2] === src[u] ? 1 : -1;
        if (score > bestScore) {
          bestScore = score;
          fwd = t2 + 1;
        }
      }
      let back = end;
      const next = shifts[k + 1];
      if (next !== undefined) {
        score = 0;
        bestScore = 0;
        for (let t2 = end - 1; t2 >= fwd; t2--) {
          const u = t2 + next;
          if (u < 0 || u >= src.length) break;
          score += dst[t2] === src[u] ? 1 : -1;
          if (score > bestScore) {
            bestScore = score;
            back = t2;
          }
        }
      }
      diff(from, fwd, s);
      literal(fwd, back);
      carry = back;
    }
  };

  for (let i = 0; i < n; ) {
    const at = i * BLOCK;
    if (match[i]! >= 0) {
      const blk = dst.subarray(at, at + BLOCK);
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
      i++;
      continue;
    }
    let j = i;
    while (j < n && match[j]! < 0) j++;
    region(at, Math.min(j * BLOCK, dst.length));
    i = j;
  }
  return { ops, stream: Buffer.concat(parts), stats };
}
