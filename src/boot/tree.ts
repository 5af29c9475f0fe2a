/**
 * What a Debian tree needs to boot in the CoreOS layout, applied by the
 * customize stage before the /usr image and the ROOT image are made:
 * - the kernel moves into /usr (usr/lib/modules/<kver>/vmlinuz) so a /usr
 *   image carries its own kernel (and initrd, see installInitrdInTree);
 * - /boot becomes the ESP's mount point, /oem the OEM partition's;
 * - /etc/fstab names partitions by label (one fstab for every disk copy)
 *   and asks systemd-growfs to grow ROOT;
 * - systemd-repart grows ROOT (type coreos-resize) into a larger disk, and
 *   systemd-growfs its filesystem, only on the boots where there is room
 *   (a first boot on a larger disk, or the disk grew since): a check in
 *   shell builtins skips both on the everyday boot;
 * - e2scrub_reap runs only when there are e2scrub snapshots to reap: its
 *   mount namespace would mount the /boot automount on every boot;
 * - machine-id is "uninitialized" so the first boot is a first boot, and
 *   the interactive systemd-firstboot prompt is masked (it would hang).
 */
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
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
export const ROOT_GROWTH_SCRIPT = "usr/lib/slipway/root-growth";
const UNITS = "usr/lib/systemd/system";
export const REPART_DROP_IN = `${UNITS}/systemd-repart.service.d/50-slipway-when-room.conf`;
export const GROWFS_ROOT_DROP_IN = `${UNITS}/systemd-growfs-root.service.d/50-slipway-when-grown.conf`;
export const E2SCRUB_REAP_DROP_IN = `${UNITS}/e2scrub_reap.service.d/50-slipway-when-snapshots.conf`;
/** Where root-growth notes the ROOT size (512-byte sectors) its filesystem was last grown to. */
export const ROOT_GROWN_RECORD = "/var/lib/slipway/root-filesystem-sectors";
/** Unallocated space after ROOT below which repart is not started: the image's own end slack. */
export const ROOT_GROWTH_MIN_SECTORS = 4096;

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

/**
 * `root-growth can-grow|fs-behind|record`, the ExecCondition= of systemd-repart and
 * systemd-growfs-root (exit 0 runs the unit, 1 skips it). It runs on every boot, so only
 * shell builtins and sysfs: ROOT is the partition mounted at /, found in mountinfo.
 */
export function rootGrowthScript(): string {
  return `#!/bin/sh
# Is ROOT's growth due? ExecCondition= of systemd-repart and systemd-growfs-root.
#   can-grow   more than ${ROOT_GROWTH_MIN_SECTORS} sectors unallocated after ROOT (a first boot on a
#              larger disk, or the disk grew since): repart has work to do
#   fs-behind  ROOT's size differs from the one its filesystem was last grown to
#   record     note ROOT's size as grown to (after systemd-growfs succeeded)
# Exit 0: run the unit; 1: skip it. Not a partition we can read: 0, the unit decides.
devno=
while read -r _id _parent dev root mnt _rest; do
  if [ "$root" = / ] && [ "$mnt" = / ]; then devno=$dev; break; fi
done < /proc/self/mountinfo
part=/sys/dev/block/$devno
[ -n "$devno" ] && [ -r "$part/start" ] && [ -r "$part/../size" ] || exit 0
read -r start < "$part/start"
read -r size < "$part/size"
record=${ROOT_GROWN_RECORD}
case "$1" in
  can-grow)
    read -r disk < "$part/../size"
    [ $((disk - start - size)) -gt ${ROOT_GROWTH_MIN_SECTORS} ] ;;
  fs-behind)
    grown=
    if [ -r "$record" ]; then read -r grown < "$record" || true; fi
    [ "$grown" != "$size" ] ;;
  record)
    [ -d "\${record%/*}" ] || mkdir -p "\${record%/*}"
    echo "$size" > "$record" ;;
  *) echo "usage: $0 can-grow|fs-behind|record" >&2; exit 2 ;;
esac
`;
}

export function repartDropIn(): string {
  return [
    "# Slipway: repartition only when ROOT has room to grow; on the everyday boot",
    "# systemd-repart would read the whole partition table to say 'No changes'.",
    "[Service]",
    `ExecCondition=/${ROOT_GROWTH_SCRIPT} can-grow`,
    "",
  ].join("\n");
}

export function growfsRootDropIn(): string {
  return [
    "# Slipway: grow the filesystem only when ROOT grew since it was last grown",
    "# (repart just grew it, or a boot stopped between the two).",
    "[Service]",
    `ExecCondition=/${ROOT_GROWTH_SCRIPT} fs-behind`,
    `ExecStartPost=/${ROOT_GROWTH_SCRIPT} record`,
    "",
  ].join("\n");
}

export function e2scrubReapDropIn(): string {
  return [
    "# Slipway: e2scrub_all -r reaps leftover e2scrub LVM snapshots and exits when there are",
    "# none. Checking for them here saves starting it, and its ProtectSystem= mount namespace",
    "# mounts every automount point, the ESP at /boot included, on every boot.",
    "[Unit]",
    "ConditionPathExistsGlob=/dev/mapper/*.e2scrub*",
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
  await writeTreeFile(rootDir, ROOT_GROWTH_SCRIPT, rootGrowthScript(), 0o755);
  await writeTreeFile(rootDir, REPART_DROP_IN, repartDropIn());
  await writeTreeFile(rootDir, GROWFS_ROOT_DROP_IN, growfsRootDropIn());
  await writeTreeFile(rootDir, E2SCRUB_REAP_DROP_IN, e2scrubReapDropIn());
  await writeFile(join(rootDir, "etc/machine-id"), "uninitialized\n");
  if (!opts.keepFirstbootWizard) {
    const mask = join(rootDir, "etc/systemd/system/systemd-firstboot.service");
    await mkdir(join(rootDir, "etc/systemd/system"), { recursive: true });
    await rm(mask, { force: true });
    await symlink("/dev/null", mask);
  }
  return { kver, kernelPath };
}

async function writeTreeFile(rootDir: string, rel: string, text: string, mode = 0o644) {
  const p = join(rootDir, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, text);
  await chmod(p, mode);
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
