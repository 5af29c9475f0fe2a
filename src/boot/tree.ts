/**
 * What a Debian tree needs to boot in the CoreOS layout, applied by the
 * customize stage before the /usr image and the ROOT image are made:
 * - the kernel moves into /usr (usr/lib/modules/<kver>/vmlinuz) so a /usr
 *   image carries its own kernel (and initrd, see installInitrdInTree);
 * - /boot becomes the ESP's mount point, /oem the OEM partition's;
 * - /etc/fstab names partitions by label (one fstab for every disk copy)
 *   and asks systemd-growfs to grow ROOT;
 * - systemd-repart grows ROOT (type coreos-resize) into a larger disk;
 * - machine-id is "uninitialized" so the first boot is a first boot, and
 *   the interactive systemd-firstboot prompt is masked (it would hang).
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PARTITION_TYPES } from "../disk/layout.ts";
import { InputError } from "../errors.ts";
import { kernelVersionOf } from "./initrd.ts";

export interface PrepareTreeOptions {
  /** Kernel version; default: the only one installed. */
  kver?: string;
  /** Largest size ROOT may grow to; default: the whole disk. */
  rootMaxSize?: string;
  /** Keep the interactive first-boot wizard (default: masked). */
  keepFirstbootWizard?: boolean;
}

export interface PreparedTree {
  kver: string;
  /** The kernel inside the tree, for the ESP: usr/lib/modules/<kver>/vmlinuz. */
  kernelPath: string;
}

export const ROOT_REPART_CONF = "usr/lib/repart.d/50-slipway-root.conf";

export function fstabContent(): string {
  return [
    "# Slipway layout: partitions by GPT label. /usr is mounted by the initrd (mount.usr=).",
    "PARTLABEL=ROOT / ext4 defaults,x-systemd.growfs 0 0",
    "PARTLABEL=EFI-SYSTEM /boot vfat umask=0077,nofail,x-systemd.automount,x-systemd.idle-timeout=60 0 0",
    "PARTLABEL=OEM /oem ext4 nodev,nosuid,nofail 0 0",
    "",
  ].join("\n");
}

export function rootRepartContent(maxSize?: string): string {
  return [
    "# Grow ROOT (the last partition) into the free space of a larger disk on first boot.",
    "[Partition]",
    `Type=${PARTITION_TYPES.coreosResize}`,
    ...(maxSize ? [`SizeMaxBytes=${maxSize}`] : []),
    "",
  ].join("\n");
}

export async function prepareTreeForLayout(
  rootDir: string,
  opts: PrepareTreeOptions = {},
): Promise<PreparedTree> {
  if (!existsSync(join(rootDir, "usr")))
    throw new InputError("not a rootfs tree (no usr/)", { where: rootDir });
  const kver = await kernelVersionOf(rootDir, opts.kver);
  const kernelPath = join(rootDir, "usr/lib/modules", kver, "vmlinuz");
  const bootKernel = join(rootDir, "boot", `vmlinuz-${kver}`);
  if (!existsSync(kernelPath)) {
    if (!existsSync(bootKernel))
      throw new InputError(`no kernel image for ${kver}`, { where: join(rootDir, "boot") });
    await copyFile(bootKernel, kernelPath);
  }
  // /boot is the ESP's mount point now: Debian's kernel, generic initrd and
  // their top-level links would only shadow it and waste ROOT space.
  const boot = join(rootDir, "boot");
  if (existsSync(boot)) {
    for (const e of await readdir(boot)) await rm(join(boot, e), { recursive: true, force: true });
  }
  for (const link of ["vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"]) {
    await rm(join(rootDir, link), { force: true });
  }
  await mkdir(boot, { recursive: true });
  await mkdir(join(rootDir, "oem"), { recursive: true });

  await writeFile(join(rootDir, "etc/fstab"), fstabContent());
  await mkdir(join(rootDir, "usr/lib/repart.d"), { recursive: true });
  await writeFile(join(rootDir, ROOT_REPART_CONF), rootRepartContent(opts.rootMaxSize));
  await writeFile(join(rootDir, "etc/machine-id"), "uninitialized\n");
  if (!opts.keepFirstbootWizard) {
    const mask = join(rootDir, "etc/systemd/system/systemd-firstboot.service");
    await mkdir(join(rootDir, "etc/systemd/system"), { recursive: true });
    await rm(mask, { force: true });
    await symlink("/dev/null", mask);
  }
  return { kver, kernelPath };
}

/** Put the initrd next to the kernel inside /usr, so a /usr image is self-contained. */
export async function installInitrdInTree(
  rootDir: string,
  kver: string,
  initrd: string,
): Promise<string> {
  const dest = join(rootDir, "usr/lib/modules", kver, "initrd.img");
  await copyFile(initrd, dest);
  return dest;
}
