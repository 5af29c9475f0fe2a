/**
 * Payload files stored by `slipway serve` under <data>/packages/<package id>/<file name>.
 * Files are hashed while they stream in, verified against the expected SHA-256, and only
 * then renamed into place, so a half-written or wrong file is never served.
 */
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

export const FILENAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface StoredFile {
  size: number;
  /** Hex. */
  sha256: string;
  /** Base64 (the legacy Omaha `hash`). */
  sha1: string;
}

export class ChecksumMismatch extends Error {}

export function packagesDir(dataDir: string): string {
  return join(dataDir, "packages");
}

export async function storePackageFile(
  dataDir: string,
  packageId: string,
  filename: string,
  body: Readable,
  expectedSha256?: string,
): Promise<StoredFile> {
  const dir = join(packagesDir(dataDir), packageId);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.upload-${randomUUID()}`);
  const sha256 = createHash("sha256");
  const sha1 = createHash("sha1");
  let size = 0;
  try {
    await pipeline(
      body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          sha256.update(chunk);
          sha1.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(tmp, { flags: "wx" }),
    );
    const got = sha256.digest("hex");
    if (expectedSha256 && got !== expectedSha256.toLowerCase()) {
      throw new ChecksumMismatch(`sha256 of the upload is ${got}, expected ${expectedSha256}`);
    }
    if (size === 0) throw new ChecksumMismatch("the upload is empty");
    await rename(tmp, join(dir, filename));
    return { size, sha256: got, sha1: sha1.digest("base64") };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function removePackageFiles(dataDir: string, packageId: string): Promise<void> {
  await rm(join(packagesDir(dataDir), packageId), { recursive: true, force: true });
}

export async function removePackageFile(
  dataDir: string,
  packageId: string,
  filename: string,
): Promise<void> {
  await rm(join(packagesDir(dataDir), packageId, filename), { force: true });
}
