/** `slipway gpt …`: wiring for src/disk/gpt.ts. */
import { closeSync, existsSync, openSync, statSync, truncateSync } from "node:fs";
import type { Command } from "commander";
import type * as GptModule from "../disk/gpt.ts";
import type { GptPartition, GptTable, PartitionSpec } from "../disk/gpt.ts";
import { InputError, SlipwayError } from "../errors.ts";
import { formatTable, printJson } from "./output.ts";

const UNITS: Record<string, bigint> = {
  b: 1n,
  k: 1024n,
  kib: 1024n,
  m: 1024n ** 2n,
  mib: 1024n ** 2n,
  g: 1024n ** 3n,
  gib: 1024n ** 3n,
  t: 1024n ** 4n,
  tib: 1024n ** 4n,
};

/** "123" (in `plainUnit` bytes) or "64MiB"/"1G" → bytes. */
function parseBytes(text: string, what: string, plainUnit: bigint): bigint {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (!m)
    throw new InputError(`${what} "${text}" is not a number with an optional K/M/G/T(iB) suffix`);
  const unit = m[2]!.toLowerCase();
  if (unit === "" || unit === "s") return BigInt(m[1]!) * (unit === "s" ? 1n : plainUnit);
  const factor = UNITS[unit];
  if (factor === undefined) throw new InputError(`${what} "${text}" has an unknown unit "${m[2]}"`);
  return BigInt(m[1]!) * factor;
}

/** Sectors, or bytes with a suffix (must be whole sectors). */
function parseSectors(text: string, what: string, sectorSize: number): bigint {
  const ss = BigInt(sectorSize);
  if (/^\s*\d+\s*s?\s*$/i.test(text)) return parseBytes(text, what, ss) / ss;
  const bytes = parseBytes(text, what, 1n);
  if (bytes % ss !== 0n)
    throw new InputError(`${what} "${text}" is not a whole number of ${sectorSize}-byte sectors`);
  return bytes / ss;
}

function parseInteger(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new InputError(`${what} "${text}" is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new InputError(`${what} ${n} is out of range (${min}–${max})`);
  return n;
}

type Gpt = typeof GptModule;

/**
 * Load the GPT code (on use, not at startup) and run `fn` with it; InputErrors
 * that don't name a place yet get the disk's name.
 */
async function onDisk(disk: string, fn: (gpt: Gpt) => void): Promise<void> {
  const gpt = await import("../disk/gpt.ts");
  try {
    fn(gpt);
  } catch (err) {
    if (err instanceof SlipwayError && err.where === undefined) {
      throw new SlipwayError(err.message, { where: disk, exitCode: err.exitCode, cause: err });
    }
    throw err;
  }
}

function partitionJson(gpt: Gpt, p: GptPartition, sectorSize: number) {
  return {
    number: p.number,
    label: p.label,
    type: p.typeGuid,
    typeAlias: gpt.partitionTypeAlias(p.typeGuid) ?? null,
    uniqueGuid: p.uniqueGuid,
    firstLba: Number(p.firstLba),
    lastLba: Number(p.lastLba),
    sizeLba: Number(p.lastLba - p.firstLba + 1n),
    sizeBytes: Number((p.lastLba - p.firstLba + 1n) * BigInt(sectorSize)),
    attributes: `0x${p.attributes.toString(16).padStart(16, "0")}`,
    ...gpt.getSlotAttributes(p.attributes),
  };
}

function tableJson(gpt: Gpt, disk: string, t: GptTable) {
  return {
    disk,
    diskGuid: t.diskGuid,
    sectorSize: t.sectorSize,
    totalSectors: Number(t.totalSectors),
    firstUsableLba: Number(t.firstUsableLba),
    lastUsableLba: Number(t.lastUsableLba),
    entryCount: t.entryCount,
    entrySize: t.entrySize,
    partitions: t.partitions.map((p) => partitionJson(gpt, p, t.sectorSize)),
  };
}

function humanTable(gpt: Gpt, disk: string, t: GptTable, only?: GptPartition): string {
  const rows = (only ? [only] : t.partitions).map((p) => {
    const s = gpt.getSlotAttributes(p.attributes);
    return [
      p.firstLba,
      p.lastLba - p.firstLba + 1n,
      p.number,
      p.label,
      gpt.partitionTypeAlias(p.typeGuid) ?? p.typeGuid,
      p.uniqueGuid,
      s.priority,
      s.tries,
      s.successful,
    ];
  });
  const head =
    `${disk}: ${t.totalSectors} sectors of ${t.sectorSize} bytes, disk GUID ${t.diskGuid}, ` +
    `usable LBA ${t.firstUsableLba}–${t.lastUsableLba}, ${t.partitions.length} of ${t.entryCount} entries used`;
  const table = formatTable(
    ["start", "size", "part", "label", "type", "unique GUID", "priority", "tries", "successful"],
    rows,
    new Set([0, 1, 2, 6, 7, 8]),
  );
  return `${head}\n${table}\n`;
}

function partitionOf(t: GptTable, n: number): GptPartition {
  const p = t.partitions.find((q) => q.number === n);
  if (!p) throw new InputError(`partition ${n} does not exist`);
  return p;
}

interface ShowOptions {
  number?: string;
  json?: boolean;
  priority?: boolean;
  tries?: boolean;
  successful?: boolean;
  begin?: boolean;
  size?: boolean;
  label?: boolean;
  type?: boolean;
  uniqueGuid?: boolean;
  attributes?: boolean;
}

function show(gpt: Gpt, disk: string, o: ShowOptions): void {
  const warnings: string[] = [];
  const t = gpt.readGpt(disk, {
    onWarning: (w) => {
      warnings.push(w);
      process.stderr.write(`slipway: warning: ${disk}: ${w}\n`);
    },
  });
  const n =
    o.number === undefined
      ? undefined
      : parseInteger(o.number, "partition number", 1, t.entryCount);
  const single: [boolean | undefined, (p: GptPartition) => string][] = [
    [o.priority, (p) => String(gpt.getSlotAttributes(p.attributes).priority)],
    [o.tries, (p) => String(gpt.getSlotAttributes(p.attributes).tries)],
    [o.successful, (p) => String(gpt.getSlotAttributes(p.attributes).successful)],
    [o.begin, (p) => String(p.firstLba)],
    [o.size, (p) => String(p.lastLba - p.firstLba + 1n)],
    [o.label, (p) => p.label],
    [o.type, (p) => gpt.partitionTypeAlias(p.typeGuid) ?? p.typeGuid],
    [o.uniqueGuid, (p) => p.uniqueGuid],
    [o.attributes, (p) => `0x${p.attributes.toString(16)}`],
  ];
  const wanted = single.filter(([flag]) => flag);
  if (wanted.length > 1) throw new InputError("give at most one of -P -T -S -b -s -l -t -u -A");
  if (wanted.length === 1) {
    if (n === undefined) throw new InputError("-P/-T/-S/-b/-s/-l/-t/-u/-A need -i N");
    process.stdout.write(`${wanted[0]![1](partitionOf(t, n))}\n`);
    return;
  }
  if (n !== undefined) {
    const p = partitionOf(t, n);
    if (o.json) printJson(partitionJson(gpt, p, t.sectorSize));
    else process.stdout.write(humanTable(gpt, disk, t, p));
    return;
  }
  if (o.json) printJson({ ...tableJson(gpt, disk, t), warnings });
  else process.stdout.write(humanTable(gpt, disk, t));
}

function create(
  gpt: Gpt,
  disk: string,
  o: { size?: string; sectorSize?: string; entries?: string; diskGuid?: string },
): void {
  const sectorSize = o.sectorSize === undefined ? undefined : Number(o.sectorSize);
  if (sectorSize !== undefined && sectorSize !== 512 && sectorSize !== 4096) {
    throw new InputError(`sector size ${o.sectorSize} must be 512 or 4096`);
  }
  const entryCount =
    o.entries === undefined ? 128 : parseInteger(o.entries, "entry count", 1, 4096);
  if (
    o.diskGuid !== undefined &&
    !/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i.test(o.diskGuid)
  ) {
    throw new InputError(`disk GUID "${o.diskGuid}" is not a GUID`);
  }
  if (o.size !== undefined) {
    const bytes = parseBytes(o.size, "size", 1n);
    const ss = BigInt(sectorSize ?? 512);
    if (bytes % ss !== 0n) throw new InputError(`size ${bytes} is not a multiple of ${ss}`);
    // Checked before the file is created or extended, so a refusal leaves nothing behind.
    if (bytes < ss * 128n) throw new InputError(`size ${bytes} bytes is too small for a GPT`);
    if (!existsSync(disk)) closeSync(openSync(disk, "wx"));
    const st = statSync(disk);
    if (!st.isFile()) throw new InputError("--size only applies to image files");
    if (BigInt(st.size) > bytes)
      throw new InputError(`file is already ${st.size} bytes; --size ${bytes} would shrink it`);
    truncateSync(disk, Number(bytes));
  } else if (!existsSync(disk)) {
    throw new InputError("does not exist (pass --size to create an image file)");
  }
  const t = gpt.createGpt(disk, {
    ...(sectorSize === undefined ? {} : { sectorSize }),
    entryCount,
    ...(o.diskGuid === undefined ? {} : { diskGuid: o.diskGuid }),
  });
  process.stdout.write(
    `${disk}: new GPT, ${t.totalSectors} sectors, usable LBA ${t.firstUsableLba}–${t.lastUsableLba}\n`,
  );
}

interface AddOptions {
  number: string;
  priority?: string;
  tries?: string;
  successful?: string;
  label?: string;
  type?: string;
  start?: string;
  size?: string;
  guid?: string;
  align?: string;
}

function add(gpt: Gpt, disk: string, o: AddOptions): void {
  const t = gpt.readGpt(disk);
  const spec: PartitionSpec = {
    number: parseInteger(o.number, "partition number", 1, t.entryCount),
  };
  if (o.priority !== undefined) spec.priority = parseInteger(o.priority, "priority", 0, 15);
  if (o.tries !== undefined) spec.tries = parseInteger(o.tries, "tries", 0, 15);
  if (o.successful !== undefined) spec.successful = parseInteger(o.successful, "successful", 0, 1);
  if (o.label !== undefined) spec.label = o.label;
  if (o.type !== undefined) spec.type = o.type;
  if (o.guid !== undefined) spec.uniqueGuid = o.guid;
  if (o.start !== undefined) spec.startLba = parseSectors(o.start, "start", t.sectorSize);
  if (o.size !== undefined) spec.sizeLba = parseSectors(o.size, "size", t.sectorSize);
  if (o.align !== undefined) spec.alignLba = parseSectors(o.align, "alignment", t.sectorSize);
  gpt.writeGpt(disk, gpt.addPartition(t, spec));
}

export function register(program: Command): void {
  const gpt = program
    .command("gpt")
    .description("Read and edit GPT partition tables on image files and block devices");

  gpt
    .command("show")
    .description("Show the partition table (like cgpt show)")
    .argument("<disk>", "image file or block device")
    .option("-i, --number <N>", "only partition N")
    .option("-P, --priority", "print just the priority of partition N")
    .option("-T, --tries", "print just the tries of partition N")
    .option("-S, --successful", "print just the successful flag of partition N")
    .option("-b, --begin", "print just the start sector of partition N")
    .option("-s, --size", "print just the size in sectors of partition N")
    .option("-l, --label", "print just the label of partition N")
    .option("-t, --type", "print just the type of partition N")
    .option("-u, --unique-guid", "print just the unique GUID of partition N")
    .option("-A, --attributes", "print just the raw attribute word of partition N")
    .option("--json", "machine-readable output")
    .action((disk: string, o: ShowOptions) => onDisk(disk, (gpt) => show(gpt, disk, o)));

  gpt
    .command("create")
    .description("Write a new, empty GPT (and protective MBR)")
    .argument("<disk>", "image file or block device")
    .option(
      "--size <bytes>",
      "create or extend the image file to this size (bytes, or K/M/G/T suffix)",
    )
    .option(
      "--sector-size <n>",
      "512 or 4096 (default: the device's logical sector size, 512 for files)",
    )
    .option("--entries <n>", "entries per array (default 128)")
    .option("--disk-guid <guid>", "disk GUID (default: random)")
    .action((disk: string, o) => onDisk(disk, (gpt) => create(gpt, disk, o)));

  gpt
    .command("add")
    .description("Create partition N, or change the given fields of an existing one")
    .argument("<disk>", "image file or block device")
    .requiredOption("-i, --number <N>", "partition number")
    .option("-P, --priority <P>", "slot priority 0–15")
    .option("-T, --tries <T>", "slot tries 0–15")
    .option("-S, --successful <0|1>", "slot successful flag")
    .option("-l, --label <label>", "label, up to 36 UTF-16 units")
    .option("-t, --type <type>", "type alias or GUID (default for new partitions: linux-data)")
    .option("-b, --start <S>", "start sector (or with a K/M/G suffix)")
    .option("-s, --size <Z>", "size in sectors (or with a K/M/G suffix)")
    .option("-u, --guid <guid>", "unique partition GUID")
    .option("--align <Z>", "alignment of a start Slipway picks (default 1MiB)")
    .action((disk: string, o: AddOptions) => onDisk(disk, (gpt) => add(gpt, disk, o)));

  gpt
    .command("resize")
    .description("Change the size of partition N, keeping its start")
    .argument("<disk>", "image file or block device")
    .requiredOption("-i, --number <N>", "partition number")
    .requiredOption("-s, --size <Z>", "new size in sectors (or with a K/M/G suffix)")
    .action((disk: string, o: { number: string; size: string }) =>
      onDisk(disk, (gpt) => {
        const t = gpt.readGpt(disk);
        const n = parseInteger(o.number, "partition number", 1, t.entryCount);
        gpt.writeGpt(disk, gpt.resizePartition(t, n, parseSectors(o.size, "size", t.sectorSize)));
      }),
    );

  gpt
    .command("delete")
    .description("Delete partition N")
    .argument("<disk>", "image file or block device")
    .requiredOption("-i, --number <N>", "partition number")
    .action((disk: string, o: { number: string }) =>
      onDisk(disk, (gpt) => {
        const t = gpt.readGpt(disk);
        gpt.writeGpt(
          disk,
          gpt.deletePartition(t, parseInteger(o.number, "partition number", 1, t.entryCount)),
        );
      }),
    );

  gpt
    .command("prioritize")
    .description(
      "Make partition N the highest priority among partitions of its type (like cgpt prioritize)",
    )
    .argument("<disk>", "image file or block device")
    .requiredOption("-i, --number <N>", "partition number")
    .option(
      "-P, --priority <P>",
      "highest priority to use, 1–15 (default: number of priority groups)",
    )
    .option("-f, --friends", "also move the partitions that share N's current priority")
    .action((disk: string, o: { number: string; priority?: string; friends?: boolean }) =>
      onDisk(disk, (gpt) => {
        const t = gpt.readGpt(disk);
        const n = parseInteger(o.number, "partition number", 1, t.entryCount);
        const p =
          o.priority === undefined ? undefined : parseInteger(o.priority, "priority", 1, 15);
        gpt.writeGpt(disk, gpt.prioritize(t, n, p, { friends: o.friends === true }));
      }),
    );

  gpt
    .command("repair")
    .description("Rebuild a damaged primary or backup GPT from the other copy")
    .argument("<disk>", "image file or block device")
    .option("--json", "machine-readable output")
    .action((disk: string, o: { json?: boolean }) =>
      onDisk(disk, (gpt) => {
        const r = gpt.repairGpt(disk);
        if (o.json) printJson({ disk, ...r });
        else
          process.stdout.write(
            `${disk}: ${r.repaired.length ? `repaired ${r.repaired.join(" and ")}` : "both copies valid, nothing to repair"}\n`,
          );
      }),
    );

  gpt
    .command("relocate-backup")
    .description(
      "Move the backup GPT to the end of a grown disk and extend the usable space (like sgdisk -e)",
    )
    .argument("<disk>", "image file or block device")
    .option("--json", "machine-readable output")
    .action((disk: string, o: { json?: boolean }) =>
      onDisk(disk, (gpt) => {
        const r = gpt.relocateBackup(disk);
        if (o.json) printJson({ disk, ...r });
        else
          process.stdout.write(
            `${disk}: ${r.moved ? `backup moved to the end; last usable LBA ${r.lastUsableLba}` : "backup already at the end"}\n`,
          );
      }),
    );
}
