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
/** Granularity of difference references inside a changed block. */
const SUB = 128;

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
 * For blocks that matched nowhere and have no good neighbour-derived
 * candidate, vote for source offsets sharing 16-byte windows with them:
 * windows sampled every 64 bytes of each block, each at four byte phases
 * (o, o+1, o+2, o+3), looked up at every 4-byte aligned source offset: so
 * any byte shift is found (erofs metadata moves by aligned amounts, but
 * rebuilt binaries and lz4 streams shift by arbitrary bytes), a bit filter
 * keeping the lookups rare.
 */
function anchorCandidates(src: Buffer, dst: Buffer, blocks: number[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  if (blocks.length === 0 || src.length < 16) return out;
  const sw = words(src);
  const dw = words(dst);
  const STEP = 64;
  const FILTER_BITS = 26;
  const filter = new Uint8Array(1 << (FILTER_BITS - 3));
  // window hash -> target offsets, and how often the source had it: a window
  // found all over the source (padding, common headers) says nothing; stop counting it.
  const want = new Map<number, { at: number[]; seen: number }>();
  const POPULAR = 32;
  for (const b of blocks) {
    const base = b * BLOCK;
    for (let o = 0; o + 16 <= BLOCK; o += STEP) {
      const i = (base + o) >> 2;
      if (dw[i] === dw[i + 1] && dw[i] === dw[i + 2] && dw[i] === dw[i + 3]) continue;
      for (let k = 0; k < 4 && o + k + 16 <= BLOCK; k++) {
        const h = k === 0 ? windowHash(dw, i) : windowHashAt(dst, base + o + k);
        const entry = want.get(h);
        if (entry) {
          if (entry.at.length < 8) entry.at.push(base + o + k);
        } else want.set(h, { at: [base + o + k], seen: 0 });
        const f = h >>> (32 - FILTER_BITS);
        filter[f >>> 3]! |= 1 << (f & 7);
      }
    }
  }
  const votes = new Map<number, Map<number, number>>();
  const last = sw.length - 4;
  for (let i = 0; i <= last; i++) {
    const h = windowHash(sw, i);
    const f = h >>> (32 - FILTER_BITS);
    if (((filter[f >>> 3]! >>> (f & 7)) & 1) === 0) continue;
    const entry = want.get(h);
    if (!entry || ++entry.seen > POPULAR) continue;
    const p = i << 2;
    for (const d of entry.at) {
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
  for (const [b, m] of votes)
    out.set(
      b,
      [...m.entries()]
        .sort((x, y) => y[1] - x[1])
        .slice(0, 12)
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
  // Candidate source offsets per unmatched block: the neighbours' shifts,
  // the same address, and (for blocks those do not explain) anchor votes.
  const cands = new Map<number, number[]>();
  const poor: number[] = [];
  for (let i = 0; i < n; i++) {
    if (match[i]! >= 0 || (i + 1) * BLOCK > dst.length) continue;
    const at = i * BLOCK;
    const list = [...new Set([at + before[i]!, at + after[i]!, at])].filter(
      (c) => c >= 0 && c + BLOCK <= src.length,
    );
    cands.set(i, list);
    const best = Math.max(
      0,
      ...list.map((c) => equalBytes(dst.subarray(at, at + BLOCK), src.subarray(c, c + BLOCK))),
    );
    if (best < BLOCK * 0.9) poor.push(i);
  }
  for (const [i, extra] of anchorCandidates(src, dst, poor)) cands.get(i)!.push(...extra);

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
    // Each quarter block takes its own best reference: an insertion inside
    // a metadata block leaves its two halves aligned to different places.
    for (let sub = 0; sub < blk.length; sub += SUB) {
      const len = Math.min(SUB, blk.length - sub);
      const piece = blk.subarray(sub, sub + len);
      let best = -1;
      let bestSame = -1;
      for (const c of cands.get(i) ?? []) {
        const same = equalBytes(piece, src.subarray(c + sub, c + sub + len));
        if (same > bestSame) {
          bestSame = same;
          best = c + sub;
        }
      }
      // A difference pays off when most bytes agree; otherwise it only adds noise.
      if (best >= 0 && bestSame >= len / 2) {
        const d = Buffer.allocUnsafe(len);
        for (let j = 0; j < len; j++) d[j] = (piece[j]! - src[best + j]!) & 255;
        parts.push(d);
        push(["D", best, len]);
        stats.diffed += len;
      } else {
        parts.push(piece);
        push(["L", len]);
        stats.literal += len;
      }
    }
  }
  return { ops, stream: Buffer.concat(parts), stats };
}
