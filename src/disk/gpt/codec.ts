/**
 * Reading and encoding the on-disk GPT structures (UEFI spec §5.3): the
 * protective MBR, the two headers and their entry arrays. Reading never
 * writes; each copy is checked on its own so one good copy is enough.
 */
import { crc32 } from "../crc32.ts";
import type { Disk } from "./device.ts";
import { decodeGuid, encodeGuid } from "./guid.ts";
import {
  entryArraySectors,
  type GptPartition,
  type GptTable,
  LABEL_MAX_UNITS,
  partitionProblems,
} from "./model.ts";

const SIGNATURE = Buffer.from("EFI PART", "latin1");
const REVISION_1_0 = 0x00010000;
const HEADER_SIZE = 92;
/** Refuse entry arrays bigger than this: no real table comes close, and a damaged count must not make us read gigabytes. */
const MAX_ARRAY_BYTES = 4 * 1024 * 1024;

/** One copy (primary or backup) as found on disk. */
export interface GptCopy {
  headerLba: bigint;
  alternateLba: bigint;
  entriesLba: bigint;
  entriesCrc: number;
  table: GptTable;
}

export type CopyResult =
  | { ok: true; copy: GptCopy }
  | {
      ok: false;
      problem: string;
      /** A valid header whose own array is bad but whose CRC matches the other copy's array. */
      salvaged?: GptTable;
    };

/** Sector size of the GPT on `disk`: where a header signature is found (the device's own if none). */
export function detectSectorSize(disk: Disk): number {
  for (const ss of [512, 4096]) {
    if (disk.read(BigInt(ss), 8).equals(SIGNATURE)) return ss;
  }
  for (const ss of [512, 4096]) {
    const last = disk.sizeBytes / BigInt(ss) - 1n;
    if (last > 0n && disk.read(last * BigInt(ss), 8).equals(SIGNATURE)) return ss;
  }
  return disk.logicalSectorSize;
}

/** Read and check the copy whose header is at `headerLba`. */
export function readCopy(
  disk: Disk,
  which: "primary" | "backup",
  headerLba: bigint,
  sectorSize: number,
  totalSectors: bigint,
): CopyResult {
  const fail = (problem: string): CopyResult => ({
    ok: false,
    problem: `${which} GPT header at LBA ${headerLba}: ${problem}`,
  });
  if (headerLba < 1n || headerLba >= totalSectors) return fail("is outside the disk");
  const sector = disk.read(headerLba * BigInt(sectorSize), sectorSize);
  if (!sector.subarray(0, 8).equals(SIGNATURE)) return fail("no GPT signature");
  const revision = sector.readUInt32LE(8);
  if (revision >>> 16 !== 1) return fail(`unsupported revision 0x${revision.toString(16)}`);
  const headerSize = sector.readUInt32LE(12);
  if (headerSize < HEADER_SIZE || headerSize > sectorSize) {
    return fail(`header size ${headerSize} is out of range (${HEADER_SIZE}–${sectorSize})`);
  }
  const header = Buffer.from(sector.subarray(0, headerSize));
  const storedCrc = header.readUInt32LE(16);
  header.writeUInt32LE(0, 16);
  if (crc32(header) !== storedCrc) return fail("header CRC32 mismatch");
  const myLba = sector.readBigUInt64LE(24);
  const alternateLba = sector.readBigUInt64LE(32);
  const firstUsableLba = sector.readBigUInt64LE(40);
  const lastUsableLba = sector.readBigUInt64LE(48);
  const diskGuid = decodeGuid(sector, 56);
  const entriesLba = sector.readBigUInt64LE(72);
  const entryCount = sector.readUInt32LE(80);
  const entrySize = sector.readUInt32LE(84);
  const entriesCrc = sector.readUInt32LE(88);

  if (myLba !== headerLba) return fail(`records its own LBA as ${myLba}`);
  if (alternateLba >= totalSectors)
    return fail(`alternate LBA ${alternateLba} is outside the disk`);
  if (entrySize < 128 || entrySize % 128 !== 0 || entrySize > 4096) {
    return fail(`entry size ${entrySize} is not a supported multiple of 128`);
  }
  if (entryCount < 1 || entryCount * entrySize > MAX_ARRAY_BYTES) {
    return fail(`entry count ${entryCount} is out of range`);
  }
  const arraySectors = entryArraySectors({ entryCount, entrySize, sectorSize });
  const arrayEnd = entriesLba + arraySectors - 1n;
  if (firstUsableLba > lastUsableLba + 1n) {
    return fail(`first usable LBA ${firstUsableLba} is after last usable ${lastUsableLba}`);
  }
  if (lastUsableLba >= totalSectors)
    return fail(`last usable LBA ${lastUsableLba} is outside the disk`);
  if (which === "primary") {
    if (entriesLba < 2n || arrayEnd >= firstUsableLba) {
      return fail(
        `entry array at LBA ${entriesLba}–${arrayEnd} overlaps the header or usable space`,
      );
    }
    if (alternateLba <= lastUsableLba)
      return fail(`alternate LBA ${alternateLba} is inside usable space`);
  } else {
    if (entriesLba <= lastUsableLba || arrayEnd >= headerLba) {
      return fail(
        `entry array at LBA ${entriesLba}–${arrayEnd} overlaps the header or usable space`,
      );
    }
    if (alternateLba >= firstUsableLba)
      return fail(`alternate LBA ${alternateLba} is inside usable space`);
  }

  let array = disk.read(entriesLba * BigInt(sectorSize), entryCount * entrySize);
  let salvaging = false;
  if (crc32(array) !== entriesCrc) {
    // The header may still be good and the other copy's array intact (cgpt
    // repairs that mix too): look for an array with this CRC where the other
    // copy keeps it.
    const otherLba = which === "primary" ? alternateLba - arraySectors : 2n;
    const other =
      otherLba > 1n && otherLba !== entriesLba
        ? disk.read(otherLba * BigInt(sectorSize), entryCount * entrySize)
        : undefined;
    if (!other || crc32(other) !== entriesCrc) return fail("entry array CRC32 mismatch");
    array = other;
    salvaging = true;
  }
  const table: GptTable = {
    diskGuid,
    sectorSize,
    totalSectors,
    firstUsableLba,
    lastUsableLba,
    entryCount,
    entrySize,
    partitions: decodeEntries(array, entryCount, entrySize),
  };
  const problems = partitionProblems(table);
  if (problems.length) return fail(problems.join("; "));
  if (salvaging) {
    return {
      ...fail("entry array CRC32 mismatch (the other copy's array matches)"),
      salvaged: table,
    } as CopyResult;
  }
  return { ok: true, copy: { headerLba, alternateLba, entriesLba, entriesCrc, table } };
}

function decodeEntries(array: Buffer, entryCount: number, entrySize: number): GptPartition[] {
  const partitions: GptPartition[] = [];
  for (let i = 0; i < entryCount; i++) {
    const o = i * entrySize;
    if (isZero(array, o, 16)) continue; // unused entry
    const typeGuid = decodeGuid(array, o);
    const nameBytes = array.subarray(o + 56, o + 56 + LABEL_MAX_UNITS * 2);
    let units = 0;
    while (units < LABEL_MAX_UNITS && nameBytes.readUInt16LE(units * 2) !== 0) units++;
    partitions.push({
      number: i + 1,
      label: nameBytes.toString("utf16le", 0, units * 2),
      typeGuid,
      uniqueGuid: decodeGuid(array, o + 16),
      firstLba: array.readBigUInt64LE(o + 32),
      lastLba: array.readBigUInt64LE(o + 40),
      attributes: array.readBigUInt64LE(o + 48),
    });
  }
  return partitions;
}

function isZero(buf: Buffer, offset: number, length: number): boolean {
  for (let i = offset; i < offset + length; i++) if (buf[i] !== 0) return false;
  return true;
}

export function encodeEntries(t: GptTable): Buffer {
  const array = Buffer.alloc(t.entryCount * t.entrySize);
  for (const p of t.partitions) {
    const o = (p.number - 1) * t.entrySize;
    encodeGuid(p.typeGuid, array, o);
    encodeGuid(p.uniqueGuid, array, o + 16);
    array.writeBigUInt64LE(p.firstLba, o + 32);
    array.writeBigUInt64LE(p.lastLba, o + 40);
    array.writeBigUInt64LE(p.attributes, o + 48);
    array.write(p.label, o + 56, LABEL_MAX_UNITS * 2, "utf16le");
  }
  return array;
}

/** A full header sector (header then zeros) for one copy. */
export function encodeHeader(
  t: GptTable,
  at: { headerLba: bigint; alternateLba: bigint; entriesLba: bigint },
  entriesCrc: number,
): Buffer {
  const sector = Buffer.alloc(t.sectorSize);
  SIGNATURE.copy(sector, 0);
  sector.writeUInt32LE(REVISION_1_0, 8);
  sector.writeUInt32LE(HEADER_SIZE, 12);
  sector.writeBigUInt64LE(at.headerLba, 24);
  sector.writeBigUInt64LE(at.alternateLba, 32);
  sector.writeBigUInt64LE(t.firstUsableLba, 40);
  sector.writeBigUInt64LE(t.lastUsableLba, 48);
  encodeGuid(t.diskGuid, sector, 56);
  sector.writeBigUInt64LE(at.entriesLba, 72);
  sector.writeUInt32LE(t.entryCount, 80);
  sector.writeUInt32LE(t.entrySize, 84);
  sector.writeUInt32LE(entriesCrc, 88);
  sector.writeUInt32LE(crc32(sector.subarray(0, HEADER_SIZE)), 16);
  return sector;
}

/**
 * LBA 0 with a protective MBR: one 0xEE partition covering the disk. The boot
 * code and disk signature (bytes 0–445) of `current` are kept, since the BIOS
 * boot path puts GRUB's boot.img there.
 */
export function protectiveMbr(current: Buffer, totalSectors: bigint): Buffer {
  const mbr = Buffer.from(current.subarray(0, 512));
  mbr.fill(0, 446, 510);
  const size = totalSectors - 1n > 0xffffffffn ? 0xffffffff : Number(totalSectors - 1n);
  mbr[446] = 0x00; // not bootable
  mbr.set([0x00, 0x02, 0x00], 447); // CHS of LBA 1
  mbr[450] = 0xee;
  mbr.set([0xff, 0xff, 0xff], 451); // CHS end: beyond CHS range
  mbr.writeUInt32LE(1, 454);
  mbr.writeUInt32LE(size, 458);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  return mbr;
}

/** Whether `mbr` already is the protective MBR `protectiveMbr` would write. */
export function isProtectiveMbr(mbr: Buffer, totalSectors: bigint): boolean {
  return protectiveMbr(mbr, totalSectors).equals(mbr.subarray(0, 512));
}
