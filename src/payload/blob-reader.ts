/**
 * Reading one data blob: its compressed bytes are fetched in pieces into a
 * reused buffer, hashed on the way, and brotli-decoded straight into the
 * caller's buffers. Nothing is allocated per piece, so apply memory stays
 * flat whatever the image size (the zlib stream API allocates an output
 * buffer per 64 KiB and leaves them to the GC: ~100 MB of RSS growth on a
 * 180 MB apply).
 *
 * The decoder is the native brotli handle behind `node:zlib`'s streams,
 * driven with `writeSync(flush, in, inOff, inLen, out, outOff, outLen)` —
 * the call zlib's own `processChunkSync` makes (same shape in Node 12–24).
 * It is internal API, so it is feature-tested; without it a blob is decoded
 * in one piece with `brotliDecompressSync` (bounded by its size).
 */
import { createHash, type Hash } from "node:crypto";
import type { Readable } from "node:stream";
import { brotliDecompressSync, createBrotliDecompress, constants as zc } from "node:zlib";
import { InputError, SlipwayError } from "../errors.ts";
import type { Blob } from "./format.ts";
import type { PayloadReader } from "./reader.ts";

/** Compressed bytes fetched per read (one reused buffer). */
export const INPUT_BUFFER = 1 << 20;
const EMPTY = Buffer.alloc(0);

interface Decoder {
  /**
   * Decode input[inOff, inOff+inLen) into out[outOff, outOff+outLen); throws
   * on bad data. Results land in `consumed` and `produced` (no object per
   * call: a delta makes hundreds of thousands of them).
   */
  consumed: number;
  produced: number;
  step(
    input: Buffer,
    inOff: number,
    inLen: number,
    out: Buffer,
    outOff: number,
    outLen: number,
    finish: boolean,
  ): void;
  close(): void;
}

interface NativeHandle {
  writeSync(
    flush: number,
    input: Buffer,
    inOff: number,
    inLen: number,
    out: Buffer,
    outOff: number,
    outLen: number,
  ): void;
  onerror: (message: string, errno: number) => void;
}

function nativeDecoder(): Decoder | undefined {
  const z = createBrotliDecompress() as unknown as {
    _handle?: NativeHandle;
    _writeState?: unknown;
    close(): void;
  };
  const handle = z._handle;
  const state = z._writeState;
  if (!handle || typeof handle.writeSync !== "function" || !(state instanceof Uint32Array)) {
    z.close();
    return undefined;
  }
  let error: string | undefined;
  // Called synchronously from writeSync on damaged data (the stream is not used).
  handle.onerror = (message) => {
    error = message;
  };
  return {
    consumed: 0,
    produced: 0,
    step(input, inOff, inLen, out, outOff, outLen, finish) {
      handle.writeSync(
        finish ? zc.BROTLI_OPERATION_FINISH : zc.BROTLI_OPERATION_PROCESS,
        input,
        inOff,
        inLen,
        out,
        outOff,
        outLen,
      );
      if (error !== undefined) throw new Error(error);
      this.produced = outLen - state[0]!;
      this.consumed = inLen - state[1]!;
    },
    // Frees the native window at once (the GC would take its time).
    close: () => z.close(),
  };
}

let nativeWorks: boolean | undefined;

/** Tests: decode with the one-shot fallback (false) or the native handle again (true). */
export function useNativeBrotli(on: boolean): void {
  nativeWorks = on ? undefined : false;
}

/** Where the compressed bytes come from: positional reads into one buffer, or a stream. */
interface Fetcher {
  /** The next piece (valid until the next call), or undefined at the end. */
  next(): Promise<Buffer | undefined>;
  close(): void;
}

function fetcher(reader: PayloadReader, offset: number, size: number, buf: Buffer): Fetcher {
  if (reader.readInto) {
    const readInto = reader.readInto.bind(reader);
    let pos = 0;
    return {
      async next() {
        if (pos >= size) return undefined;
        const n = Math.min(buf.length, size - pos);
        await readInto(buf, n, offset + pos);
        pos += n;
        return buf.subarray(0, n);
      },
      close() {},
    };
  }
  const stream: Readable = reader.stream(offset, size);
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return {
    async next() {
      const r = await it.next();
      return r.done ? undefined : r.value;
    },
    close: () => stream.destroy(),
  };
}

export class BlobReader {
  private readonly what: string;
  private readonly where: string;
  private readonly blob: Blob;
  private readonly fetch: Fetcher;
  private readonly hash: Hash = createHash("sha256");
  private readonly decoder: Decoder | undefined;
  /** Fallback: the whole decoded blob and how much of it was handed out. */
  private whole: Buffer | undefined;
  private wholeAt = 0;
  private input: Buffer = EMPTY;
  private inAt = 0;
  private fetched = 0;
  private drained = false;

  /**
   * `input` holds the compressed pieces: pass one buffer for every blob of
   * an apply (a fresh one per blob would wait for the GC to be freed).
   */
  constructor(
    reader: PayloadReader,
    dataOffset: number,
    blob: Blob,
    what: string,
    input: Buffer = Buffer.allocUnsafe(INPUT_BUFFER),
  ) {
    this.what = what;
    this.where = reader.name;
    this.blob = blob;
    this.fetch = fetcher(reader, dataOffset + blob.offset, blob.size, input);
    if (nativeWorks !== false) {
      this.decoder = nativeDecoder();
      nativeWorks = this.decoder !== undefined;
    }
  }

  private corrupt(detail?: string): InputError {
    return new InputError(`${this.what} is corrupt${detail ? ` (${detail})` : ""}`, {
      where: this.where,
    });
  }

  /** Make input available; false when the blob's compressed bytes are all used. */
  private async refill(): Promise<boolean> {
    if (this.inAt < this.input.length) return true;
    let piece: Buffer | undefined;
    try {
      piece = await this.fetch.next();
    } catch (err) {
      if (err instanceof SlipwayError) throw err;
      throw new SlipwayError(`cannot read ${this.what}: ${(err as Error).message}`, {
        where: this.where,
      });
    }
    if (!piece || piece.length === 0) {
      this.drained = true;
      return false;
    }
    this.fetched += piece.length;
    if (this.fetched > this.blob.size) throw this.corrupt("longer than the manifest says");
    this.hash.update(piece);
    this.input = piece;
    this.inAt = 0;
    return true;
  }

  /** One decoder call; the decoder's `consumed` and `produced` tell what it did. */
  private step(out: Buffer, at: number, len: number, finish: boolean): Decoder {
    const d = this.decoder!;
    try {
      d.step(this.input, this.inAt, this.input.length - this.inAt, out, at, len, finish);
      this.inAt += d.consumed;
      return d;
    } catch (err) {
      throw this.corrupt((err as Error).message);
    }
  }

  private async decodeWhole(): Promise<Buffer> {
    if (!this.whole) {
      const parts: Buffer[] = [];
      while (await this.refill()) {
        parts.push(Buffer.from(this.input.subarray(this.inAt)));
        this.inAt = this.input.length;
      }
      try {
        this.whole = brotliDecompressSync(Buffer.concat(parts), {
          maxOutputLength: Math.max(this.blob.rawSize, 1),
        });
      } catch (err) {
        throw this.corrupt((err as Error).message);
      }
    }
    return this.whole;
  }

  /**
   * Fill dst[at, at+len) with the next decoded bytes; false if the blob
   * ends first. Synchronous (no promise) while the current input piece
   * lasts: a delta asks for many small pieces.
   */
  readInto(dst: Buffer, at: number, len: number): boolean | Promise<boolean> {
    if (!this.decoder) return this.readWhole(dst, at, len);
    const filled = this.decodeAvailable(dst, at, len, 0);
    if (filled === len) return true;
    if (filled < 0) return false;
    return this.readRefilling(dst, at, len, filled);
  }

  private async readWhole(dst: Buffer, at: number, len: number): Promise<boolean> {
    const whole = await this.decodeWhole();
    if (this.wholeAt + len > whole.length) return false;
    whole.copy(dst, at, this.wholeAt, this.wholeAt + len);
    this.wholeAt += len;
    return true;
  }

  private async readRefilling(dst: Buffer, at: number, len: number, filled: number) {
    while (filled < len) {
      if (!(await this.refill())) return false;
      filled = this.decodeAvailable(dst, at, len, filled);
      if (filled < 0) return false;
    }
    return true;
  }

  /** Decode from the input at hand: bytes filled so far, or -1 when the stream ended early. */
  private decodeAvailable(dst: Buffer, at: number, len: number, filled: number): number {
    while (filled < len) {
      const { consumed, produced } = this.step(dst, at + filled, len - filled, false);
      filled += produced;
      if (produced > 0 || consumed > 0) continue;
      // Neither moved: the decoder wants input, or its stream already ended.
      return this.inAt < this.input.length ? -1 : filled;
    }
    return filled;
  }

  /**
   * True when the blob held exactly what was read: no decoded bytes left,
   * the brotli stream complete, no bytes after it, and the compressed bytes
   * hash to the manifest's SHA-256.
   */
  async finish(): Promise<boolean> {
    if (!this.decoder) {
      const whole = await this.decodeWhole();
      if (this.wholeAt !== whole.length) return false;
    } else {
      const probe = Buffer.allocUnsafe(1);
      for (;;) {
        const more = await this.refill();
        const { consumed, produced } = this.step(probe, 0, 1, !more);
        if (produced > 0) return false;
        if (!more) break;
        // Bytes the finished decoder will not take: trailing garbage.
        if (consumed === 0) return false;
      }
    }
    while (!this.drained) if (await this.refill()) this.inAt = this.input.length;
    return this.fetched === this.blob.size && this.hash.digest("hex") === this.blob.sha256;
  }

  close(): void {
    this.decoder?.close();
    this.fetch.close();
    this.whole = undefined;
  }
}
