/**
 * The payload file format (version 3). See docs/payload.md for the prose.
 *
 *   0   8  magic "SLPWYPL\0"
 *   8   4  format version (u32 BE) = 3
 *  12   4  manifest length M (u32 BE): binary (wire.ts), raw SHA-256s
 *  16   4  signatures length S (u32 BE): binary list of signatures
 *  20   4  reserved, 0
 *  24   M  manifest (the signed bytes)
 *  24+M S  signatures
 *  24+M+S  data area: brotli blobs, offsets in the manifest are relative to here
 *
 * The manifest is small: the target, the boot files and, per plan, the
 * SHA-256 of its body — a blob holding the plan's ops, data blobs and chunk
 * hashes. A client downloads only the body of the plan it uses, so a
 * one-line delta does not pay for the full plan's blob list or for hashes
 * of chunks it copies unchanged. Everything a reader acts on is reached
 * from the manifest, which is only decompressed after a trusted signature
 * over its exact bytes checked out.
 */
import { brotliDecompressSync } from "node:zlib";
import { InputError } from "../errors.ts";
import { WireReader, WireWriter } from "./wire.ts";

export const MAGIC = Buffer.from("SLPWYPL\0", "latin1");
export const FORMAT_VERSION = 3;
export const HEADER_SIZE = 24;
/** Upper bounds that keep a hostile header from making us allocate much. */
export const MAX_MANIFEST_BYTES = 16 << 20;
export const MAX_SIGNATURES_BYTES = 64 << 10;
export const MAX_PLAN_BODY_BYTES = 256 << 20;

/** Ops rebuild the target in order; `len` bytes each. */
export type Op =
  /** Next `len` bytes of the plan's data stream, as they are. */
  | ["L", number]
  /** `len` bytes of the source (the active slot) at `srcOffset`. */
  | ["C", number, number]
  /** Source bytes at `srcOffset` plus (mod 256, byte by byte) the next `len` stream bytes. */
  | ["D", number, number];

export interface Blob {
  /** Offset in the data area and compressed size. */
  offset: number;
  size: number;
  /** SHA-256 of the compressed bytes. */
  sha256: string;
  /** Length of the decompressed stream. */
  rawSize: number;
}

/** What a delta needs on the client: the first `size` bytes of its active slot, hashing to `sha256`. */
export type PlanSource = { size: number; sha256: string; version?: string } | null;

/** A plan as the signed manifest lists it. */
export interface PlanRef {
  id: string;
  source: PlanSource;
  /** The plan's body (brotli JSON of a PlanBody). */
  body: Blob;
}

/** The rest of a plan, in its own blob. */
export interface PlanBody {
  ops: Op[];
  /** Data blobs; blob i feeds the target chunks [firstChunk[i], firstChunk[i+1]). */
  blobs: (Blob & { firstChunk: number })[];
  /**
   * [chunk index, SHA-256] in chunk order: every chunk that takes stream
   * bytes is listed (a full plan lists all). A delta may leave out chunks
   * it copies whole from the source: those are as good as the source,
   * whose SHA-256 is checked, and the whole target is read back at the end.
   */
  chunks: [number, string][];
}

/** One way to build the target: from nothing (full) or from one source image (delta). */
export interface Plan extends PlanBody {
  id: string;
  source: PlanSource;
}

export interface BootFile {
  size: number;
  sha256: string;
  blob: Blob;
}

export interface Manifest {
  format: 3;
  /** The OS version this payload installs. */
  version: string;
  codec: "brotli";
  target: {
    size: number;
    sha256: string;
    /** dm-verity: root hash and where the appended hash tree starts in the image. */
    verity?: { rootHash: string; hashOffset: number };
  };
  /** The slot's kernel and initrd, stored whole. */
  boot: { kernel?: BootFile; initrd?: BootFile };
  /** Bytes per verified target chunk; the last one may be short. */
  chunkSize: number;
  plans: PlanRef[];
}

export interface Signature {
  /** First 16 hex digits of the SHA-256 of the public key (SPKI DER). */
  keyId: string;
  algorithm: "ed25519" | "rsa-sha256";
  /** Base64. */
  value: string;
}

export interface Layout {
  manifestBytes: Buffer;
  signatures: Signature[];
  dataOffset: number;
}

export function encodeHeader(manifestLength: number, signaturesLength: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h.writeUInt32BE(FORMAT_VERSION, 8);
  h.writeUInt32BE(manifestLength, 12);
  h.writeUInt32BE(signaturesLength, 16);
  return h;
}

/** Parse the header; returns the lengths of the manifest and signature sections. */
export function decodeHeader(h: Buffer, where: string): { manifest: number; signatures: number } {
  if (h.length < HEADER_SIZE) throw new InputError("truncated: no complete header", { where });
  if (!h.subarray(0, 8).equals(MAGIC))
    throw new InputError("not a slipway payload (bad magic)", { where });
  const version = h.readUInt32BE(8);
  if (version !== FORMAT_VERSION)
    throw new InputError(`payload format version ${version} is not supported (want 3)`, {
      where,
    });
  const manifest = h.readUInt32BE(12);
  const signatures = h.readUInt32BE(16);
  if (h.readUInt32BE(20) !== 0) throw new InputError("reserved header field is not 0", { where });
  if (manifest === 0 || manifest > MAX_MANIFEST_BYTES)
    throw new InputError(`manifest length ${manifest} is out of range`, { where });
  if (signatures === 0 || signatures > MAX_SIGNATURES_BYTES)
    throw new InputError(`signature section length ${signatures} is out of range`, { where });
  return { manifest, signatures };
}

const ALGORITHMS = ["ed25519", "rsa-sha256"] as const;

/** Signatures: count, then per signature its 8-byte key id, algorithm (1 byte) and value. */
export function encodeSignatures(signatures: Signature[]): Buffer {
  const w = new WireWriter().varint(signatures.length);
  for (const s of signatures)
    w.raw(Buffer.from(s.keyId, "hex"))
      .u8(ALGORITHMS.indexOf(s.algorithm))
      .varint(Buffer.from(s.value, "base64").length)
      .raw(Buffer.from(s.value, "base64"));
  return w.toBuffer();
}

export function parseSignatures(bytes: Buffer, where: string): Signature[] {
  const r = new WireReader(bytes, "signature section", where);
  const n = r.count(10);
  if (n === 0) r.fail("no signatures");
  const out: Signature[] = [];
  for (let i = 0; i < n; i++) {
    const keyId = r.raw(8).toString("hex");
    const algorithm = ALGORITHMS[r.u8()] ?? r.fail(`signature ${i} has an unknown algorithm`);
    out.push({ keyId, algorithm, value: r.raw(r.varint()).toString("base64") });
  }
  r.end();
  return out;
}

/** The bytes a signature covers: a domain tag, then the manifest section. */
export function signedMessage(manifestBytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from("slipway-payload-v3\0", "latin1"), manifestBytes]);
}

function writeBlob(w: WireWriter, b: Blob): void {
  w.varint(b.offset).varint(b.size).sha256(b.sha256).varint(b.rawSize);
}

function readBlob(r: WireReader): Blob {
  return { offset: r.varint(), size: r.varint(), sha256: r.sha256(), rawSize: r.varint() };
}

export function planId(source: PlanSource): string {
  return source === null ? "full" : `delta-${source.sha256.slice(0, 16)}`;
}

/**
 * The manifest section (signed as is, not compressed: it is mostly hashes).
 * Plan ids are not stored: "full", or "delta-" and the source hash's first 16 digits.
 */
export function encodeManifest(m: Manifest): Buffer {
  const w = new WireWriter().u8(m.format).str(m.version);
  w.varint(m.target.size).sha256(m.target.sha256);
  const { verity } = m.target;
  const { kernel, initrd } = m.boot;
  w.u8((verity ? 1 : 0) | (kernel ? 2 : 0) | (initrd ? 4 : 0));
  if (verity) w.sha256(verity.rootHash).varint(verity.hashOffset);
  for (const f of [kernel, initrd]) if (f) writeBlob(w.varint(f.size).sha256(f.sha256), f.blob);
  w.varint(m.chunkSize).varint(m.plans.length);
  for (const p of m.plans) {
    if (p.id !== planId(p.source))
      throw new Error(`plan id ${p.id} is not derived from its source`);
    if (p.source === null) w.u8(0);
    else {
      w.u8(p.source.version === undefined ? 1 : 2)
        .varint(p.source.size)
        .sha256(p.source.sha256);
      if (p.source.version !== undefined) w.str(p.source.version);
    }
    writeBlob(w, p.body);
  }
  return w.toBuffer();
}

/** Decode and validate a manifest whose signature already checked out. */
export function decodeManifest(bytes: Buffer, where: string): Manifest {
  const r = new WireReader(bytes, "manifest", where);
  const format = r.u8();
  if (format !== 3) r.fail(`format ${format} is not 3`);
  const version = r.str();
  const target: Manifest["target"] = { size: r.varint(), sha256: r.sha256() };
  const flags = r.u8();
  if (flags > 7) r.fail("unknown flags");
  if (flags & 1) target.verity = { rootHash: r.sha256(), hashOffset: r.varint() };
  const boot: Manifest["boot"] = {};
  for (const [bit, name] of [
    [2, "kernel"],
    [4, "initrd"],
  ] as const)
    if (flags & bit) boot[name] = { size: r.varint(), sha256: r.sha256(), blob: readBlob(r) };
  const chunkSize = r.varint();
  const plans: PlanRef[] = [];
  for (let i = r.count(36); i > 0; i--) {
    const kind = r.u8();
    let source: PlanSource = null;
    if (kind === 1 || kind === 2) {
      source = { size: r.varint(), sha256: r.sha256() };
      if (kind === 2) source.version = r.str();
    } else if (kind !== 0) r.fail("unknown plan kind");
    plans.push({ id: planId(source), source, body: readBlob(r) });
  }
  r.end();
  const m: Manifest = { format: 3, version, codec: "brotli", target, boot, chunkSize, plans };
  validateManifest(m, where);
  return m;
}

const OP_KINDS = ["L", "C", "D"] as const;

/**
 * A plan body, before brotli: ops as three columns (kinds, lengths, and
 * for C/D the source offset relative to the target position, zigzag:
 * a delta's shifts repeat and compress where absolute offsets do not),
 * then the data blobs, then the chunk hashes (index gap, 32 bytes).
 */
export function encodePlanBody(body: PlanBody): Buffer {
  const w = new WireWriter().varint(body.ops.length);
  for (const op of body.ops) w.u8(OP_KINDS.indexOf(op[0]));
  for (const op of body.ops) w.varint(op[0] === "L" ? op[1] : op[2]);
  let pos = 0;
  for (const op of body.ops) {
    if (op[0] === "L") pos += op[1];
    else {
      w.zigzag(op[1] - pos);
      pos += op[2];
    }
  }
  w.varint(body.blobs.length);
  for (const b of body.blobs) {
    writeBlob(w, b);
    w.varint(b.firstChunk);
  }
  w.varint(body.chunks.length);
  let prev = -1;
  for (const [c, sha] of body.chunks) {
    w.varint(c - prev - 1).sha256(sha);
    prev = c;
  }
  return w.toBuffer();
}

/** Decompress, decode and validate a plan body whose blob hash already checked out. */
export function decodePlanBody(
  bytes: Buffer,
  manifest: Manifest,
  ref: PlanRef,
  where: string,
): Plan {
  const what = `plan ${ref.id}'s body`;
  let raw: Buffer;
  try {
    raw = brotliDecompressSync(bytes, { maxOutputLength: MAX_PLAN_BODY_BYTES });
  } catch {
    throw new InputError(`${what} does not decompress`, { where });
  }
  const r = new WireReader(raw, what, where);
  // An op takes at least its kind and length byte (L has no shift).
  const n = r.count(2);
  const kinds = r.raw(n);
  const ops: Op[] = [];
  const lens: number[] = [];
  for (let i = 0; i < n; i++) lens.push(r.varint());
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const kind = OP_KINDS[kinds[i]!] ?? r.fail("unknown op");
    const len = lens[i]!;
    if (kind === "L") ops.push([kind, len]);
    else ops.push([kind, pos + r.zigzag(), len]);
    pos += len;
  }
  const blobs: Plan["blobs"] = [];
  for (let i = r.count(36); i > 0; i--) blobs.push({ ...readBlob(r), firstChunk: r.varint() });
  const chunks: [number, string][] = [];
  let prev = -1;
  for (let i = r.count(33); i > 0; i--) {
    prev += r.varint() + 1;
    chunks.push([prev, r.sha256()]);
  }
  r.end();
  const body: PlanBody = { ops, blobs, chunks };
  validatePlanBody(body, manifest, ref, where);
  return { id: ref.id, source: ref.source, ops, blobs, chunks };
}

export const chunkCount = (m: Manifest) => Math.ceil(m.target.size / m.chunkSize);

/**
 * Check what the decoder's types do not already say about a signed manifest
 * (sizes, ranges, distinct plans), so the apply engine can trust it.
 */
function validateManifest(m: Manifest, where: string): void {
  const bad = (what: string): never => {
    throw new InputError(`manifest: ${what}`, { where });
  };
  const t = m.target;
  if (t.size === 0) bad("target size");
  if (t.verity !== undefined) {
    // The agent writes both into slot.cfg: a hash tree appended to the image
    // starts at hashOffset, so without it the slot would not mount.
    const v = t.verity;
    if (v.hashOffset % 4096 !== 0 || v.hashOffset >= t.size) bad("verity hash offset");
  }
  // The apply engine holds two chunk-sized buffers: keep them inside the memory budget.
  if (m.chunkSize < 4096 || m.chunkSize > 8 << 20) bad("chunkSize");
  for (const k of ["kernel", "initrd"] as const) {
    const f = m.boot[k];
    if (f !== undefined && f.blob.rawSize !== f.size) bad(`${k} blob size`);
  }
  if (m.plans.length === 0) bad("no plans");
  const ids = new Set<string>();
  for (const p of m.plans) {
    if (ids.has(p.id)) bad(`duplicate plan ${p.id}`);
    ids.add(p.id);
    if (p.source !== null && p.source.size === 0) bad(`plan ${p.id}: source`);
  }
}

/**
 * Check a plan body's arithmetic (ops cover the target exactly, blobs feed
 * every chunk, chunk hashes inside the target) so the apply engine can trust
 * it blindly. Kinds, counts and the chunk order come from the decoder.
 */
function validatePlanBody(p: PlanBody, m: Manifest, ref: PlanRef, where: string): void {
  const bad = (what: string): never => {
    throw new InputError(`manifest: plan ${ref.id}: ${what}`, { where });
  };
  const s = ref.source;
  const nChunks = chunkCount(m);
  let covered = 0;
  let stream = 0;
  for (const op of p.ops) {
    if (op[0] === "L") {
      if (op[1] === 0) bad("empty op");
      covered += op[1];
      stream += op[1];
      continue;
    }
    if (op[2] === 0) bad("empty op");
    if (s === null) bad("a full plan cannot read a source");
    // A relative offset can point before the source's start.
    if (op[1] < 0 || op[1] + op[2] > s!.size) bad("op reads outside the source");
    covered += op[2];
    if (op[0] === "D") stream += op[2];
  }
  if (covered !== m.target.size) bad(`ops cover ${covered} bytes, target is ${m.target.size}`);
  if (p.blobs.length === 0) bad("blobs");
  let rawBytes = 0;
  let prev = -1;
  for (const [i, b] of p.blobs.entries()) {
    if (b.firstChunk <= prev || b.firstChunk >= nChunks) bad(`blob ${i} chunk range`);
    if (i === 0 && b.firstChunk !== 0) bad("first blob must start at chunk 0");
    prev = b.firstChunk;
    rawBytes += b.rawSize;
  }
  if (rawBytes !== stream) bad(`blobs hold ${rawBytes} stream bytes, ops need ${stream}`);
  // Indices only grow (stored as gaps); the last must lie inside the target.
  const last = p.chunks.at(-1);
  if (last !== undefined && last[0] >= nChunks) bad("chunk hash list");
}
