/**
 * GPT on image files and block devices: read (tolerating one damaged copy),
 * create, edit, write safely, repair, and move the backup to the end of a grown
 * disk. Slot attributes follow cgpt's layout (see gpt/attributes.ts).
 *
 * Safety rule for every write: a copy that is currently damaged is written
 * first, then fsync, then the other one — so at any moment at least one copy on
 * disk is valid. Everything is validated before the first byte is written.
 *
 * Runs on Node 20 too (bundled into the update agent): node:fs sync calls only.
 */
import { InputError, SlipwayError } from "../errors.ts";
import { crc32 } from "./crc32.ts";
import {
  type CopyResult,
  detectSectorSize,
  encodeEntries,
  encodeHeader,
  isProtectiveMbr,
  protectiveMbr,
  readCopy,
} from "./gpt/codec.ts";
import { bufferDisk, type Disk, openDisk } from "./gpt/device.ts";
import { isGuid, randomGuid } from "./gpt/guid.ts";
import { type GptTable, layoutFor, tableProblems } from "./gpt/model.ts";

export { getSlotAttributes, type SlotAttributes, setSlotAttributes } from "./gpt/attributes.ts";
export { bufferDisk, type Disk } from "./gpt/device.ts";
export {
  addPartition,
  deletePartition,
  type FreeExtent,
  freeExtents,
  type PartitionSpec,
  prioritize,
  resizePartition,
} from "./gpt/edit.ts";
export type { GptPartition, GptTable } from "./gpt/model.ts";
export { PARTITION_TYPES, partitionTypeAlias, resolvePartitionType } from "./gpt/types.ts";

/** What is on a disk: each copy checked on its own. */
export interface GptInspection {
  disk: string;
  sectorSize: number;
  totalSectors: bigint;
  primary: CopyResult;
  backup: CopyResult;
  /** The table to use: the primary's if valid, else the backup's, else a good header joined with the other array. */
  table: GptTable | undefined;
  /** Both copies valid but not the same table (the primary wins). */
  copiesDiffer: boolean;
  /** Human-readable warnings (a damaged copy, copies that differ, backup not at the end). */
  warnings: string[];
}

export interface ReadOptions {
  /** Called with each warning; default: printed to stderr. */
  onWarning?: (message: string) => void;
}

/** Check both copies on an open disk. Never writes. */
export function inspectDisk(disk: Disk): GptInspection {
  const sectorSize = detectSectorSize(disk);
  const totalSectors = disk.sizeBytes / BigInt(sectorSize);
  const result: GptInspection = {
    disk: disk.name,
    sectorSize,
    totalSectors,
    primary: { ok: false, problem: "disk is too small to hold a GPT" },
    backup: { ok: false, problem: "disk is too small to hold a GPT" },
    table: undefined,
    copiesDiffer: false,
    warnings: [],
  };
  if (totalSectors < 6n) return result;
  result.primary = readCopy(disk, "primary", 1n, sectorSize, totalSectors);
  const backupLba = result.primary.ok ? result.primary.copy.alternateLba : totalSectors - 1n;
  result.backup = readCopy(disk, "backup", backupLba, sectorSize, totalSectors);
  const { primary, backup } = result;
  if (primary.ok) {
    result.table = primary.copy.table;
    if (!backup.ok) result.warnings.push(`${backup.problem}; using the primary (run repair)`);
  } else if (backup.ok) {
    result.table = backup.copy.table;
    result.warnings.push(`${primary.problem}; using the backup (run repair)`);
  } else {
    // Neither copy is whole: a good header of one with the array of the other.
    const header = primary.salvaged ? "primary" : "backup";
    result.table = primary.salvaged ?? backup.salvaged;
    if (result.table) {
      result.warnings.push(
        `${primary.problem}; ${backup.problem}; using the ${header} header with the other copy's entry array (run repair)`,
      );
    }
  }
  if (primary.ok && backup.ok) {
    if (
      !sameTable(
        primary.copy.table,
        backup.copy.table,
        primary.copy.entriesCrc,
        backup.copy.entriesCrc,
      )
    ) {
      result.copiesDiffer = true;
      result.warnings.push("primary and backup GPT differ; using the primary (run repair)");
    }
    if (backup.copy.headerLba !== totalSectors - 1n) {
      result.warnings.push(
        `backup GPT is at LBA ${backup.copy.headerLba}, not at the end of the disk (LBA ${totalSectors - 1n}); the disk grew (run relocate-backup)`,
      );
    }
  }
  return result;
}

function sameTable(a: GptTable, b: GptTable, crcA: number, crcB: number): boolean {
  return (
    crcA === crcB &&
    a.diskGuid === b.diskGuid &&
    a.firstUsableLba === b.firstUsableLba &&
    a.lastUsableLba === b.lastUsableLba &&
    a.entryCount === b.entryCount &&
    a.entrySize === b.entrySize
  );
}

function withDisk<T>(path: string, mode: "r" | "rw", fn: (disk: Disk) => T): T {
  const disk = openDisk(path, mode);
  try {
    return fn(disk);
  } finally {
    disk.close();
  }
}

export function inspectGpt(path: string): GptInspection {
  return withDisk(path, "r", inspectDisk);
}

/** The table of a Disk (file, device or buffer); throws InputError if no copy is valid. */
export function readGptFrom(disk: Disk, opts: ReadOptions = {}): GptTable {
  const found = inspectDisk(disk);
  if (!found.table) {
    const why =
      found.primary.ok || found.backup.ok
        ? ""
        : `${problemOf(found.primary)}; ${problemOf(found.backup)}`;
    throw new InputError(`no valid GPT (${why})`, { where: disk.name });
  }
  const warn =
    opts.onWarning ??
    ((m: string) => process.stderr.write(`slipway: warning: ${disk.name}: ${m}\n`));
  for (const w of found.warnings) warn(w);
  return found.table;
}

function problemOf(r: CopyResult): string {
  return r.ok ? "valid" : r.problem;
}

/** Read the GPT of an image file or block device. Throws InputError naming the disk. */
export function readGpt(path: string, opts: ReadOptions = {}): GptTable {
  return withDisk(path, "r", (disk) => readGptFrom(disk, opts));
}

/** Write `table` to `disk`: validate, then both copies in the safe order, then the protective MBR. */
export function writeGptTo(disk: Disk, table: GptTable): void {
  const validSectorSize = table.sectorSize === 512 || table.sectorSize === 4096;
  const totalSectors = disk.sizeBytes / BigInt(validSectorSize ? table.sectorSize : 512);
  const problems = isGuid(table.diskGuid) ? [] : [`disk GUID "${table.diskGuid}" is not a GUID`];
  problems.push(...tableProblems(table, totalSectors));
  if (problems.length) throw new InputError(problems.join("; "), { where: disk.name });

  const current = inspectDisk(disk);
  const sameGeometry = current.sectorSize === table.sectorSize;
  const primaryOk = sameGeometry && current.primary.ok;
  const backupOk = sameGeometry && current.backup.ok;
  // Write a damaged copy first; with both valid the backup goes first, so a crash
  // between the two leaves the primary (which readers prefer) intact and old.
  const order: ("primary" | "backup")[] =
    !primaryOk && backupOk ? ["primary", "backup"] : ["backup", "primary"];

  const l = layoutFor(table, totalSectors);
  const entries = encodeEntries(table);
  const entriesCrc = crc32(entries);
  const ss = BigInt(table.sectorSize);
  for (const which of order) {
    const at =
      which === "primary"
        ? {
            headerLba: l.primaryHeaderLba,
            alternateLba: l.backupHeaderLba,
            entriesLba: l.primaryEntriesLba,
          }
        : {
            headerLba: l.backupHeaderLba,
            alternateLba: l.primaryHeaderLba,
            entriesLba: l.backupEntriesLba,
          };
    disk.write(at.entriesLba * ss, entries);
    disk.write(at.headerLba * ss, encodeHeader(table, at, entriesCrc));
    disk.flush();
  }
  const mbr = disk.read(0n, 512);
  if (!isProtectiveMbr(mbr, totalSectors)) {
    disk.write(0n, protectiveMbr(mbr, totalSectors));
    disk.flush();
  }
}

/** Validate `table` and write it to an existing image file or block device. */
export function writeGpt(path: string, table: GptTable): void {
  withDisk(path, "rw", (disk) => writeGptTo(disk, table));
}

export interface CreateOptions {
  diskGuid?: string;
  /** Entries in each array; default 128 (16 KiB arrays). */
  entryCount?: number;
  /** 512 or 4096; default: the device's logical sector size (512 for image files). */
  sectorSize?: number;
}

/** The empty table `createGpt` would write on a disk of `sizeBytes`. */
export function emptyTable(sizeBytes: bigint, opts: CreateOptions = {}): GptTable {
  const sectorSize = opts.sectorSize ?? 512;
  const base = { entryCount: opts.entryCount ?? 128, entrySize: 128, sectorSize };
  const totalSectors = sizeBytes / BigInt(sectorSize);
  const l = layoutFor(base, totalSectors);
  return {
    ...base,
    diskGuid: (opts.diskGuid ?? randomGuid()).toLowerCase(),
    totalSectors,
    firstUsableLba: l.minFirstUsable,
    lastUsableLba: l.maxLastUsable,
    partitions: [],
  };
}

/** Write a new empty GPT (and protective MBR) to an existing file or device. */
export function createGpt(path: string, opts: CreateOptions = {}): GptTable {
  return withDisk(path, "rw", (disk) => {
    const table = emptyTable(disk.sizeBytes, { sectorSize: disk.logicalSectorSize, ...opts });
    writeGptTo(disk, table);
    return table;
  });
}

/**
 * Rebuild a damaged primary or backup from the other copy (what `cgpt repair`
 * does). Copies that differ are resolved in favour of the primary.
 */
export function repairGpt(path: string): { repaired: ("primary" | "backup")[] } {
  return withDisk(path, "rw", (disk) => {
    const found = inspectDisk(disk);
    if (!found.table) {
      throw new InputError(
        `no valid GPT copy to repair from (${problemOf(found.primary)}; ${problemOf(found.backup)})`,
        { where: disk.name },
      );
    }
    const repaired: ("primary" | "backup")[] = [];
    if (!found.primary.ok) repaired.push("primary");
    if (!found.backup.ok || found.copiesDiffer) repaired.push("backup");
    const mbrOk = isProtectiveMbr(disk.read(0n, 512), found.totalSectors);
    if (repaired.length || !mbrOk) writeGptTo(disk, found.table);
    return { repaired };
  });
}

/**
 * Move the backup header and array to the end of a grown disk and extend the
 * last usable LBA to match (what `sgdisk -e` does).
 */
export function relocateBackup(path: string): { moved: boolean; lastUsableLba: bigint } {
  return withDisk(path, "rw", (disk) => {
    const found = inspectDisk(disk);
    const table = found.table;
    if (!table) {
      throw new InputError(
        `no valid GPT (${problemOf(found.primary)}; ${problemOf(found.backup)})`,
        { where: disk.name },
      );
    }
    const l = layoutFor(table, found.totalSectors);
    const backupAtEnd = found.backup.ok && found.backup.copy.headerLba === l.backupHeaderLba;
    if (backupAtEnd && found.primary.ok && table.lastUsableLba === l.maxLastUsable) {
      return { moved: false, lastUsableLba: table.lastUsableLba };
    }
    if (l.maxLastUsable < table.lastUsableLba) {
      let last = 0n;
      for (const p of table.partitions) if (p.lastLba > last) last = p.lastLba;
      if (last > l.maxLastUsable) {
        throw new SlipwayError(
          `disk is too small for its partitions (partition ends at ${last}, disk allows ${l.maxLastUsable})`,
          { where: disk.name, exitCode: 2 },
        );
      }
    }
    const next = { ...table, totalSectors: found.totalSectors, lastUsableLba: l.maxLastUsable };
    writeGptTo(disk, next);
    return { moved: true, lastUsableLba: next.lastUsableLba };
  });
}

/** Parse a GPT from an in-memory image (tests, fuzzing). */
export function readGptBuffer(name: string, image: Buffer, opts: ReadOptions = {}): GptTable {
  return readGptFrom(bufferDisk(name, image), opts);
}
