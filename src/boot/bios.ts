/**
 * BIOS boot without grub-bios-setup (not packaged in Debian): patch GRUB's
 * boot.img into the MBR and give core.img the blocklist that tells its first
 * sector where the rest lives. Offsets are GRUB's i386-pc boot.S/diskboot.S
 * constants (DESIGN §6).
 */
import { InputError } from "../errors.ts";

/** boot.img code ends here; the disk signature and partition table follow. */
export const MBR_CODE_END = 0x1b8;
/** u64: LBA of core.img's first sector (GRUB_BOOT_MACHINE_KERNEL_SECTOR). */
export const MBR_KERNEL_SECTOR = 0x5c;
/** u16: the drive-number check; two NOPs make GRUB trust the BIOS drive. */
export const MBR_DRIVE_CHECK = 0x66;
/** The blocklist sits in the last 12 bytes of core.img's first sector. */
export const CORE_BLOCKLIST = 0x200 - 12;
/** Real-mode segment core.img's remaining sectors load to. */
export const CORE_LOAD_SEGMENT = 0x820;

/**
 * Return a new MBR sector: boot.img's code, then the existing sector's
 * disk signature, partition table and 0x55AA.
 */
export function patchMbr(mbr: Uint8Array, bootImg: Uint8Array, coreLba: bigint): Buffer {
  if (mbr.length !== 512) throw new InputError(`MBR must be 512 bytes, got ${mbr.length}`);
  if (bootImg.length !== 512)
    throw new InputError(`boot.img must be 512 bytes, got ${bootImg.length}`);
  const out = Buffer.from(mbr);
  Buffer.from(bootImg).copy(out, 0, 0, MBR_CODE_END);
  out.writeBigUInt64LE(coreLba, MBR_KERNEL_SECTOR);
  out.writeUInt16LE(0x9090, MBR_DRIVE_CHECK);
  out[510] = 0x55;
  out[511] = 0xaa;
  return out;
}

/**
 * Return core.img, padded to whole sectors, with its first sector's blocklist
 * pointing at the rest of itself, placed contiguously from `coreLba`.
 */
export function patchCoreImg(core: Uint8Array, coreLba: bigint): Buffer {
  if (core.length <= 512) throw new InputError(`core.img is only ${core.length} bytes`);
  // grub-mkimage does not pad to whole sectors; the loader reads whole sectors.
  const sectors = Math.ceil(core.length / 512);
  if (sectors - 1 > 0xffff) throw new InputError(`core.img is too large (${sectors} sectors)`);
  const out = Buffer.alloc(sectors * 512);
  Buffer.from(core).copy(out);
  out.writeBigUInt64LE(coreLba + 1n, CORE_BLOCKLIST);
  out.writeUInt16LE(sectors - 1, CORE_BLOCKLIST + 8);
  out.writeUInt16LE(CORE_LOAD_SEGMENT, CORE_BLOCKLIST + 10);
  return out;
}
