/**
 * The /usr slot image: erofs (read-only, reproducible with a fixed UUID and
 * timestamp), optionally followed by a dm-verity hash tree in the same file
 * so one partition holds both (the initrd opens it with hash-offset=).
 */
import { rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { InputError, SlipwayError } from "../errors.ts";
import { runTool } from "./tool.ts";

export type UsrCompression = "lz4hc" | "uncompressed";

export interface UsrImageOptions {
  /** The rootfs tree; its `usr/` becomes the image root. */
  tree: string;
  out: string;
  compression?: UsrCompression;
  /** Filesystem UUID (fixed for reproducible images). */
  uuid: string;
  /** Timestamp stamped on every file (seconds since the epoch). */
  timestamp: number;
  /** Append a dm-verity hash tree; `salt` is 64 hex digits (fixed for reproducibility). */
  verity?: { salt: string; uuid: string };
}

export interface UsrImageResult {
  path: string;
  /** Bytes of erofs data (the verity hash area starts here). */
  dataSize: number;
  /** Total file size, hash tree included. */
  size: number;
  verity?: {
    rootHash: string;
    hashOffset: number;
    hashAlgorithm: "sha256";
    dataBlockSize: 4096;
    hashBlockSize: 4096;
  };
}

export async function buildUsrImage(opts: UsrImageOptions): Promise<UsrImageResult> {
  const tmp = `${opts.out}.tmp`;
  await rm(tmp, { force: true });
  try {
    const args = ["--quiet", `-U${opts.uuid}`, `-T${Math.floor(opts.timestamp)}`];
    if ((opts.compression ?? "lz4hc") === "lz4hc") args.push("-zlz4hc");
    await runTool("mkfs.erofs", [...args, tmp, join(opts.tree, "usr")], { where: opts.out });
    const dataSize = (await stat(tmp)).size;
    if (dataSize % 4096 !== 0)
      throw new SlipwayError(`erofs image size ${dataSize} is not 4 KiB-aligned`, {
        where: opts.out,
      });
    let verity: UsrImageResult["verity"];
    if (opts.verity) {
      if (!/^[0-9a-f]{64}$/.test(opts.verity.salt))
        throw new InputError("verity salt must be 64 hex digits");
      const out = await runTool(
        "veritysetup",
        [
          "format",
          `--hash-offset=${dataSize}`,
          `--data-blocks=${dataSize / 4096}`,
          "--data-block-size=4096",
          "--hash-block-size=4096",
          "--hash=sha256",
          `--salt=${opts.verity.salt}`,
          `--uuid=${opts.verity.uuid}`,
          tmp,
          tmp,
        ],
        { where: opts.out },
      );
      const m = /Root hash:\s*([0-9a-f]{64})/.exec(out);
      if (!m)
        throw new SlipwayError(`veritysetup printed no root hash:\n${out}`, { where: opts.out });
      verity = {
        rootHash: m[1]!,
        hashOffset: dataSize,
        hashAlgorithm: "sha256",
        dataBlockSize: 4096,
        hashBlockSize: 4096,
      };
    }
    const size = (await stat(tmp)).size;
    await rename(tmp, opts.out);
    return { path: opts.out, dataSize, size, ...(verity ? { verity } : {}) };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Check an image's hash tree against its root hash (veritysetup verify). */
export async function verifyUsrImage(
  path: string,
  verity: { rootHash: string; hashOffset: number },
): Promise<void> {
  await runTool(
    "veritysetup",
    ["verify", `--hash-offset=${verity.hashOffset}`, path, path, verity.rootHash],
    {
      where: path,
    },
  );
}

/** fsck.erofs over the image (data part only when it carries a hash tree). */
export async function checkErofs(path: string): Promise<void> {
  await runTool("fsck.erofs", [path], { where: path });
}
