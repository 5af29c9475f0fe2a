/**
 * Put a disk image together from partition images: a sparse file of the
 * planned size, the GPT (via src/disk/gpt.ts), each image written at its
 * partition's offset (no loop devices), GRUB's BIOS stage in the MBR and
 * BIOS-BOOT, and the initial slot state mirrored into the GPT attributes.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { open, rename, rm, truncate, writeFile } from "node:fs/promises";
import { patchCoreImg, patchMbr } from "../boot/bios.ts";
import { mirrorBootStateToTable } from "../boot/slot-mirror.ts";
import { type BootState, initialBootState } from "../boot/slots.ts";
import { InputError } from "../errors.ts";
import { addPartition, createGpt, writeGpt } from "./gpt.ts";
import type { DiskPlan, PartitionRole } from "./layout.ts";

export interface AssembleImages {
  /** FAT image of the ESP (buildEsp). */
  esp: string;
  /** GRUB i386-pc core.img and boot.img (buildGrubImages); omit both for UEFI-only disks. */
  biosCore?: Buffer;
  biosBoot?: Buffer;
  usrA: string;
  /** Usually absent: USR-B starts empty. */
  usrB?: string;
  oem: string;
  oemConfig?: string;
  root: string;
}

export interface AssembleOptions {
  out: string;
  plan: DiskPlan;
  images: AssembleImages;
  bootState?: BootState;
}

const ROLE_IMAGE: Partial<Record<PartitionRole, keyof AssembleImages>> = {
  esp: "esp",
  usrA: "usrA",
  usrB: "usrB",
  oem: "oem",
  oemConfig: "oemConfig",
  root: "root",
};

export async function assembleDisk(opts: AssembleOptions): Promise<void> {
  const { plan } = opts;
  const tmp = `${opts.out}.tmp`;
  await rm(tmp, { force: true });
  try {
    await writeFile(tmp, "");
    await truncate(tmp, Number(plan.size));
    let table = createGpt(tmp, { diskGuid: plan.diskGuid });
    for (const p of plan.partitions) {
      table = addPartition(table, {
        number: p.number,
        label: p.label,
        type: p.typeGuid,
        uniqueGuid: p.uniqueGuid,
        startLba: p.startLba,
        sizeLba: p.sizeLba,
      });
    }
    table = mirrorBootStateToTable(table, opts.bootState ?? initialBootState());
    writeGpt(tmp, table);

    for (const p of plan.partitions) {
      const key = ROLE_IMAGE[p.role];
      const src = key ? opts.images[key] : undefined;
      if (typeof src === "string")
        await copyInto(src, tmp, p.offset, p.size, `${p.label} (${src})`, { sparse: true });
    }
    if (opts.images.biosCore || opts.images.biosBoot) {
      if (!opts.images.biosCore || !opts.images.biosBoot) {
        throw new InputError("BIOS boot needs both core.img and boot.img");
      }
      const biosPart = plan.partitions.find((p) => p.role === "biosBoot");
      if (!biosPart) throw new InputError("the disk plan has no BIOS-BOOT partition");
      const core = patchCoreImg(opts.images.biosCore, biosPart.startLba);
      if (BigInt(core.length) > biosPart.size) {
        throw new InputError(
          `core.img (${core.length} bytes) does not fit BIOS-BOOT (${biosPart.size} bytes)`,
        );
      }
      const fh = await open(tmp, "r+");
      try {
        await fh.write(core, 0, core.length, Number(biosPart.offset));
        const mbr = Buffer.alloc(512);
        await fh.read(mbr, 0, 512, 0);
        await fh.write(patchMbr(mbr, opts.images.biosBoot, biosPart.startLba), 0, 512, 0);
      } finally {
        await fh.close();
      }
    }
    await rename(tmp, opts.out);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Copy an image into the disk at `offset`. `sparse` skips all-zero blocks
 * (right for a fresh sparse file, wrong over old data).
 */
export async function copyInto(
  src: string,
  disk: string,
  offset: bigint,
  room: bigint,
  what: string,
  opts: { sparse?: boolean } = {},
): Promise<void> {
  const inFd = openSync(src, "r");
  const outFd = openSync(disk, "r+");
  try {
    const size = BigInt(fstatSync(inFd).size);
    if (size > room)
      throw new InputError(`image is ${size} bytes, partition has ${room}`, { where: what });
    const block = Buffer.alloc(1 << 20);
    let pos = 0;
    for (;;) {
      const n = readSync(inFd, block, 0, block.length, pos);
      if (n === 0) break;
      const chunk = block.subarray(0, n);
      if (!opts.sparse || !isZero(chunk)) writeSync(outFd, chunk, 0, n, Number(offset) + pos);
      pos += n;
    }
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
}

function isZero(b: Buffer): boolean {
  let i = 0;
  for (; i + 8 <= b.length; i += 8) {
    if (b.readBigUInt64LE(i) !== 0n) return false;
  }
  for (; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
