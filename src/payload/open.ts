/**
 * Reading a payload's head: header, signatures, manifest. Nothing in the
 * manifest is parsed before a trusted signature over its bytes verified
 * (inspect is the one exception, and says so).
 */
import { createHash } from "node:crypto";
import { InputError } from "../errors.ts";
import {
  type Blob,
  chunkCount,
  decodeHeader,
  decodeManifest,
  decodePlanBody,
  HEADER_SIZE,
  type Manifest,
  type Plan,
  type PlanRef,
  parseSignatures,
  type Signature,
  signedMessage,
} from "./format.ts";
import { checkSignatures, type KeyInput, loadPublicKey } from "./keys.ts";
import type { PayloadReader } from "./reader.ts";

export interface OpenedPayload {
  manifest: Manifest;
  signatures: Signature[];
  /** Key ids whose signatures verified (empty when not checked). */
  verifiedBy: string[];
  /** SHA-256 of the manifest section: the payload's identity in journals. */
  manifestSha256: string;
  manifestBytes: number;
  dataOffset: number;
  size: number;
}

/**
 * Read and check the head of a payload. With `trustedKeys === null` the
 * signatures are not checked (inspect only).
 */
export async function openPayload(
  reader: PayloadReader,
  trustedKeys: KeyInput[] | null,
): Promise<OpenedPayload> {
  const where = reader.name;
  const size = await reader.size();
  if (size < HEADER_SIZE) throw new InputError("truncated: no complete header", { where });
  const lens = decodeHeader(await reader.read(0, HEADER_SIZE), where);
  const dataOffset = HEADER_SIZE + lens.manifest + lens.signatures;
  if (dataOffset > size) throw new InputError("truncated inside the manifest", { where });
  const head = await reader.read(HEADER_SIZE, lens.manifest + lens.signatures);
  const manifestBytes = head.subarray(0, lens.manifest);
  const signatures = parseSignatures(head.subarray(lens.manifest), where);
  let verifiedBy: string[] = [];
  if (trustedKeys !== null) {
    if (trustedKeys.length === 0) throw new InputError("no trusted public key given", { where });
    const keys = trustedKeys.map(loadPublicKey);
    verifiedBy = checkSignatures(signedMessage(manifestBytes), signatures, keys, where);
  }
  const manifest = decodeManifest(manifestBytes, where);
  checkBounds(
    [
      ...manifest.plans.map((p) => p.body),
      ...(manifest.boot.kernel ? [manifest.boot.kernel.blob] : []),
      ...(manifest.boot.initrd ? [manifest.boot.initrd.blob] : []),
    ],
    size - dataOffset,
    where,
  );
  return {
    manifest,
    signatures,
    verifiedBy,
    manifestSha256: createHash("sha256").update(manifestBytes).digest("hex"),
    manifestBytes: lens.manifest,
    dataOffset,
    size,
  };
}

function checkBounds(blobs: Blob[], dataSize: number, where: string): void {
  for (const b of blobs)
    if (b.offset + b.size > dataSize)
      throw new InputError("truncated: a data blob ends past the end of the file", { where });
}

/** Fetch a plan's body, check it against the signed manifest's hash, validate it. */
export async function loadPlan(
  reader: PayloadReader,
  opened: OpenedPayload,
  ref: PlanRef,
): Promise<Plan> {
  const where = reader.name;
  const bytes = await reader.read(opened.dataOffset + ref.body.offset, ref.body.size);
  if (createHash("sha256").update(bytes).digest("hex") !== ref.body.sha256)
    throw new InputError(`plan ${ref.id}'s body is corrupt`, { where });
  const plan = decodePlanBody(bytes, opened.manifest, ref, where);
  checkBounds(plan.blobs, opened.size - opened.dataOffset, where);
  return plan;
}

/**
 * Every byte of the data area belongs to exactly one blob: no gaps,
 * overlaps or trailing bytes (verify checks this; apply reads only its plan).
 */
export function checkTiling(blobs: Blob[], dataSize: number, where: string): void {
  const spans = blobs.filter((b) => b.size > 0).sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const b of spans) {
    if (b.offset !== end) throw new InputError("data blobs overlap or leave gaps", { where });
    end += b.size;
  }
  if (end !== dataSize)
    throw new InputError(`${dataSize - end} unexpected bytes after the last data blob`, { where });
}

/** A stretch of one chunk: literal stream bytes, a source copy, or a source diff. */
export interface Segment {
  kind: "L" | "C" | "D";
  /** Source offset for C and D. */
  src: number;
  len: number;
}

export interface ChunkWork {
  segments: Segment[];
  /** Stream bytes this chunk consumes. */
  streamBytes: number;
  /** Whether the chunk's bytes depend on the source. */
  usesSource: boolean;
  /** The chunk's SHA-256; absent only for chunks a delta copies whole from the source. */
  sha256?: string;
}

/**
 * Cut a plan's ops at chunk boundaries and check that every blob feeds
 * exactly the chunks it claims.
 */
export function schedule(manifest: Manifest, plan: Plan, where: string): ChunkWork[] {
  const { chunkSize } = manifest;
  const n = chunkCount(manifest);
  const work: ChunkWork[] = Array.from({ length: n }, () => ({
    segments: [],
    streamBytes: 0,
    usesSource: false,
  }));
  let pos = 0;
  for (const op of plan.ops) {
    const kind = op[0];
    let src = kind === "L" ? 0 : op[1];
    let left = kind === "L" ? op[1] : op[2];
    while (left > 0) {
      const c = Math.floor(pos / chunkSize);
      const w = work[c]!;
      const len = Math.min(left, (c + 1) * chunkSize - pos);
      w.segments.push({ kind, src, len });
      if (kind !== "C") w.streamBytes += len;
      if (kind !== "L") w.usesSource = true;
      pos += len;
      left -= len;
      src += len;
    }
  }
  for (const [c, sha] of plan.chunks) work[c]!.sha256 = sha;
  for (const [c, w] of work.entries())
    if (w.sha256 === undefined && (w.streamBytes > 0 || !w.usesSource))
      throw new InputError(`manifest: plan ${plan.id} has no hash for chunk ${c}`, { where });
  for (const [i, b] of plan.blobs.entries()) {
    const end = plan.blobs[i + 1]?.firstChunk ?? n;
    let need = 0;
    for (let c = b.firstChunk; c < end; c++) need += work[c]!.streamBytes;
    if (need !== b.rawSize)
      throw new InputError(`manifest: plan ${plan.id} blob ${i} does not match its chunks`, {
        where,
      });
  }
  return work;
}
