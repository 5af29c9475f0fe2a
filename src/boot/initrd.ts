/**
 * A trimmed dracut initrd built inside the image's own tree (chroot), so its
 * systemd, kernel modules and libraries match the image. Debian's generic
 * initrd is 39 MiB and costs seconds of GRUB load under TCG; this one holds
 * what our layout needs: systemd, udev, ext4 root, erofs /usr from
 * `mount.usr=`, optionally dm-verity. Other dracut modules (e.g. ignition)
 * are added by name.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { InputError } from "../errors.ts";
import { runTool } from "./tool.ts";

export const BASE_DRACUT_MODULES = [
  "systemd",
  "systemd-initrd",
  "dracut-systemd",
  "systemd-udevd",
  "udev-rules",
  "base",
  "fs-lib",
  "rootfs-block",
  "kernel-modules",
];

/** Storage for VMs and common hardware, plus the filesystems of the layout. */
export const BASE_DRIVERS = [
  "virtio_blk",
  "virtio_scsi",
  "virtio_pci",
  "sd_mod",
  "sr_mod",
  "ahci",
  "ata_piix",
  "nvme",
  "xhci_pci",
  "usb_storage",
  "erofs",
  "ext4",
];

export interface InitrdOptions {
  /** The image's rootfs tree (dracut runs chrooted into it). */
  tree: string;
  /** Where the initrd goes on the build host. */
  out: string;
  /** Kernel version; default: the only one under usr/lib/modules. */
  kver?: string;
  /**
   * dm-verity support for /usr: true requires it (needs systemd-cryptsetup in
   * the image), "auto" (default) includes it when the image has it. It only
   * acts when the command line carries usrhash=.
   */
  verity?: boolean | "auto";
  /** More dracut modules, e.g. ["ignition"]. */
  extraModules?: string[];
  extraDrivers?: string[];
  /** SOURCE_DATE_EPOCH for a reproducible cpio. */
  timestamp?: number;
}

export interface InitrdResult {
  path: string;
  kver: string;
  modules: string[];
}

export async function kernelVersionOf(tree: string, kver?: string): Promise<string> {
  const dir = join(tree, "usr/lib/modules");
  const all = existsSync(dir) ? await readdir(dir) : [];
  if (kver !== undefined) {
    if (!all.includes(kver))
      throw new InputError(`kernel ${kver} is not installed`, { where: dir });
    return kver;
  }
  if (all.length !== 1) {
    throw new InputError(
      `expected one kernel under usr/lib/modules, found ${all.length} (${all.join(", ")})`,
      {
        where: tree,
      },
    );
  }
  return all[0]!;
}

export async function buildInitrd(opts: InitrdOptions): Promise<InitrdResult> {
  const kver = await kernelVersionOf(opts.tree, opts.kver);
  const modules = [...BASE_DRACUT_MODULES];
  const drivers = [...BASE_DRIVERS, ...(opts.extraDrivers ?? [])];
  const hasVerity = existsSync(join(opts.tree, "usr/lib/systemd/systemd-veritysetup"));
  const verity = opts.verity ?? "auto";
  if (verity === true || (verity === "auto" && hasVerity)) {
    if (!hasVerity) {
      throw new InputError(
        "dm-verity needs systemd-veritysetup in the image: add the systemd-cryptsetup package",
        {
          where: opts.tree,
        },
      );
    }
    modules.push("dm", "systemd-veritysetup");
    drivers.push("dm_verity");
  }
  modules.push(...(opts.extraModules ?? []));
  const inTree = "/tmp/slipway-initrd.img";
  await withChrootMounts(opts.tree, async () => {
    await runTool(
      "chroot",
      [
        opts.tree,
        "dracut",
        "--force",
        "--quiet",
        "--no-hostonly",
        "--no-hostonly-cmdline",
        "--reproducible",
        "--compress",
        "zstd",
        "--kver",
        kver,
        "--modules",
        modules.join(" "),
        "--drivers",
        drivers.join(" "),
        inTree,
      ],
      {
        where: `initrd (${opts.tree})`,
        env: { SOURCE_DATE_EPOCH: String(Math.floor(opts.timestamp ?? 0)) },
      },
    );
  });
  await mkdir(dirname(opts.out), { recursive: true });
  const built = join(opts.tree, inTree);
  await rename(built, opts.out).catch(async () => {
    await copyFile(built, opts.out);
    await rm(built, { force: true });
  });
  return { path: opts.out, kver, modules };
}

/**
 * Unmount whatever is mounted at or below `dir` (deepest first): bind mounts
 * left by a killed build must go before anyone deletes the tree, or the
 * delete would reach into the host's /dev and /sys.
 */
export async function unmountUnder(dir: string): Promise<void> {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  const mounts = (await readFile("/proc/mounts", "utf8"))
    .split("\n")
    .map((l) => (l.split(" ")[1] ?? "").replace(/\\040/g, " "))
    .filter((m) => m === dir || m.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    await runTool("umount", [m]).catch(() => runTool("umount", ["-l", m]));
  }
}

/** Run `fn` with /proc, /sys and /dev bound into the tree; always unmount. */
export async function withChrootMounts<T>(tree: string, fn: () => Promise<T>): Promise<T> {
  const mounted: string[] = [];
  await unmountUnder(tree);
  try {
    for (const d of ["proc", "sys", "dev"]) {
      const target = join(tree, d);
      await mkdir(target, { recursive: true });
      await runTool("mount", ["--bind", `/${d}`, target], { where: target });
      mounted.push(target);
    }
    return await fn();
  } finally {
    for (const target of mounted.reverse()) {
      await runTool("umount", [target]).catch(() => runTool("umount", ["-l", target]));
    }
  }
}
