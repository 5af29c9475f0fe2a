/**
 * Where payload bytes come from: a local file, an HTTP URL with range
 * requests, or anything else that can read a byte range. The apply engine
 * only ever reads the header, the manifest and the blobs of the plan it uses,
 * so one payload file holding several plans costs each client only its part.
 */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { Readable } from "node:stream";
import { InputError, SlipwayError } from "../errors.ts";

export interface PayloadReader {
  /** Shown in messages. */
  name: string;
  /** Total size in bytes. */
  size(): Promise<number>;
  /** Exactly `length` bytes at `offset` (short reads are errors). */
  read(offset: number, length: number): Promise<Buffer>;
  /** The same bytes as a stream, for blobs. */
  stream(offset: number, length: number): Readable;
  /**
   * Optional: exactly `length` bytes at `position` into the start of `buf`
   * (a reused buffer: blobs are then read without allocating per piece).
   */
  readInto?(buf: Buffer, length: number, position: number): Promise<void>;
  close?(): Promise<void>;
}

export function fileReader(path: string): PayloadReader {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  const fh = async () => {
    if (!handle) {
      try {
        handle = await open(path, "r");
      } catch (err) {
        throw new InputError(`cannot open payload: ${(err as Error).message}`, { where: path });
      }
    }
    return handle;
  };
  return {
    name: path,
    async size() {
      return (await (await fh()).stat()).size;
    },
    async read(offset, length) {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await (await fh()).read(buf, 0, length, offset);
      if (bytesRead !== length) throw new InputError("payload is truncated", { where: path });
      return buf;
    },
    async readInto(buf, length, position) {
      const h = await fh();
      let done = 0;
      while (done < length) {
        const { bytesRead } = await h.read(buf, done, length - done, position + done);
        if (bytesRead === 0) throw new InputError("payload is truncated", { where: path });
        done += bytesRead;
      }
    },
    stream(offset, length) {
      // Its own descriptor per blob: destroying it never touches the shared handle.
      return createReadStream(path, {
        start: offset,
        end: offset + length - 1,
        highWaterMark: 256 << 10,
      });
    },
    async close() {
      await handle?.close();
      handle = undefined;
    },
  };
}

/** Range requests against an HTTP server (fetch exists in Node 20). */
export function httpReader(url: string, headers: Record<string, string> = {}): PayloadReader {
  const get = async (offset: number, length: number) => {
    const res = await fetch(url, {
      headers: { ...headers, range: `bytes=${offset}-${offset + length - 1}` },
    });
    if (res.status !== 206)
      throw new SlipwayError(`range request answered ${res.status}, want 206`, { where: url });
    return res;
  };
  return {
    name: url,
    async size() {
      const res = await fetch(url, { method: "HEAD", headers });
      const len = Number(res.headers.get("content-length"));
      if (!res.ok || !Number.isSafeInteger(len))
        throw new SlipwayError(`HEAD answered ${res.status} without a length`, { where: url });
      return len;
    },
    async read(offset, length) {
      const buf = Buffer.from(await (await get(offset, length)).arrayBuffer());
      if (buf.length !== length) throw new InputError("payload is truncated", { where: url });
      return buf;
    },
    stream(offset, length) {
      return Readable.from(
        (async function* () {
          const res = await get(offset, length);
          if (!res.body) throw new SlipwayError("range request has no body", { where: url });
          yield* Readable.fromWeb(res.body as never);
        })(),
        { objectMode: false },
      );
    },
  };
}

export function toReader(payload: string | PayloadReader): PayloadReader {
  if (typeof payload !== "string") return payload;
  return /^https?:\/\//.test(payload) ? httpReader(payload) : fileReader(payload);
}
