/**
 * The EFI system partition as a FAT32 image, built with mkfs.fat + mtools:
 * the build host may have no vfat driver, so it is never mounted.
 * Contents: BOOTX64.EFI, grub.cfg + grubenv, and per slot the kernel, the
 * initrd and slot.cfg.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { makeGuid } from "../disk/layout.ts";
import { InputError, SlipwayError } from "../errors.ts";
import { ESP_GRUB_DIR, espSlotDir } from "./grubcfg.ts";
import { encodeGrubEnv } from "./grubenv.ts";
import { type BootState, bootStateToEnv, type SlotName } from "./slots.ts";
import { runTool } from "./tool.ts";

/** ESP volume id derived from the build's seed (GRUB finds the ESP by it). */
export function espVolumeIdFor(seed: string): number {
  return Number.parseInt(makeGuid(seed, "esp-volume-id").slice(0, 8), 16);
}

export interface SlotBootFiles {
  /** Paths on the build host. */
  kernel: string;
  initrd: string;
  /** Content of slot.cfg (see slotConfig in grubcfg.ts). */
  slotCfg: string;
}

export interface EspOptions {
  /** Output image path (replaced atomically). */
  out: string;
  sizeMiB: number;
  /** 32-bit FAT volume id; GRUB finds the ESP by it. */
  volumeId: number;
  efiImage: Buffer;
  grubCfg: string;
  bootState: BootState;
  slots: Partial<Record<SlotName, SlotBootFiles>>;
  /** Further files by ESP path and content, e.g. the first-boot stamp. */
  extraFiles?: [string, string][];
}

/** mtools' geometry sanity check rejects FAT images inside whole-disk files. */
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: "1" };

/** Files are stamped with this time so the same inputs give the same image. */
const FIXED_MTIME = new Date("2000-01-01T00:00:00Z");

export async function buildEsp(opts: EspOptions): Promise<void> {
  if (opts.sizeMiB < 33)
    throw new InputError("the ESP needs at least 33 MiB for FAT32", { where: opts.out });
  const work = await mkdtemp(join(tmpdir(), "slipway-esp-"));
  const tmp = `${opts.out}.tmp`;
  try {
    await rm(tmp, { force: true });
    await runTool(
      "mkfs.fat",
      [
        "-C",
        "-F",
        "32",
        "-n",
        "EFI-SYSTEM",
        "-i",
        (opts.volumeId >>> 0).toString(16).padStart(8, "0"),
        tmp,
        String(opts.sizeMiB * 1024),
      ],
      { where: opts.out },
    );
    const files: [string, string | Buffer][] = [
      ["/EFI/BOOT/BOOTX64.EFI", opts.efiImage],
      [`${ESP_GRUB_DIR}/grub.cfg`, opts.grubCfg],
      [`${ESP_GRUB_DIR}/grubenv`, encodeGrubEnv(bootStateToEnv(opts.bootState))],
    ];
    files.push(...(opts.extraFiles ?? []));
    const copies: [string, string][] = [];
    for (const [slot, f] of Object.entries(opts.slots) as [SlotName, SlotBootFiles][]) {
      const d = espSlotDir(slot);
      files.push([`${d}/slot.cfg`, f.slotCfg]);
      copies.push([f.kernel, `${d}/vmlinuz`], [f.initrd, `${d}/initrd`]);
    }
    await mtoolsPut(tmp, files, copies, work);
    await runTool("mv", ["-f", tmp, opts.out]);
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(tmp, { force: true });
  }
}

/**
 * Write files into a FAT image (or into a partition of a disk image with
 * `image@@offset`): `files` are contents, `copies` are host paths.
 */
export async function mtoolsPut(
  image: string,
  files: [string, string | Buffer][],
  copies: [string, string][] = [],
  workDir?: string,
): Promise<void> {
  const work = workDir ?? (await mkdtemp(join(tmpdir(), "slipway-mtools-")));
  try {
    // Stage everything in the work dir with a fixed mtime (mcopy -m keeps it),
    // never touching the caller's files.
    const all: [string, string][] = [];
    let i = 0;
    for (const [src, dest] of copies) {
      const p = join(work, `c${i++}`);
      await copyFile(src, p);
      all.push([p, dest]);
    }
    for (const [dest, content] of files) {
      const p = join(work, `f${i++}`);
      await writeFile(p, content);
      all.push([p, dest]);
    }
    for (const [p] of all) await utimes(p, FIXED_MTIME, FIXED_MTIME);
    const dirs = new Set<string>();
    for (const [, dest] of all) {
      for (let d = dirname(dest); d !== "/"; d = dirname(d)) dirs.add(d);
    }
    for (const d of [...dirs].sort()) {
      const exists = await runTool("mdir", ["-b", "-i", image, `::${d}`], { env: MTOOLS_ENV }).then(
        () => true,
        () => false,
      );
      if (!exists) await runTool("mmd", ["-i", image, `::${d}`], { where: image, env: MTOOLS_ENV });
    }
    for (const [src, dest] of all) {
      await runTool("mcopy", ["-o", "-m", "-i", image, src, `::${dest}`], {
        where: image,
        env: MTOOLS_ENV,
      });
    }
  } finally {
    if (!workDir) await rm(work, { recursive: true, force: true });
  }
}

/** Read a file out of a FAT image (or `disk@@offset`). */
export async function mtoolsGet(image: string, path: string): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    execFile(
      "mtype",
      ["-i", image, `::${path}`],
      { encoding: "buffer", maxBuffer: 1 << 30 },
      (err, out, stderr) => {
        if (err)
          reject(
            new InputError(`cannot read ${path}: ${stderr.toString().trim()}`, { where: image }),
          );
        else resolve(out);
      },
    );
  });
}

/** Free space of a FAT file system and its allocation unit. */
export interface FatSpace {
  freeBytes: number;
  clusterBytes: number;
}

/** Read a FAT image's (or `disk@@offset`'s) free space with mtools: no mount needed. */
export async function fatSpace(image: string): Promise<FatSpace> {
  const info = await runTool("minfo", ["-i", image, "::"], { where: image, env: MTOOLS_ENV });
  // mdir's summary counts the free clusters (thousands separated by spaces).
  const listing = await runTool("mdir", ["-i", image, "::/"], { where: image, env: MTOOLS_ENV });
  const sector = /sector size: (\d+) bytes/.exec(info)?.[1];
  const cluster = /cluster size: (\d+) sectors/.exec(info)?.[1];
  const free = /([\d ]+) bytes free/.exec(listing)?.[1];
  if (!sector || !cluster || free === undefined)
    throw new SlipwayError("cannot tell the free space: minfo/mdir output not understood", {
      where: image,
    });
  return {
    freeBytes: Number(free.replace(/ /g, "")),
    clusterBytes: Number(sector) * Number(cluster),
  };
}

/**
 * The space new files take on a file system: whole clusters, plus one per
 * file for a directory that has to grow.
 */
function spaceNeeded(sizes: number[], clusterBytes: number): number {
  return sizes.reduce((sum, n) => sum + (Math.ceil(n / clusterBytes) + 1) * clusterBytes, 0);
}

const MiB = 1024 * 1024;

/**
 * Refuse before writing anything when files of `sizes` bytes do not fit in
 * `space`, with a message that says what, how much and where.
 */
export function assertEspFits(what: string, sizes: number[], space: FatSpace, where: string): void {
  const needBytes = spaceNeeded(sizes, space.clusterBytes);
  if (needBytes <= space.freeBytes) return;
  throw new SlipwayError(
    `ESP full: ${what} need ${(needBytes / MiB).toFixed(1)} MiB, ` +
      `${(space.freeBytes / MiB).toFixed(1)} MiB free on ${where}`,
  );
}
