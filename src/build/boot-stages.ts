/**
 * The boot chain as cached stages: thin wrappers around the boot code
 * (src/boot, src/disk) that give each step declared inputs and its own
 * output directory. Order and data flow:
 *
 *   rootfs ─► initrd (dracut on a copy of the package tree)
 *   rootfs + initrd ─► customize (the image's tree, initrd inside /usr)
 *   customize ─► usr (erofs [+ dm-verity]) and root (ROOT ext4)
 *   per OEM variant: oem (ext4) ─► esp (GRUB, grub.cfg, grubenv, kernel, initrd) ─► disk
 *
 * The initrd depends on the packages only, so an overlay change does not
 * re-run dracut.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildEsp, espVolumeIdFor } from "../boot/esp.ts";
import { buildGrubImages } from "../boot/grub.ts";
import { baseKernelArgs, generateGrubConfig, slotConfig, slotUsrArgs } from "../boot/grubcfg.ts";
import { buildInitrd } from "../boot/initrd.ts";
import { initialBootState } from "../boot/slots.ts";
import { buildUsrImage, type UsrImageResult } from "../boot/usr-image.ts";
import type { OemVariant } from "../config/schema.ts";
import { assembleDisk } from "../disk/assemble.ts";
import { buildExt4Image, stageRootTree } from "../disk/ext4.ts";
import {
  type DiskPlan,
  type LayoutSizes,
  makeGuid,
  partitionByRole,
  planLayout,
} from "../disk/layout.ts";
import { SlipwayError } from "../errors.ts";
import {
  FIRSTBOOT_LINUX_ARG,
  FIRSTBOOT_STAMP,
  firstbootGrubLines,
  firstbootOnlyStamp,
} from "../provision/firstboot.ts";
import type { InitrdProvisioning } from "../provision/initrd.ts";
import { placeFiles } from "../provision/placed.ts";
import type { CustomizeOutput } from "./customize.ts";
import { tool } from "./host-tools.ts";
import type { RootfsOutput } from "./rootfs.ts";
import type { Stage, StageResult } from "./stage.ts";
import { STAGE_VERSIONS } from "./stage-versions.ts";

export const BOOT_TOOLS = {
  chroot: tool("chroot", "coreutils"),
  mount: tool("mount", "mount"),
  erofs: tool("mkfs.erofs", "erofs-utils"),
  verity: tool("veritysetup", "cryptsetup-bin"),
  ext4: tool("mkfs.ext4", "e2fsprogs"),
  fat: tool("mkfs.fat", "dosfstools"),
  mtools: tool("mcopy", "mtools"),
  grubMkimage: tool("grub-mkimage", "grub-common"),
  grubEfi: tool("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin"),
  grubPc: tool("/usr/lib/grub/i386-pc", "grub-pc-bin"),
} as const;

/** Fixed timestamp for artifacts that depend on packages only (reproducible). */
const PACKAGE_EPOCH = 1_700_000_000;

/** The disk plan of a build: every GUID derives from the build's seed. */
export function diskPlanFor(seed: string, sizes: LayoutSizes): DiskPlan {
  return planLayout({ sizes, guidSeed: seed });
}

export function layoutSizes(p: {
  esp: number;
  biosBoot: number;
  usr: number;
  oem: number;
  oemConfig: number;
  root: number;
}): LayoutSizes {
  return {
    espMiB: p.esp,
    biosBootMiB: p.biosBoot,
    usrMiB: p.usr,
    oemMiB: p.oem,
    oemConfigMiB: p.oemConfig,
    rootMiB: p.root,
  };
}

// ---------------------------------------------------------------- initrd

export interface InitrdInput {
  rootfs: StageResult<RootfsOutput>;
  verity: boolean;
  /**
   * First-boot provisioning in the initrd (src/provision/initrd.ts): its
   * dracut modules and drivers, and the files of its glue module, placed
   * into the tree copy before dracut runs.
   */
  provisioning: InitrdProvisioning;
}
export interface InitrdOutput {
  initrd: string;
  kver: string;
  modules: string[];
}

export const initrdStage: Stage<InitrdInput, InitrdOutput> = {
  name: "initrd",
  title: "dracut initrd",
  version: STAGE_VERSIONS.initrd,
  tools: [BOOT_TOOLS.chroot, BOOT_TOOLS.mount],
  key: (i) => ({ rootfs: i.rootfs, verity: i.verity, provisioning: i.provisioning }),
  async run(input, ctx) {
    // dracut runs chrooted and writes into the tree: work on a copy, never the cached rootfs.
    const tree = join(ctx.tmpDir, "tree");
    ctx.progress("copying the package tree");
    await ctx.exec("cp", [
      "-a",
      "--reflink=auto",
      input.rootfs.path(input.rootfs.value.tree),
      tree,
    ]);
    const prov = input.provisioning;
    placeFiles(tree, prov.files);
    const missing = prov.dracutModules.filter((m) => !dracutModuleExists(tree, m));
    if (missing.length > 0) {
      throw new SlipwayError(`the image has no dracut module ${missing.join(", ")}`);
    }
    ctx.progress(`dracut (+ ${prov.dracutModules.join(" ")})`);
    const r = await buildInitrd({
      tree,
      out: join(ctx.outDir, "initrd.img"),
      verity: input.verity,
      extraModules: prov.dracutModules,
      extraDrivers: prov.drivers,
      timestamp: PACKAGE_EPOCH,
    });
    return { initrd: "initrd.img", kver: r.kver, modules: r.modules };
  },
};

function dracutModuleExists(tree: string, name: string): boolean {
  const dir = join(tree, "usr/lib/dracut/modules.d");
  return (
    existsSync(dir) &&
    readdirSync(dir).some(
      (d) => d.replace(/^\d+/, "") === name && statSync(join(dir, d)).isDirectory(),
    )
  );
}

// ---------------------------------------------------------------- usr

export interface UsrInput {
  tree: StageResult<CustomizeOutput>;
  compression: "lz4hc" | "lz4" | "none";
  verity: boolean;
  seed: string;
  timestamp: number;
}
export interface UsrOutput {
  image: string;
  dataSize: number;
  size: number;
  verity?: UsrImageResult["verity"];
}

export const usrStage: Stage<UsrInput, UsrOutput> = {
  name: "usr",
  title: "USR image (erofs)",
  version: STAGE_VERSIONS.usr,
  tools: [BOOT_TOOLS.erofs, BOOT_TOOLS.verity],
  key: (i) => ({
    tree: i.tree,
    compression: i.compression,
    verity: i.verity,
    seed: i.seed,
    ts: i.timestamp,
  }),
  async run(input, ctx) {
    ctx.progress(`mkfs.erofs (${input.compression})${input.verity ? " + dm-verity" : ""}`);
    const r = await buildUsrImage({
      tree: input.tree.path(input.tree.value.tree),
      out: join(ctx.outDir, "usr.img"),
      compression: input.compression === "none" ? "uncompressed" : "lz4hc",
      uuid: makeGuid(input.seed, "usr-fs"),
      timestamp: input.timestamp,
      ...(input.verity
        ? {
            verity: {
              salt: makeGuid(input.seed, "verity-salt").replace(/-/g, "").repeat(2),
              uuid: makeGuid(input.seed, "verity"),
            },
          }
        : {}),
    });
    return {
      image: "usr.img",
      dataSize: r.dataSize,
      size: r.size,
      ...(r.verity ? { verity: r.verity } : {}),
    };
  },
};

// ---------------------------------------------------------------- ROOT

export interface RootInput {
  tree: StageResult<CustomizeOutput>;
  plan: DiskPlan;
  seed: string;
  timestamp: number;
}
export interface RootOutput {
  image: string;
}

export const rootStage: Stage<RootInput, RootOutput> = {
  name: "root",
  title: "ROOT filesystem (ext4: /etc, /var, /home)",
  version: STAGE_VERSIONS.root,
  tools: [BOOT_TOOLS.ext4],
  key: (i) => ({
    tree: i.tree,
    size: partitionByRole(i.plan, "root").size.toString(),
    seed: i.seed,
    ts: i.timestamp,
  }),
  async run(input, ctx) {
    const staged = await stageRootTree(input.tree.path(input.tree.value.tree), ctx.tmpDir);
    await buildExt4Image({
      out: join(ctx.outDir, "root.img"),
      sizeMiB: Number(partitionByRole(input.plan, "root").size / 1048576n),
      label: "ROOT",
      uuid: makeGuid(input.seed, "root-fs"),
      sourceDir: staged,
      timestamp: input.timestamp,
    });
    return { image: "root.img" };
  },
};

// ---------------------------------------------------------------- OEM

export interface OemInput {
  variant: OemVariant;
  /** Absolute directory of the variant's files and its content hash. */
  files: { dir: string; hash: string } | undefined;
  name: string;
  plan: DiskPlan;
  seed: string;
  timestamp: number;
}
export interface OemOutput {
  image: string;
}

/** `/oem/environment` lines; the image's slipway-oem-environment.service merges them into /etc/environment. */
export function oemEnvironment(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}=${/[\s"'$`\\]/.test(v) ? `"${v.replace(/(["$`\\])/g, "\\$1")}"` : v}`)
    .join("\n");
}

export const oemStage: Stage<OemInput, OemOutput> = {
  name: "oem",
  title: "OEM filesystem (platform files, environment)",
  version: STAGE_VERSIONS.oem,
  tools: [BOOT_TOOLS.ext4],
  key: (i) => ({
    variant: i.variant,
    files: i.files?.hash ?? null,
    name: i.name,
    size: partitionByRole(i.plan, "oem").size.toString(),
    seed: i.seed,
    ts: i.timestamp,
  }),
  async run(input, ctx) {
    const dir = join(ctx.tmpDir, "oem");
    mkdirSync(dir, { recursive: true });
    if (input.files) await ctx.exec("cp", ["-rT", "--no-preserve=ownership", input.files.dir, dir]);
    writeFileSync(
      join(dir, "oem-release"),
      `ID=${input.variant.id}\nNAME="${input.name} ${input.variant.id}"\n`,
    );
    const env = oemEnvironment(input.variant.environment);
    writeFileSync(join(dir, "environment"), env ? `${env}\n` : "");
    await buildExt4Image({
      out: join(ctx.outDir, "oem.img"),
      sizeMiB: Number(partitionByRole(input.plan, "oem").size / 1048576n),
      label: "OEM",
      uuid: makeGuid(`${input.seed}:${input.variant.id}`, "oem-fs"),
      sourceDir: dir,
      timestamp: input.timestamp,
    });
    return { image: "oem.img" };
  },
};

// ---------------------------------------------------------------- ESP

export interface EspInput {
  tree: StageResult<CustomizeOutput>;
  initrd: StageResult<InitrdOutput>;
  usr: StageResult<UsrOutput>;
  plan: DiskPlan;
  seed: string;
  /** Config cmdline extras + the variant's, + ignition.platform.id. */
  kernelArgs: string[];
  variant: string;
}
export interface EspOutput {
  image: string;
  biosCore: string;
  biosBoot: string;
  espVolumeId: number;
  /** The full kernel command line slot A boots with. */
  cmdline: string;
}

export const espStage: Stage<EspInput, EspOutput> = {
  name: "esp",
  title: "ESP (GRUB UEFI + BIOS, grub.cfg, grubenv, kernel, initrd)",
  version: STAGE_VERSIONS.esp,
  tools: [
    BOOT_TOOLS.fat,
    BOOT_TOOLS.mtools,
    BOOT_TOOLS.grubMkimage,
    BOOT_TOOLS.grubEfi,
    BOOT_TOOLS.grubPc,
  ],
  key: (i) => ({
    tree: i.tree,
    initrd: i.initrd,
    usr: i.usr,
    plan: planKey(i.plan),
    seed: i.seed,
    kernelArgs: i.kernelArgs,
    variant: i.variant,
  }),
  async run(input, ctx) {
    const { plan } = input;
    const part = (r: Parameters<typeof partitionByRole>[1]) => partitionByRole(plan, r);
    const espVolumeId = espVolumeIdFor(input.seed);
    ctx.progress("grub-mkimage (x86_64-efi, i386-pc)");
    const grub = await buildGrubImages({ espVolumeId });
    writeFileSync(join(ctx.outDir, "core.img"), grub.biosCore);
    writeFileSync(join(ctx.outDir, "boot.img"), grub.biosBoot);
    const verity = input.usr.value.verity;
    const slotBoot = {
      partuuid: part("usrA").uniqueGuid,
      ...(verity ? { verity: { rootHash: verity.rootHash, hashOffset: verity.hashOffset } } : {}),
    };
    const grubOpts = {
      rootPartuuid: part("root").uniqueGuid,
      usrPartuuids: { A: part("usrA").uniqueGuid, B: part("usrB").uniqueGuid },
      extraArgs: input.kernelArgs,
      // Ignition runs while the first-boot stamp is on the ESP (the initrd removes it).
      prelude: firstbootGrubLines(),
      argVariables: [FIRSTBOOT_LINUX_ARG],
    };
    const kver = input.initrd.value.kver;
    ctx.progress("FAT image with mtools");
    await buildEsp({
      out: join(ctx.outDir, "esp.img"),
      sizeMiB: Number(part("esp").size / 1048576n),
      volumeId: espVolumeId,
      efiImage: grub.efi,
      grubCfg: generateGrubConfig(grubOpts),
      bootState: initialBootState(),
      extraFiles: [[FIRSTBOOT_STAMP, firstbootOnlyStamp()]],
      slots: {
        A: {
          kernel: join(input.tree.path(input.tree.value.tree), "usr/lib/modules", kver, "vmlinuz"),
          initrd: input.initrd.path(input.initrd.value.initrd),
          slotCfg: slotConfig(slotBoot),
        },
      },
    });
    return {
      image: "esp.img",
      biosCore: "core.img",
      biosBoot: "boot.img",
      espVolumeId,
      cmdline: [...baseKernelArgs(grubOpts), ...slotUsrArgs(slotBoot)].join(" "),
    };
  },
};

/** DiskPlan has bigints; hash it in a JSON-safe form. */
export function planKey(plan: DiskPlan): unknown {
  return JSON.parse(JSON.stringify(plan, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
}

// ---------------------------------------------------------------- disk

export interface DiskInput {
  plan: DiskPlan;
  esp: StageResult<EspOutput>;
  usr: StageResult<UsrOutput>;
  oem: StageResult<OemOutput>;
  root: StageResult<RootOutput>;
}
export interface DiskOutput {
  image: string;
}

export const diskStage: Stage<DiskInput, DiskOutput> = {
  name: "disk",
  title: "disk image (GPT, partitions, BIOS boot code)",
  version: STAGE_VERSIONS.disk,
  tools: [],
  key: (i) => ({ plan: planKey(i.plan), esp: i.esp, usr: i.usr, oem: i.oem, root: i.root }),
  async run(input, ctx) {
    await assembleDisk({
      out: join(ctx.outDir, "disk.raw"),
      plan: input.plan,
      images: {
        esp: input.esp.path(input.esp.value.image),
        biosCore: readFileSync(input.esp.path(input.esp.value.biosCore)),
        biosBoot: readFileSync(input.esp.path(input.esp.value.biosBoot)),
        usrA: input.usr.path(input.usr.value.image),
        oem: input.oem.path(input.oem.value.image),
        root: input.root.path(input.root.value.image),
      },
    });
    return { image: "disk.raw" };
  },
};
