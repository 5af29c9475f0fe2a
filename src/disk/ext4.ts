/**
 * ext4 images from a directory with `mkfs.ext4 -d` (no loop device, no
 * mount). Fixed UUID, hash seed and timestamps make them reproducible.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rename, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runTool } from "../boot/tool.ts";
import { InputError } from "../errors.ts";

export interface Ext4ImageOptions {
  out: string;
  sizeMiB: number;
  label: string;
  uuid: string;
  /** Content; an empty filesystem when absent. */
  sourceDir?: string;
  /** Timestamp for the superblock and new inodes (SOURCE_DATE_EPOCH). */
  timestamp?: number;
}

export async function buildExt4Image(opts: Ext4ImageOptions): Promise<void> {
  if (opts.label.length > 16)
    throw new InputError(`ext4 label ${opts.label} is longer than 16 bytes`);
  if (opts.sourceDir !== undefined && !existsSync(opts.sourceDir)) {
    throw new InputError("source directory does not exist", { where: opts.sourceDir });
  }
  const tmp = `${opts.out}.tmp`;
  await rm(tmp, { force: true });
  try {
    await writeFile(tmp, "");
    await truncate(tmp, opts.sizeMiB * 1024 * 1024);
    const ts = String(Math.floor(opts.timestamp ?? 0));
    await runTool(
      "mkfs.ext4",
      [
        "-q",
        "-F",
        "-L",
        opts.label,
        "-U",
        opts.uuid,
        "-E",
        `hash_seed=${opts.uuid},root_owner=0:0`,
        "-b",
        "4096",
        ...(opts.sourceDir !== undefined ? ["-d", opts.sourceDir] : []),
        tmp,
      ],
      { where: opts.out, env: { SOURCE_DATE_EPOCH: ts, E2FSPROGS_FAKE_TIME: ts } },
    );
    await rename(tmp, opts.out);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** e2fsck -fn: a read-only full check. */
export async function checkExt4(path: string): Promise<void> {
  await runTool("e2fsck", ["-fn", path], { where: path });
}

/**
 * ROOT's content is the tree without /usr's files (the slot images hold
 * those); /usr stays as the empty mount point. Staged with hard links, so
 * nothing large is copied. Returns the staging dir; remove it after use.
 */
export async function stageRootTree(tree: string, workDir: string): Promise<string> {
  const stage = await mkdtemp(join(workDir, "root-stage-"));
  for (const e of await readdir(tree)) {
    if (e === "usr") continue;
    // Hard links need the same filesystem; otherwise copy.
    await runTool("cp", ["-a", "--link", join(tree, e), join(stage, e)], { where: tree }).catch(
      async () => {
        await rm(join(stage, e), { recursive: true, force: true });
        await runTool("cp", ["-a", join(tree, e), join(stage, e)], { where: tree });
      },
    );
  }
  await runTool("mkdir", ["-m", "0755", join(stage, "usr")]);
  return stage;
}
