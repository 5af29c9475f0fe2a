/**
 * Building a payload: the full plan, one delta plan per source image, the
 * slot's kernel and initrd, compressed with brotli, signed by every key given.
 * Runs on the build host: it holds the images in memory (not bounded like apply).
 */
import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { brotliCompress, constants as zc } from "node:zlib";
import { InputError } from "../errors.ts";
import { planDelta } from "./delta.ts";
import {
  type Blob,
  type BootFile,
  encodeHeader,
  encodeManifest,
  encodePlanBody,
  encodeSignatures,
  type Manifest,
  type Op,
  type Plan,
  type PlanRef,
  planId,
  type Signature,
  signedMessage,
} from "./format.ts";
import { type KeyInput, loadPrivateKey, signMessage } from "./keys.ts";

const compress = promisify(brotliCompress);
const MiB = 1 << 20;

export interface CreateOptions {
  /** The new USR image. */
  target: string;
  /** Images clients may have in their active slot; one delta plan each. */
  sources?: { path: string; version?: string }[];
  /** Include the full plan (default true); a payload without it serves only those sources. */
  full?: boolean;
  /** Private keys; each adds a signature. */
  keys: KeyInput[];
  output: string;
  version: string;
  kernel?: string;
  initrd?: string;
  /** dm-verity of an image whose hash tree is appended at `hashOffset` (the erofs data size). */
  verity?: { rootHash: string; hashOffset: number };
  /** Brotli quality of the full plan (default 6) and of delta streams (default 11). */
  fullQuality?: number;
  deltaQuality?: number;
  /** Bytes per verified target chunk: 4 KiB … 8 MiB, default 4 MiB. */
  chunkSize?: number;
  onProgress?: (message: string) => void;
}

export interface CreatedPlan {
  id: string;
  source: { sha256: string; version?: string } | null;
  /** What a client using this plan reads: header, manifest, signatures, its blobs, boot files. */
  downloadBytes: number;
  stats?: { copied: number; diffed: number; literal: number };
}

export interface CreateResult {
  path: string;
  size: number;
  manifestSha256: string;
  plans: CreatedPlan[];
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new InputError(`cannot read ${what}: ${(err as Error).message}`, { where: path });
  }
}

/** Collects blobs for the data area. */
class DataArea {
  readonly parts: Buffer[] = [];
  size = 0;
  add(compressed: Buffer, rawSize: number): Blob {
    const blob = {
      offset: this.size,
      size: compressed.length,
      sha256: sha256(compressed),
      rawSize,
    };
    this.parts.push(compressed);
    this.size += compressed.length;
    return blob;
  }
}

async function brotli(raw: Buffer, quality: number): Promise<Buffer> {
  return compress(raw, {
    params: {
      [zc.BROTLI_PARAM_QUALITY]: quality,
      // A 4 MiB window: the decoder holds it during apply, and 16 MiB measured no smaller
      // (+pkg delta stream 5.09 vs 5.10 MB, full image +0.1%).
      [zc.BROTLI_PARAM_LGWIN]: 22,
      [zc.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
}

/**
 * The chunk hashes a plan carries: those of chunks built from stream bytes.
 * Chunks a delta copies whole from the source need none (see PlanBody).
 */
function checkedChunks(hashes: string[], streamPerChunk: number[]): [number, string][] {
  const out: [number, string][] = [];
  for (const [c, h] of hashes.entries()) if (streamPerChunk[c]! > 0) out.push([c, h]);
  return out;
}

/** Bytes of the stream each chunk consumes. */
function streamPerChunk(ops: Op[], size: number, chunkSize: number): number[] {
  const per = new Array<number>(Math.ceil(size / chunkSize)).fill(0);
  let pos = 0;
  for (const op of ops) {
    let left = op[0] === "L" ? op[1] : op[2];
    while (left > 0) {
      const c = Math.floor(pos / chunkSize);
      const len = Math.min(left, (c + 1) * chunkSize - pos);
      if (op[0] !== "C") per[c]! += len;
      pos += len;
      left -= len;
    }
  }
  return per;
}

/**
 * Cut the stream into blobs of about `maxRaw` bytes at chunk boundaries and
 * compress them (in parallel: zlib runs on the libuv pool).
 */
async function addPlanBlobs(
  area: DataArea,
  stream: Buffer,
  per: number[],
  quality: number,
  maxRaw: number,
): Promise<Plan["blobs"]> {
  const ranges: { firstChunk: number; start: number; end: number }[] = [];
  let start = 0;
  let first = 0;
  let acc = 0;
  for (let c = 0; c < per.length; c++) {
    acc += per[c]!;
    if (acc >= maxRaw && c + 1 < per.length) {
      ranges.push({ firstChunk: first, start, end: start + acc });
      start += acc;
      first = c + 1;
      acc = 0;
    }
  }
  ranges.push({ firstChunk: first, start, end: start + acc });
  const out: Plan["blobs"] = [];
  const WIDTH = 4;
  for (let i = 0; i < ranges.length; i += WIDTH) {
    const batch = ranges.slice(i, i + WIDTH);
    const done = await Promise.all(
      batch.map((r) =>
        r.end > r.start ? brotli(stream.subarray(r.start, r.end), quality) : Buffer.alloc(0),
      ),
    );
    for (const [j, r] of batch.entries()) {
      const c = done[j]!;
      const blob = c.length
        ? area.add(c, r.end - r.start)
        : { offset: 0, size: 0, sha256: sha256(c), rawSize: 0 };
      out.push({ ...blob, firstChunk: r.firstChunk });
    }
  }
  return out;
}

export async function createPayload(opts: CreateOptions): Promise<CreateResult> {
  if (opts.keys.length === 0) throw new InputError("at least one signing key is needed");
  const keys = opts.keys.map(loadPrivateKey);
  const chunkSize = opts.chunkSize ?? 4 * MiB;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 4096 || chunkSize > 8 * MiB)
    throw new InputError(`chunk size ${chunkSize} is out of range (4 KiB to 8 MiB)`);
  const say = opts.onProgress ?? (() => {});
  const dst = readInput(opts.target, "target image");
  if (dst.length === 0) throw new InputError("target image is empty", { where: opts.target });
  if (opts.verity) {
    const { rootHash, hashOffset } = opts.verity;
    if (!/^[0-9a-f]{64}$/.test(rootHash))
      throw new InputError(`verity root hash must be 64 hex digits, got "${rootHash}"`);
    if (!Number.isSafeInteger(hashOffset) || hashOffset <= 0 || hashOffset % 4096 !== 0)
      throw new InputError(`verity hash offset ${hashOffset} is not a positive multiple of 4096`);
    if (hashOffset >= dst.length)
      throw new InputError(
        `verity hash offset ${hashOffset} is not inside the image (${dst.length} bytes)`,
        { where: opts.target },
      );
  }
  const chunks: string[] = [];
  for (let o = 0; o < dst.length; o += chunkSize)
    chunks.push(sha256(dst.subarray(o, o + chunkSize)));

  const area = new DataArea();
  const plans: Plan[] = [];
  const stats = new Map<string, CreatedPlan["stats"]>();
  if (opts.full ?? true) {
    say(`full plan: compressing ${dst.length} bytes`);
    const per = streamPerChunk([["L", dst.length]], dst.length, chunkSize);
    const blobs = await addPlanBlobs(area, dst, per, opts.fullQuality ?? 6, 16 * MiB);
    const ops: Op[] = [["L", dst.length]];
    plans.push({ id: "full", source: null, ops, blobs, chunks: checkedChunks(chunks, per) });
  }
  for (const s of opts.sources ?? []) {
    const src = readInput(s.path, "source image");
    const srcSha = sha256(src);
    const id = planId({ size: src.length, sha256: srcSha });
    if (plans.some((p) => p.id === id)) continue;
    say(`delta plan from ${s.path}: matching blocks`);
    const d = planDelta(src, dst);
    say(`delta plan from ${s.path}: compressing ${d.stream.length} bytes`);
    const per = streamPerChunk(d.ops, dst.length, chunkSize);
    const blobs = await addPlanBlobs(area, d.stream, per, opts.deltaQuality ?? 11, 16 * MiB);
    const source: Plan["source"] = { size: src.length, sha256: srcSha };
    if (s.version) source.version = s.version;
    plans.push({ id, source, ops: d.ops, blobs, chunks: checkedChunks(chunks, per) });
    stats.set(id, d.stats);
  }
  if (plans.length === 0) throw new InputError("nothing to build: no full plan and no --from");

  const boot: Manifest["boot"] = {};
  for (const name of ["kernel", "initrd"] as const) {
    const path = opts[name];
    if (!path) continue;
    const raw = readInput(path, name);
    const blob = area.add(await brotli(raw, 5), raw.length);
    const f: BootFile = { size: raw.length, sha256: sha256(raw), blob };
    boot[name] = f;
  }
  // Plan bodies last: they hold the offsets of the blobs before them.
  const refs: PlanRef[] = [];
  for (const p of plans) {
    const raw = encodePlanBody(p);
    refs.push({ id: p.id, source: p.source, body: area.add(await brotli(raw, 11), raw.length) });
  }
  const manifest: Manifest = {
    format: 3,
    version: opts.version,
    codec: "brotli",
    target: { size: dst.length, sha256: sha256(dst) },
    boot,
    chunkSize,
    plans: refs,
  };
  if (opts.verity) manifest.target.verity = opts.verity;
  const manifestBytes = encodeManifest(manifest);
  const message = signedMessage(manifestBytes);
  const signatures: Signature[] = keys.map((k) => signMessage(message, k));
  const sigBytes = encodeSignatures(signatures);
  const header = encodeHeader(manifestBytes.length, sigBytes.length);

  const tmp = `${opts.output}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, Buffer.concat([header, manifestBytes, sigBytes, ...area.parts]));
    renameSync(tmp, opts.output);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new InputError(`cannot write payload: ${(err as Error).message}`, {
      where: opts.output,
    });
  }
  const headBytes = header.length + manifestBytes.length + sigBytes.length;
  const bootBytes = (boot.kernel?.blob.size ?? 0) + (boot.initrd?.blob.size ?? 0);
  return {
    path: opts.output,
    size: headBytes + area.size,
    manifestSha256: sha256(manifestBytes),
    plans: plans.map((p, i) => {
      const out: CreatedPlan = {
        id: p.id,
        source: p.source ? { sha256: p.source.sha256 } : null,
        downloadBytes:
          headBytes + refs[i]!.body.size + bootBytes + p.blobs.reduce((a, b) => a + b.size, 0),
      };
      if (p.source?.version && out.source) out.source.version = p.source.version;
      const st = stats.get(p.id);
      if (st) out.stats = st;
      return out;
    }),
  };
}
