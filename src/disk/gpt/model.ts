/** The in-memory GPT model shared by the codec, the editors and the public API. */
import { isGuid } from "./guid.ts";

export interface GptPartition {
  /** 1-based entry number (entry index + 1). */
  number: number;
  label: string;
  typeGuid: string;
  uniqueGuid: string;
  firstLba: bigint;
  /** Inclusive. */
  lastLba: bigint;
  attributes: bigint;
}

export interface GptTable {
  diskGuid: string;
  sectorSize: number;
  totalSectors: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
  entryCount: number;
  entrySize: number;
  /** Non-empty entries, sorted by number. */
  partitions: GptPartition[];
}

/** Longest label an entry holds, in UTF-16 code units. */
export const LABEL_MAX_UNITS = 36;

/** Sectors one entry array occupies. */
export function entryArraySectors(t: Pick<GptTable, "entryCount" | "entrySize" | "sectorSize">) {
  return BigInt(Math.ceil((t.entryCount * t.entrySize) / t.sectorSize));
}

/** Where each copy lives on a disk of `totalSectors` (backup always at the very end). */
export function layoutFor(
  t: Pick<GptTable, "entryCount" | "entrySize" | "sectorSize">,
  totalSectors: bigint,
) {
  const arraySectors = entryArraySectors(t);
  const backupHeaderLba = totalSectors - 1n;
  return {
    arraySectors,
    primaryHeaderLba: 1n,
    primaryEntriesLba: 2n,
    backupHeaderLba,
    backupEntriesLba: backupHeaderLba - arraySectors,
    /** The widest usable range this disk allows. */
    minFirstUsable: 2n + arraySectors,
    maxLastUsable: backupHeaderLba - arraySectors - 1n,
  };
}

/** Every structural problem of `t` on a disk of `totalSectors`, as readable sentences. */
export function tableProblems(t: GptTable, totalSectors: bigint): string[] {
  const problems: string[] = [];
  if (t.sectorSize !== 512 && t.sectorSize !== 4096) {
    problems.push(`sector size ${t.sectorSize} is not supported (512 or 4096)`);
    return problems;
  }
  if (!Number.isInteger(t.entryCount) || t.entryCount < 1 || t.entryCount > 65536) {
    problems.push(`entry count ${t.entryCount} is out of range (1–65536)`);
  }
  if (!Number.isInteger(t.entrySize) || t.entrySize < 128 || t.entrySize % 128 !== 0) {
    problems.push(`entry size ${t.entrySize} is not a multiple of 128`);
  }
  if (problems.length) return problems;
  const l = layoutFor(t, totalSectors);
  if (l.maxLastUsable < l.minFirstUsable) {
    const needs = 2n * l.minFirstUsable;
    problems.push(
      `disk of ${totalSectors} sectors is too small for a GPT with ${t.entryCount} entries (needs at least ${needs})`,
    );
    return problems;
  }
  if (t.firstUsableLba < l.minFirstUsable) {
    problems.push(`first usable LBA ${t.firstUsableLba} overlaps the primary entry array`);
  }
  if (t.lastUsableLba > l.maxLastUsable) {
    problems.push(
      `last usable LBA ${t.lastUsableLba} is beyond the disk (at most ${l.maxLastUsable} on ${totalSectors} sectors)`,
    );
  }
  if (t.firstUsableLba > t.lastUsableLba) {
    problems.push(`first usable LBA ${t.firstUsableLba} is after last usable ${t.lastUsableLba}`);
  }
  problems.push(...partitionProblems(t));
  return problems;
}

/** Problems with the partitions alone: numbering, ranges, overlaps, labels. */
export function partitionProblems(t: GptTable): string[] {
  const problems: string[] = [];
  const seen = new Set<number>();
  for (const p of t.partitions) {
    const name = `partition ${p.number}`;
    if (!Number.isInteger(p.number) || p.number < 1 || p.number > t.entryCount) {
      problems.push(`${name}: number is out of range (1–${t.entryCount})`);
    }
    if (seen.has(p.number)) problems.push(`${name}: appears twice`);
    seen.add(p.number);
    if (p.firstLba > p.lastLba) {
      problems.push(`${name}: first LBA ${p.firstLba} is after last LBA ${p.lastLba}`);
    }
    if (p.firstLba < t.firstUsableLba || p.lastLba > t.lastUsableLba) {
      problems.push(
        `${name}: sectors ${p.firstLba}–${p.lastLba} are outside the usable range ${t.firstUsableLba}–${t.lastUsableLba}`,
      );
    }
    if (!isGuid(p.typeGuid)) problems.push(`${name}: type "${p.typeGuid}" is not a GUID`);
    else if (/^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(p.typeGuid)) {
      problems.push(`${name}: type GUID is zero`);
    }
    if (!isGuid(p.uniqueGuid))
      problems.push(`${name}: unique GUID "${p.uniqueGuid}" is not a GUID`);
    const units = p.label.length; // JS strings are UTF-16 code units already
    if (units > LABEL_MAX_UNITS) {
      problems.push(`${name}: label is ${units} UTF-16 units long (at most ${LABEL_MAX_UNITS})`);
    }
    if (p.label.includes("\0")) problems.push(`${name}: label contains a NUL character`);
    if (p.attributes < 0n || p.attributes >= 1n << 64n) {
      problems.push(`${name}: attributes do not fit 64 bits`);
    }
  }
  const sorted = [...t.partitions].sort((a, b) => (a.firstLba < b.firstLba ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.firstLba <= prev.lastLba) {
      problems.push(
        `partitions ${prev.number} and ${cur.number} overlap (sectors ${cur.firstLba}–${smaller(prev.lastLba, cur.lastLba)})`,
      );
    }
  }
  return problems;
}

function smaller(a: bigint, b: bigint): bigint {
  if (a < b) return a;
  return b;
}
