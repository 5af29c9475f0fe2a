/**
 * The whole boot chain in one call: from a customized rootfs tree to a
 * bootable disk image in our layout. The build pipeline runs the same steps
 * as separate cached stages; tests and `slipway` tooling use this directly.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { assembleDisk } from "../disk/assemble.ts";
import { buildExt4Image, stageRootTree } from "../disk/ext4.ts";
import {
  type DiskPlan,
  type LayoutSizes,
  makeGuid,
  partitionByRole,
  planLayout,
} from "../disk/layout.ts";
import { buildEsp } from "./esp.ts";
import { buildGrubImages } from "./grub.ts";
import { generateGrubConfig, slotConfig } from "./grubcfg.ts";
import { buildInitrd } from "./initrd.ts";
import { initialBootState } from "./slots.ts";
import { installInitrdInTree, prepareTreeForLayout } from "./tree.ts";
import { buildUsrImage, type UsrCompression, type UsrImageResult } from "./usr-image.ts";

export interface BootableDiskOptions {
  /** A customized rootfs tree; it is modified (prepareTreeForLayout). */
  tree: string;
  /** Directory for intermediate images (same filesystem as `tree` is fastest). */
  workDir: string;
  out: string;
  sizes?: Partial<LayoutSizes>;
  /** Seed for every GUID and the ESP volume id: same seed, same disk. */
  seed: string;
  compression?: UsrCompression;
  verity?: boolean;
  kernelArgs?: string[];
  extraDracutModules?: string[];
  timestamp?: number;
  /** Progress lines for people. */
  log?: (line: string) => void;
}

export interface BootableDisk {
  path: string;
  plan: DiskPlan;
  usr: UsrImageResult;
  kver: string;
  /** Kernel and initrd on the build host (also inside /usr). */
  kernel: string;
  initrd: string;
  espVolumeId: number;
}

/** ESP volume id derived from the seed (GRUB finds the ESP by it). */
export function espVolumeIdFor(seed: string): number {
  return Number.parseInt(makeGuid(seed, "esp-volume-id").slice(0, 8), 16);
}

export async function buildBootableDisk(opts: BootableDiskOptions): Promise<BootableDisk> {
  const log = opts.log ?? (() => undefined);
  const ts = opts.timestamp ?? 0;
  await mkdir(opts.workDir, { recursive: true });
  const plan = planLayout({ sizes: opts.sizes, guidSeed: opts.seed });
  const part = (r: Parameters<typeof partitionByRole>[1]) => partitionByRole(plan, r);

  log("tree: preparing for the layout");
  const prepared = await prepareTreeForLayout(opts.tree);
  log("initrd: dracut");
  const initrd = join(opts.workDir, "initrd.img");
  await buildInitrd({
    tree: opts.tree,
    out: initrd,
    kver: prepared.kver,
    verity: opts.verity ? true : "auto",
    extraModules: opts.extraDracutModules,
    timestamp: ts,
  });
  await installInitrdInTree(opts.tree, prepared.kver, initrd);

  log(`usr: erofs (${opts.compression ?? "lz4hc"})${opts.verity ? " + dm-verity" : ""}`);
  const usr = await buildUsrImage({
    tree: opts.tree,
    out: join(opts.workDir, "usr.img"),
    compression: opts.compression,
    uuid: makeGuid(opts.seed, "usr-fs"),
    timestamp: ts,
    ...(opts.verity
      ? {
          verity: {
            salt: makeGuid(opts.seed, "verity-salt").replace(/-/g, "").repeat(2),
            uuid: makeGuid(opts.seed, "verity"),
          },
        }
      : {}),
  });

  log("root, oem: ext4");
  const stage = await stageRootTree(opts.tree, opts.workDir);
  const rootImg = join(opts.workDir, "root.img");
  const oemImg = join(opts.workDir, "oem.img");
  try {
    await buildExt4Image({
      out: rootImg,
      sizeMiB: Number(part("root").size / 1048576n),
      label: "ROOT",
      uuid: makeGuid(opts.seed, "root-fs"),
      sourceDir: stage,
      timestamp: ts,
    });
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  await buildExt4Image({
    out: oemImg,
    sizeMiB: Number(part("oem").size / 1048576n),
    label: "OEM",
    uuid: makeGuid(opts.seed, "oem-fs"),
    timestamp: ts,
  });

  log("esp: GRUB (UEFI + BIOS), grub.cfg, grubenv, kernel, initrd");
  const espVolumeId = espVolumeIdFor(opts.seed);
  const grub = await buildGrubImages({ espVolumeId });
  const espImg = join(opts.workDir, "esp.img");
  await buildEsp({
    out: espImg,
    sizeMiB: Number(part("esp").size / 1048576n),
    volumeId: espVolumeId,
    efiImage: grub.efi,
    grubCfg: generateGrubConfig({
      rootPartuuid: part("root").uniqueGuid,
      usrPartuuids: { A: part("usrA").uniqueGuid, B: part("usrB").uniqueGuid },
      extraArgs: opts.kernelArgs,
    }),
    bootState: initialBootState(),
    slots: {
      A: {
        kernel: prepared.kernelPath,
        initrd,
        slotCfg: slotConfig({
          partuuid: part("usrA").uniqueGuid,
          ...(usr.verity
            ? { verity: { rootHash: usr.verity.rootHash, hashOffset: usr.verity.hashOffset } }
            : {}),
        }),
      },
    },
  });

  log("disk: GPT and partitions");
  await assembleDisk({
    out: opts.out,
    plan,
    images: {
      esp: espImg,
      biosCore: grub.biosCore,
      biosBoot: grub.biosBoot,
      usrA: usr.path,
      oem: oemImg,
      root: rootImg,
    },
  });
  await rm(rootImg, { force: true });
  await rm(oemImg, { force: true });
  return {
    path: opts.out,
    plan,
    usr,
    kver: prepared.kver,
    kernel: prepared.kernelPath,
    initrd,
    espVolumeId,
  };
}
