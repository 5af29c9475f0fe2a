/**
 * Pure edits of a GptTable: add or modify, delete, resize, prioritize. Each
 * returns a new table and throws InputError (without a disk name; callers add
 * it) when the result would be invalid.
 */
import { InputError } from "../../errors.ts";
import { getSlotAttributes, setSlotAttributes, slotAttributeProblem } from "./attributes.ts";
import { isGuid, randomGuid } from "./guid.ts";
import { type GptPartition, type GptTable, partitionProblems } from "./model.ts";
import { PARTITION_TYPES, resolvePartitionType } from "./types.ts";

export interface PartitionSpec {
  number: number;
  label?: string;
  /** Alias (see PARTITION_TYPES) or GUID. */
  type?: string;
  uniqueGuid?: string;
  startLba?: bigint;
  sizeLba?: bigint;
  /** Alignment of a start Slipway picks; default 1 MiB in sectors. */
  alignLba?: bigint;
  priority?: number;
  tries?: number;
  successful?: number;
}

export interface FreeExtent {
  firstLba: bigint;
  lastLba: bigint;
}

function checkNumber(table: GptTable, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > table.entryCount) {
    throw new InputError(`partition number ${n} is out of range (1–${table.entryCount})`);
  }
}

function find(table: GptTable, n: number): GptPartition {
  checkNumber(table, n);
  const p = table.partitions.find((q) => q.number === n);
  if (!p) throw new InputError(`partition ${n} does not exist`);
  return p;
}

function withPartitions(table: GptTable, partitions: GptPartition[]): GptTable {
  const next = { ...table, partitions: [...partitions].sort((a, b) => a.number - b.number) };
  const problems = partitionProblems(next);
  if (problems.length) throw new InputError(problems.join("; "));
  return next;
}

/** Unallocated extents of the usable range, in disk order, ignoring partition `except`. */
export function freeExtents(table: GptTable, except?: number): FreeExtent[] {
  const used = table.partitions
    .filter((p) => p.number !== except)
    .sort((a, b) => (a.firstLba < b.firstLba ? -1 : 1));
  const free: FreeExtent[] = [];
  let next = table.firstUsableLba;
  for (const p of used) {
    if (p.firstLba > next) free.push({ firstLba: next, lastLba: p.firstLba - 1n });
    if (p.lastLba + 1n > next) next = p.lastLba + 1n;
  }
  if (next <= table.lastUsableLba) free.push({ firstLba: next, lastLba: table.lastUsableLba });
  return free;
}

function defaultAlign(table: GptTable): bigint {
  return BigInt((1024 * 1024) / table.sectorSize);
}

/** End a rest-of-extent partition on an alignment boundary when that leaves it non-empty. */
function alignedEnd(first: bigint, last: bigint, align: bigint): bigint {
  const end = ((last + 1n) / align) * align - 1n;
  return end >= first ? end : last;
}

/** Place a partition: explicit start/size, or the first aligned free space that fits. */
function place(
  table: GptTable,
  spec: PartitionSpec,
  existing: GptPartition | undefined,
): { firstLba: bigint; lastLba: bigint } {
  const align = spec.alignLba ?? defaultAlign(table);
  if (align < 1n) throw new InputError(`alignment ${align} must be at least 1 sector`);
  if (spec.sizeLba !== undefined && spec.sizeLba < 1n) {
    throw new InputError(`size ${spec.sizeLba} sectors must be at least 1`);
  }
  const free = freeExtents(table, spec.number);
  // An existing partition keeps whichever of start and size is not given (as cgpt add -b/-s).
  const start =
    spec.startLba ?? (existing && spec.sizeLba !== undefined ? existing.firstLba : undefined);
  const size = spec.sizeLba ?? (existing ? existing.lastLba - existing.firstLba + 1n : undefined);
  if (start !== undefined) {
    if (start < 0n) throw new InputError(`start ${start} is negative`);
    if (size !== undefined) return { firstLba: start, lastLba: start + size - 1n };
    const extent = free.find((e) => e.firstLba <= start && start <= e.lastLba);
    if (!extent) throw new InputError(`start sector ${start} is not in free space`);
    return { firstLba: start, lastLba: extent.lastLba };
  }
  for (const e of free) {
    const first = ((e.firstLba + align - 1n) / align) * align;
    if (first > e.lastLba) continue;
    if (spec.sizeLba === undefined)
      return { firstLba: first, lastLba: alignedEnd(first, e.lastLba, align) };
    if (e.lastLba - first + 1n >= spec.sizeLba) {
      return { firstLba: first, lastLba: first + spec.sizeLba - 1n };
    }
  }
  const want = spec.sizeLba === undefined ? "" : ` of ${spec.sizeLba} sectors`;
  throw new InputError(`no aligned free space${want} for partition ${spec.number}`);
}

/** Create partition `spec.number`, or modify the fields `spec` gives of an existing one. */
export function addPartition(table: GptTable, spec: PartitionSpec): GptTable {
  checkNumber(table, spec.number);
  const existing = table.partitions.find((p) => p.number === spec.number);
  const problem = slotAttributeProblem(spec);
  if (problem) throw new InputError(problem);
  if (spec.uniqueGuid !== undefined && !isGuid(spec.uniqueGuid)) {
    throw new InputError(`unique GUID "${spec.uniqueGuid}" is not a GUID`);
  }
  const typeGuid =
    spec.type !== undefined
      ? resolvePartitionType(spec.type)
      : (existing?.typeGuid ?? PARTITION_TYPES["linux-data"]!);
  const moving = spec.startLba !== undefined || spec.sizeLba !== undefined || !existing;
  const range = moving ? place(table, spec, existing) : existing;
  const partition: GptPartition = {
    number: spec.number,
    label: spec.label ?? existing?.label ?? "",
    typeGuid,
    uniqueGuid: spec.uniqueGuid?.toLowerCase() ?? existing?.uniqueGuid ?? randomGuid(),
    firstLba: range.firstLba,
    lastLba: range.lastLba,
    attributes: setSlotAttributes(existing?.attributes ?? 0n, spec),
  };
  return withPartitions(table, [
    ...table.partitions.filter((p) => p.number !== spec.number),
    partition,
  ]);
}

export function deletePartition(table: GptTable, number: number): GptTable {
  find(table, number);
  return withPartitions(
    table,
    table.partitions.filter((p) => p.number !== number),
  );
}

/** Change the size of partition `number`, keeping its start. */
export function resizePartition(table: GptTable, number: number, sizeLba: bigint): GptTable {
  const p = find(table, number);
  if (sizeLba < 1n) throw new InputError(`size ${sizeLba} sectors must be at least 1`);
  return withPartitions(table, [
    ...table.partitions.filter((q) => q.number !== number),
    { ...p, lastLba: p.firstLba + sizeLba - 1n },
  ]);
}

/**
 * Make partition `number` the highest-priority one among the partitions of its
 * type, as `cgpt prioritize` does: partitions are grouped by their current
 * priority; the target (or, with `friends`, its whole group) goes on top; the
 * groups are renumbered downwards from `priority` (default: the number of
 * groups, at most 15), lowest groups coalescing at 1; priority 0 stays 0.
 */
export function prioritize(
  table: GptTable,
  number: number,
  priority?: number,
  opts: { friends?: boolean } = {},
): GptTable {
  const target = find(table, number);
  if (priority !== undefined && (!Number.isInteger(priority) || priority < 1 || priority > 15)) {
    throw new InputError(`priority ${priority} is out of range (1–15)`);
  }
  const TOP = 99; // above any real priority, like cgpt's marker
  const original = getSlotAttributes(target.attributes).priority;
  const groupOf = new Map<number, number>(); // partition number → group key
  for (const p of table.partitions) {
    if (p.typeGuid !== target.typeGuid) continue;
    const own = getSlotAttributes(p.attributes).priority;
    const moves = p.number === number || (opts.friends === true && own === original);
    groupOf.set(p.number, moves ? TOP : own);
  }
  const keys = [...new Set(groupOf.values())].sort((a, b) => b - a).filter((k) => k !== 0);
  let next = priority ?? Math.min(keys.length, 15);
  const newPriority = new Map<number, number>();
  for (const k of keys) {
    newPriority.set(k, next);
    if (next > 1) next--;
  }
  return withPartitions(
    table,
    table.partitions.map((p) => {
      const key = groupOf.get(p.number);
      const np = key === undefined ? undefined : newPriority.get(key);
      return np === undefined
        ? p
        : { ...p, attributes: setSlotAttributes(p.attributes, { priority: np }) };
    }),
  );
}
