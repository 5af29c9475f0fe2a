/**
 * The CoreOS disk layout (DESIGN §4): which partitions exist, their numbers,
 * labels, type GUIDs, sizes and 2 MiB-aligned places. Every GUID is chosen
 * here, before anything is written, so grub.cfg and the kernel command line
 * can name partitions by PARTUUID.
 */
import { createHash, randomUUID } from "node:crypto";
import { InputError } from "../errors.ts";

export const SECTOR_SIZE = 512;
const MIB = 1024n * 1024n;
export const ALIGN_BYTES = 2n * MIB;
const ALIGN_LBA = ALIGN_BYTES / BigInt(SECTOR_SIZE);
/** Sectors the backup GPT needs at the end (header + 128 entries of 128 bytes). */
const BACKUP_GPT_SECTORS = 33n;

export const PARTITION_TYPES = {
  efi: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
  bios: "21686148-6449-6e6f-744e-656564454649",
  coreosRootfs: "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6",
  linuxData: "0fc63daf-8483-4772-8e79-3d69d8477de4",
  coreosReserved: "c95dc21a-df0e-4340-8d7b-26cbfa9a03e0",
  coreosResize: "3884dd41-8582-4404-b9a8-e9b84f2df50e",
} as const;

export type PartitionRole = "esp" | "biosBoot" | "usrA" | "usrB" | "oem" | "oemConfig" | "root";

interface RoleSpec {
  role: PartitionRole;
  number: number;
  label: string;
  typeGuid: string;
  sizeKey: keyof LayoutSizes;
}

/** Physical order on disk; ROOT is last so it can grow into a larger disk. */
const ROLES: readonly RoleSpec[] = [
  { role: "esp", number: 1, label: "EFI-SYSTEM", typeGuid: PARTITION_TYPES.efi, sizeKey: "espMiB" },
  {
    role: "biosBoot",
    number: 2,
    label: "BIOS-BOOT",
    typeGuid: PARTITION_TYPES.bios,
    sizeKey: "biosBootMiB",
  },
  {
    role: "usrA",
    number: 3,
    label: "USR-A",
    typeGuid: PARTITION_TYPES.coreosRootfs,
    sizeKey: "usrMiB",
  },
  {
    role: "usrB",
    number: 4,
    label: "USR-B",
    typeGuid: PARTITION_TYPES.coreosRootfs,
    sizeKey: "usrMiB",
  },
  { role: "oem", number: 6, label: "OEM", typeGuid: PARTITION_TYPES.linuxData, sizeKey: "oemMiB" },
  {
    role: "oemConfig",
    number: 7,
    label: "OEM-CONFIG",
    typeGuid: PARTITION_TYPES.coreosReserved,
    sizeKey: "oemConfigMiB",
  },
  {
    role: "root",
    number: 9,
    label: "ROOT",
    typeGuid: PARTITION_TYPES.coreosResize,
    sizeKey: "rootMiB",
  },
];

export interface LayoutSizes {
  espMiB: number;
  biosBootMiB: number;
  /** Each of USR-A and USR-B. */
  usrMiB: number;
  oemMiB: number;
  oemConfigMiB: number;
  rootMiB: number;
}

/** Flatcar's sizes; CI images pass a smaller `usrMiB`. */
export const DEFAULT_SIZES: LayoutSizes = {
  espMiB: 128,
  biosBootMiB: 2,
  usrMiB: 1024,
  oemMiB: 128,
  oemConfigMiB: 64,
  rootMiB: 1024,
};

export interface PlannedPartition {
  role: PartitionRole;
  number: number;
  label: string;
  typeGuid: string;
  uniqueGuid: string;
  startLba: bigint;
  sizeLba: bigint;
  /** Byte offset and size, for positioned writes. */
  offset: bigint;
  size: bigint;
}

export interface DiskPlan {
  diskGuid: string;
  sectorSize: number;
  totalSectors: bigint;
  /** Total image size in bytes (a multiple of 2 MiB). */
  size: bigint;
  partitions: PlannedPartition[];
}

export interface PlanOptions {
  sizes?: Partial<LayoutSizes>;
  /**
   * Derive every GUID from this seed (same seed, same GUIDs: reproducible
   * builds). Without it, GUIDs are random.
   */
  guidSeed?: string;
}

/** A version-4-shaped GUID: random, or derived from seed + name. */
export function makeGuid(seed: string | undefined, name: string): string {
  if (seed === undefined) return randomUUID();
  const h = createHash("sha256").update(`slipway:${seed}:${name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function planLayout(opts: PlanOptions = {}): DiskPlan {
  const sizes = { ...DEFAULT_SIZES, ...opts.sizes };
  for (const [k, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new InputError(`partition size must be a whole number of MiB ≥ 1, got ${v}`, {
        where: `layout.${k}`,
      });
    }
  }
  if (sizes.espMiB < 33) {
    throw new InputError("the ESP needs at least 33 MiB for FAT32", { where: "layout.espMiB" });
  }
  let next = ALIGN_LBA;
  const partitions: PlannedPartition[] = [];
  for (const r of ROLES) {
    const sizeLba = alignUp((BigInt(sizes[r.sizeKey]) * MIB) / BigInt(SECTOR_SIZE));
    partitions.push({
      role: r.role,
      number: r.number,
      label: r.label,
      typeGuid: r.typeGuid,
      uniqueGuid: makeGuid(opts.guidSeed, `partition:${r.label}`),
      startLba: next,
      sizeLba,
      offset: next * BigInt(SECTOR_SIZE),
      size: sizeLba * BigInt(SECTOR_SIZE),
    });
    next += sizeLba;
  }
  // Leave an aligned tail for the backup GPT.
  const totalSectors = alignUp(next + BACKUP_GPT_SECTORS);
  return {
    diskGuid: makeGuid(opts.guidSeed, "disk"),
    sectorSize: SECTOR_SIZE,
    totalSectors,
    size: totalSectors * BigInt(SECTOR_SIZE),
    partitions,
  };
}

function alignUp(lba: bigint): bigint {
  return ((lba + ALIGN_LBA - 1n) / ALIGN_LBA) * ALIGN_LBA;
}

export function partitionByRole(plan: DiskPlan, role: PartitionRole): PlannedPartition {
  const p = plan.partitions.find((x) => x.role === role);
  if (!p) throw new InputError(`disk plan has no ${role} partition`);
  return p;
}
