/**
 * The apply engine: rebuild the target USR image from a payload, streaming,
 * in bounded memory (one chunk buffer plus the decoder's window), checking
 * every chunk's SHA-256 before it is written and the whole target's at the
 * end, resumable from a journal beside the target.
 *
 * Runs on Node 20 (the image's nodejs): only node:zlib brotli, node:crypto
 * and node:fs — no Node 22+ APIs.
 */
import { createHash, webcrypto } from "node:crypto";
import { constants as fsc, readSync, write } from "node:fs";
import { type FileHandle, mkdir, open, rename, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { InputError, SlipwayError } from "../errors.ts";
import { BlobReader, INPUT_BUFFER } from "./blob-reader.ts";
import { chunkCount, type PlanRef } from "./format.ts";
import { readJournal, removeJournal, writeJournal } from "./journal.ts";
import type { KeyInput } from "./keys.ts";
import { loadPlan, type OpenedPayload, openPayload, schedule } from "./open.ts";
import { type PayloadReader, toReader } from "./reader.ts";

export interface ApplyProgress {
  /** "source" hashes the active slot to pick a delta, "write" rebuilds, "verify" reads back. */
  phase: "source" | "write" | "verify";
  done: number;
  total: number;
}

export interface ApplyOptions {
  /** A payload file path, an http(s) URL (range requests), or any PayloadReader. */
  payload: string | PayloadReader;
  /** Device or file to write (the passive slot). Regular files are created and trimmed to size. */
  target: string;
  /** Device or file holding the image a delta was made from (the active slot). Never written. */
  source?: string;
  /** SHA-256 of the source image, when the caller knows it: saves hashing the source. */
  sourceSha256?: string;
  /** Public keys (PEM text, PEM path or KeyObject); a signature by any of them is enough. */
  trustedKeys: KeyInput[];
  /** Continue from the journal of an interrupted apply of the same payload. */
  resume?: boolean;
  /** Default: `${target}.slipway-journal`. Give one for block devices (/dev is not persistent). */
  journalPath?: string;
  /** Force a plan by id (tests, benchmarks). */
  planId?: string;
  /** Sync and journal at least every this many bytes (default 64 MiB). */
  checkpointBytes?: number;
  /** Also write the kernel and initrd as `vmlinuz` and `initrd` into this directory. */
  bootDir?: string;
  onProgress?: (p: ApplyProgress) => void;
}

export interface ApplyResult {
  version: string;
  /** The plan used: "full" or "delta-<source sha256 prefix>". */
  plan: string;
  /** SHA-256 of the target image, verified by reading it back. */
  sha256: string;
  size: number;
  /** Payload bytes this apply read (header, manifest and the plan's blobs). */
  payloadBytesRead: number;
  /** First chunk written in this run (> 0 after a resume). */
  resumedAtChunk: number;
  kernel?: Buffer;
  initrd?: Buffer;
  /** dm-verity root hash and the hash tree's offset in the image (for slot.cfg). */
  verity?: { rootHash: string; hashOffset: number };
  /** Key ids whose signatures verified. */
  verifiedBy: string[];
}

const MiB = 1 << 20;

/**
 * The source is not the image the delta was made from (or is damaged): the
 * payload itself may be fine, and the full plan would work. The agent asks
 * for a full payload on its next check after this error.
 */
export class WrongSourceError extends InputError {
  constructor(message: string, opts: { where?: string } = {}) {
    super(message, opts);
    this.name = "WrongSourceError";
  }
}

/**
 * SHA-256 (hex) on the libuv pool (WebCrypto's digest is an async job), so
 * the main thread goes on decoding; Node 20 has it too.
 */
async function sha256Off(data: Buffer): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest("SHA-256", data)).toString("hex");
}

/** Exactly `len` bytes at `pos` into buf[at…], synchronously (small source pieces: no pool hop). */
function preadFull(fd: number, buf: Buffer, at: number, len: number, pos: number): boolean {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, at + done, len - done, pos + done);
    if (n === 0) return false;
    done += n;
  }
  return true;
}

async function readFull(fh: FileHandle, buf: Buffer, at: number, len: number, pos: number) {
  let done = 0;
  while (done < len) {
    const { bytesRead } = await fh.read(buf, at + done, len - done, pos + done);
    if (bytesRead === 0) return false;
    done += bytesRead;
  }
  return true;
}

/**
 * pwrite all of buf[0, len) at `pos`, on the libuv pool. The callback API:
 * FileHandle.write measured several times slower per 4 MiB call on Node 24.
 */
async function writeFull(fh: FileHandle, buf: Buffer, len: number, pos: number) {
  let done = 0;
  while (done < len) {
    done += await new Promise<number>((resolve, reject) =>
      write(fh.fd, buf, done, len - done, pos + done, (err, n) => (err ? reject(err) : resolve(n))),
    );
  }
}

/**
 * SHA-256 of the first `size` bytes of a file or device; undefined if it is
 * shorter. The next block is read while the current one is hashed.
 */
async function hashRange(
  path: string,
  size: number,
  onBytes?: (done: number) => void,
  buffers: Buffer[] = [Buffer.allocUnsafe(4 * MiB), Buffer.allocUnsafe(4 * MiB)],
): Promise<string | undefined> {
  const fh = await open(path, "r");
  const block = Math.min(buffers[0]!.length, buffers[1]!.length);
  let next: Promise<boolean> | undefined;
  try {
    const hash = createHash("sha256");
    let pos = 0;
    let turn = 0;
    next = readFull(fh, buffers[0]!, 0, Math.min(block, size), 0);
    while (pos < size) {
      const n = Math.min(block, size - pos);
      const ok = await next;
      next = undefined;
      if (!ok) return undefined;
      const after = pos + n;
      if (after < size)
        next = readFull(fh, buffers[turn ^ 1]!, 0, Math.min(block, size - after), after);
      hash.update(buffers[turn]!.subarray(0, n));
      pos = after;
      turn ^= 1;
      onBytes?.(pos);
    }
    return hash.digest("hex");
  } finally {
    await next?.catch(() => {});
    await fh.close();
  }
}

/** Pick the plan: the delta whose source the client has, else the full one. */
async function choosePlan(
  opened: OpenedPayload,
  opts: ApplyOptions,
  buffers: Buffer[],
): Promise<{ plan: PlanRef; sourceNote?: string }> {
  const { manifest } = opened;
  const where = opts.payload.toString();
  if (opts.planId !== undefined) {
    const plan = manifest.plans.find((p) => p.id === opts.planId);
    if (!plan) throw new InputError(`payload has no plan ${opts.planId}`, { where });
    if (plan.source && !opts.source)
      throw new InputError(`plan ${plan.id} is a delta: give the source`, { where });
    return { plan };
  }
  const full = manifest.plans.find((p) => p.source === null);
  const deltas = manifest.plans.filter((p) => p.source !== null);
  if (!opts.source || deltas.length === 0) {
    if (full) return { plan: full };
    throw new InputError("payload holds only delta plans: give the source image (--source)", {
      where,
    });
  }
  const seen: string[] = [];
  const sizes = [...new Set(deltas.map((p) => p.source!.size))];
  for (const size of sizes) {
    let sha = opts.sourceSha256;
    if (sha === undefined) {
      sha = await hashRange(
        opts.source,
        size,
        (done) => opts.onProgress?.({ phase: "source", done, total: size }),
        buffers,
      );
    }
    if (sha === undefined) continue;
    seen.push(sha);
    const plan = deltas.find((p) => p.source!.size === size && p.source!.sha256 === sha);
    if (plan) return { plan };
  }
  if (full) return { plan: full, sourceNote: "source matches no delta; using the full plan" };
  const want = deltas.map((p) => `${p.source!.sha256.slice(0, 16)}…`).join(", ");
  throw new WrongSourceError(
    `payload is a delta from ${want}, but the source ${opts.source} is ${
      seen.length ? `${seen[0]!.slice(0, 16)}…` : "smaller than the base image"
    } (wrong source version)`,
    { where },
  );
}

/** A kernel or initrd, decoded straight into a buffer of its size. */
async function readBootFile(
  reader: PayloadReader,
  opened: OpenedPayload,
  name: "kernel" | "initrd",
): Promise<Buffer | undefined> {
  const f = opened.manifest.boot[name];
  if (!f) return undefined;
  const where = reader.name;
  const blob = new BlobReader(reader, opened.dataOffset, f.blob, `${name} blob`);
  try {
    const data = Buffer.allocUnsafe(f.size);
    if (
      f.blob.rawSize !== f.size ||
      !(await blob.readInto(data, 0, f.size)) ||
      !(await blob.finish())
    )
      throw new InputError(`${name} blob is corrupt`, { where });
    if (createHash("sha256").update(data).digest("hex") !== f.sha256)
      throw new InputError(`${name} does not match its hash`, { where });
    return data;
  } finally {
    blob.close();
  }
}

/** Size of a block device or file: probe the last byte (stat gives 0 for devices). */
async function fits(fh: FileHandle, size: number, isFile: boolean): Promise<boolean> {
  if (isFile) return true;
  const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, size - 1);
  return bytesRead === 1;
}

/**
 * Write the target from a payload. Resolves only when the whole target
 * reads back with the manifest's SHA-256; rejects with InputError for bad
 * payloads (signature, damage, wrong source) and SlipwayError otherwise.
 */
export async function applyPayload(opts: ApplyOptions): Promise<ApplyResult> {
  const reader = toReader(opts.payload);
  try {
    return await applyWith(reader, opts);
  } finally {
    await reader.close?.();
  }
}

async function applyWith(reader: PayloadReader, opts: ApplyOptions): Promise<ApplyResult> {
  const where = reader.name;
  const opened = await openPayload(reader, opts.trustedKeys);
  const { manifest } = opened;
  // Two chunk buffers, used for everything: hashing the source, assembling
  // one chunk while the other is written, reading the target back.
  const buffers = [Buffer.allocUnsafe(manifest.chunkSize), Buffer.allocUnsafe(manifest.chunkSize)];
  const { plan: ref } = await choosePlan(opened, opts, buffers);
  const plan = await loadPlan(reader, opened, ref);
  const work = schedule(manifest, plan, where);
  const size = manifest.target.size;
  const n = chunkCount(manifest);
  const journalPath = opts.journalPath ?? `${opts.target}.slipway-journal`;
  const checkpointBytes = opts.checkpointBytes ?? 64 * MiB;

  let resumeAt = 0;
  if (opts.resume) {
    const j = readJournal(journalPath);
    if (j && j.manifest === opened.manifestSha256 && j.plan === plan.id && j.chunksDone <= n)
      resumeAt = j.chunksDone;
  }
  const targetStat = await stat(opts.target).catch(() => undefined);
  const isFile = !targetStat || targetStat.isFile();
  if (isFile) await mkdir(dirname(opts.target), { recursive: true });
  const target = await open(opts.target, fsc.O_RDWR | (isFile ? fsc.O_CREAT : 0));
  const source = plan.source ? await open(opts.source!, "r") : undefined;
  let payloadBytesRead = opened.dataOffset + ref.body.size;
  const inFlight: (Promise<unknown> | undefined)[] = [undefined, undefined];
  let syncing: Promise<unknown> | undefined;
  let openStream: { close(): void } | undefined;
  const waitSync = async () => {
    const err = await syncing;
    syncing = undefined;
    if (err) throw err;
  };
  let sha: string | undefined;
  try {
    if (!(await fits(target, size, isFile)))
      throw new SlipwayError(`target is smaller than the image (${size} bytes)`, {
        where: opts.target,
      });
    writeJournal(journalPath, {
      format: 1,
      manifest: opened.manifestSha256,
      plan: plan.id,
      chunksDone: resumeAt,
    });
    let turn = 0;
    const settle = async (i: number) => {
      const err = await inFlight[i];
      inFlight[i] = undefined;
      if (err) throw err;
    };
    const scratch = Buffer.allocUnsafe(Math.min(manifest.chunkSize, 256 << 10));
    const input = Buffer.allocUnsafe(INPUT_BUFFER);
    let sinceCheckpoint = 0;
    // A checkpoint syncs in the background while the next chunks are built;
    // the journal only claims chunks written before that sync began.
    // Due every checkpointBytes, but never waiting for the previous sync:
    // while the disk is still flushing, writing goes on and the checkpoint
    // comes at a later chunk (dd syncs once; waiting here idled the apply).
    let syncBusy = false;
    const due = () => sinceCheckpoint >= checkpointBytes && !syncBusy;
    const checkpoint = async (chunksDone: number) => {
      await settle(0);
      await settle(1);
      await waitSync();
      sinceCheckpoint = 0;
      syncBusy = true;
      syncing = target.datasync().then(
        () => {
          syncBusy = false;
          writeJournal(journalPath, {
            format: 1,
            manifest: opened.manifestSha256,
            plan: plan.id,
            chunksDone,
          });
        },
        (err: unknown) => err ?? new Error("sync failed"),
      );
    };
    const total = size - Math.min(size, resumeAt * manifest.chunkSize);
    let done = 0;
    for (const [bi, blob] of plan.blobs.entries()) {
      const first = blob.firstChunk;
      const end = plan.blobs[bi + 1]?.firstChunk ?? n;
      if (end <= resumeAt) continue;
      const stream =
        blob.rawSize > 0
          ? new BlobReader(
              reader,
              opened.dataOffset,
              blob,
              `data blob ${bi} of plan ${plan.id}`,
              input,
            )
          : undefined;
      openStream = stream;
      const truncated = () =>
        new InputError(`data blob ${bi} of plan ${plan.id} is truncated or corrupt`, { where });
      payloadBytesRead += blob.size;
      for (let c = first; c < end; c++) {
        const w = work[c]!;
        const clen = Math.min(manifest.chunkSize, size - c * manifest.chunkSize);
        // Chunks before the resume point only advance the stream.
        if (c < resumeAt && !w.streamBytes) continue;
        await settle(turn);
        const chunkBuf = buffers[turn]!;
        let at = 0;
        for (const s of w.segments) {
          if (s.kind === "C" || s.kind === "D") {
            if (c >= resumeAt && !preadFull(source!.fd, chunkBuf, at, s.len, s.src))
              throw new WrongSourceError("source is shorter than the delta's base image", {
                where: opts.source,
              });
          }
          if (s.kind === "L") {
            // Awaited only when it is a promise: most small pieces decode at once.
            const r = stream ? stream.readInto(chunkBuf, at, s.len) : false;
            if (r !== true && !(r !== false && (await r))) throw truncated();
          }
          // D: the stream holds differences to add to the source bytes, piece by piece.
          for (let off = 0; s.kind === "D" && off < s.len; off += scratch.length) {
            const len = Math.min(scratch.length, s.len - off);
            const r = stream ? stream.readInto(scratch, 0, len) : false;
            if (r !== true && !(r !== false && (await r))) throw truncated();
            if (c < resumeAt) continue;
            const base = at + off;
            for (let i = 0; i < len; i++)
              chunkBuf[base + i] = (chunkBuf[base + i]! + scratch[i]!) & 255;
          }
          at += s.len;
        }
        if (c < resumeAt) continue;
        // A chunk without a hash is a whole copy of the checked source. The
        // hash runs on the libuv pool while the next chunk is decoded here;
        // a chunk is written only after its hash matched.
        const expected = w.sha256;
        const mismatch = () => {
          if (w.usesSource && w.streamBytes === 0)
            return new WrongSourceError(
              `chunk ${c} does not match: the source is not the delta's base image (or is damaged)`,
              { where: opts.source },
            );
          const message = `chunk ${c} does not match its hash: the payload is corrupt${
            w.usesSource ? " or the source is not the delta's base image" : ""
          }`;
          // A source taken on trust (hash given, not checked) is the likelier culprit.
          if (w.usesSource && opts.sourceSha256 !== undefined)
            return new WrongSourceError(message, { where });
          return new InputError(message, { where });
        };
        const pos = c * manifest.chunkSize;
        inFlight[turn] = (
          expected
            ? sha256Off(chunkBuf.subarray(0, clen)).then((got) => {
                if (got !== expected) throw mismatch();
                return writeFull(target, chunkBuf, clen, pos);
              })
            : writeFull(target, chunkBuf, clen, pos)
        ).then(
          () => undefined,
          (err: unknown) => err ?? new Error("write failed"),
        );
        turn ^= 1;
        done += clen;
        sinceCheckpoint += clen;
        opts.onProgress?.({ phase: "write", done, total });
        if (due() && c + 1 < end) await checkpoint(c + 1);
      }
      if (stream && !(await stream.finish()))
        throw new InputError(`data blob ${bi} of plan ${plan.id} is corrupt`, { where });
      stream?.close();
      openStream = undefined;
      if (due() && end < n) await checkpoint(end);
    }
    await settle(0);
    await settle(1);
    if (isFile && (await target.stat()).size > size) await target.truncate(size);
    // Everything durable (like dd conv=fsync) before the read-back starts.
    await checkpoint(n);
    await waitSync();
    // Success means the bytes on the target are right, whatever happened
    // before (resumes included).
    const verified = (done: number) => opts.onProgress?.({ phase: "verify", done, total: size });
    verified(0);
    sha = await hashRange(opts.target, size, verified, buffers);
  } finally {
    openStream?.close();
    // Never close the file under a write or sync still in flight.
    await Promise.all([...inFlight, syncing]);
    await target.close();
    await source?.close();
  }
  removeJournal(journalPath);
  // With the source hash taken on trust, chunks copied whole from the source
  // were not checked one by one: a wrong source shows up only here.
  if (sha !== manifest.target.sha256 && plan.source && opts.sourceSha256 !== undefined)
    throw new WrongSourceError(
      "target does not verify after a delta whose source hash was given, not checked: the source is probably not the delta's base image; apply again without the source hash or use the full payload",
      { where: opts.source },
    );
  if (sha !== manifest.target.sha256)
    throw new SlipwayError(
      "target does not verify after apply (its SHA-256 differs from the manifest); apply again without --resume",
      { where: opts.target },
    );

  const kernel = await readBootFile(reader, opened, "kernel");
  const initrd = await readBootFile(reader, opened, "initrd");
  if (kernel) payloadBytesRead += manifest.boot.kernel!.blob.size;
  if (initrd) payloadBytesRead += manifest.boot.initrd!.blob.size;
  if (opts.bootDir) {
    await mkdir(opts.bootDir, { recursive: true });
    for (const [name, data] of [
      ["vmlinuz", kernel],
      ["initrd", initrd],
    ] as const) {
      if (!data) continue;
      const dest = join(opts.bootDir, name);
      const fh = await open(`${dest}.tmp`, "w");
      await writeFull(fh, data, data.length, 0);
      await fh.datasync();
      await fh.close();
      await rename(`${dest}.tmp`, dest);
    }
  }
  const result: ApplyResult = {
    version: manifest.version,
    plan: plan.id,
    sha256: sha,
    size,
    payloadBytesRead,
    resumedAtChunk: resumeAt,
    verifiedBy: opened.verifiedBy,
  };
  if (kernel) result.kernel = kernel;
  if (initrd) result.initrd = initrd;
  if (manifest.target.verity) result.verity = manifest.target.verity;
  return result;
}
