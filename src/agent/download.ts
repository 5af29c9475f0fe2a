/**
 * Payload download: streamed to `<dest>.part`, resumed with an HTTP Range
 * request when a previous attempt was cut short, then checked against the
 * size and SHA-256 the server announced before it is renamed into place.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { pipeline } from "node:stream/promises";
import { SlipwayError } from "../errors.ts";
import { request } from "../lock/http.ts";

export class DownloadError extends SlipwayError {
  /** Omaha error code to report. */
  readonly code: number;
  constructor(message: string, code: number, where: string) {
    super(message, { where });
    this.name = "DownloadError";
    this.code = code;
  }
}

export interface DownloadSpec {
  url: string;
  dest: string;
  size: number;
  /** Base64 (Omaha action sha256) or hex (package hash_sha256). */
  sha256: string;
  onProgress?: (done: number, total: number) => void;
  timeoutMs?: number;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

async function sha256Of(path: string): Promise<Buffer> {
  const h = createHash("sha256");
  await pipeline(createReadStream(path), h);
  return h.digest();
}

function expectedDigest(s: string): Buffer {
  return /^[0-9a-f]{64}$/i.test(s) ? Buffer.from(s, "hex") : Buffer.from(s, "base64");
}

export async function download(spec: DownloadSpec): Promise<{ resumedAt: number }> {
  const part = `${spec.dest}.part`;
  const want = expectedDigest(spec.sha256);
  if ((await sizeOf(spec.dest)) === spec.size && (await sha256Of(spec.dest)).equals(want)) {
    return { resumedAt: spec.size };
  }
  let have = (await sizeOf(part)) ?? 0;
  if (have > spec.size) {
    await rm(part, { force: true });
    have = 0;
  }
  let resumedAt = 0;
  if (have < spec.size) {
    const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
    let body: IncomingMessage;
    try {
      // The timeout is for inactivity: a slow but moving download is fine.
      body = await request(spec.url, { headers, timeoutMs: spec.timeoutMs ?? 120_000 });
    } catch (err) {
      throw new DownloadError(`download failed: ${(err as Error).message}`, 9, spec.url);
    }
    if (body.statusCode === 206 && have > 0) {
      resumedAt = have;
    } else if (body.statusCode === 200) {
      have = 0;
    } else {
      body.resume();
      throw new DownloadError(`download answered HTTP ${body.statusCode}`, 9, spec.url);
    }
    let done = have;
    body.on("data", (chunk: Buffer) => {
      done += chunk.length;
      spec.onProgress?.(done, spec.size);
    });
    try {
      await pipeline(body, createWriteStream(part, { flags: have > 0 ? "a" : "w" }));
    } catch (err) {
      throw new DownloadError(
        `download interrupted at ${done} bytes: ${(err as Error).message}`,
        9,
        spec.url,
      );
    }
  }
  const got = (await sizeOf(part)) ?? 0;
  if (got !== spec.size) {
    // Short: keep the part so the next attempt resumes. Long: start over.
    if (got > spec.size) await rm(part, { force: true });
    throw new DownloadError(`payload is ${got} bytes, expected ${spec.size}`, 11, spec.url);
  }
  if (!(await sha256Of(part)).equals(want)) {
    await rm(part, { force: true });
    throw new DownloadError("payload SHA-256 does not match the update response", 10, spec.url);
  }
  await rename(part, spec.dest);
  return { resumedAt };
}
