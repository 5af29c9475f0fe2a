/**
 * Disk image formats for hypervisors and clouds (image_to_vm): qemu-img for
 * qcow2, vmdk, vhd and vhdx; GCE wants a gzipped tar holding `disk.raw`.
 * Outputs are written to a temp name and renamed.
 */
import { mkdtempSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { SlipwayError } from "../errors.ts";
import { exec } from "./exec.ts";
import { TOOLS } from "./host-tools.ts";

export const IMAGE_FORMATS = ["raw", "qcow2", "vmdk", "vhd", "vhdx", "gce"] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export const FORMAT_TOOLS = [TOOLS.qemuImg, TOOLS.tar];

/** qemu-img arguments per format: the variants the platforms accept. */
const QEMU_IMG: Record<Exclude<ImageFormat, "gce" | "raw">, string[]> = {
  qcow2: ["-O", "qcow2", "-o", "compat=1.1"],
  // VMware and vSphere import stream-optimized VMDKs.
  vmdk: ["-O", "vmdk", "-o", "subformat=streamOptimized"],
  // Azure wants fixed VHDs with the exact (MiB-aligned) size.
  vhd: ["-O", "vpc", "-o", "subformat=fixed,force_size"],
  vhdx: ["-O", "vhdx", "-o", "subformat=dynamic"],
};

export function isImageFormat(s: string): s is ImageFormat {
  return (IMAGE_FORMATS as readonly string[]).includes(s);
}

export async function convertImage(raw: string, out: string, format: ImageFormat): Promise<void> {
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    if (format === "raw") {
      await exec("cp", ["--sparse=always", "--reflink=auto", raw, tmp]);
    } else if (format === "gce") {
      // GCE: a tar (oldgnu, sparse) whose only member is named disk.raw, gzipped.
      const dir = mkdtempSync(join(dirname(out), ".gce-"));
      try {
        symlinkSync(raw, join(dir, "disk.raw"));
        await exec("tar", ["--format=oldgnu", "-S", "-h", "-czf", tmp, "-C", dir, "disk.raw"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } else {
      await exec("qemu-img", ["convert", "-f", "raw", ...QEMU_IMG[format], raw, tmp]);
    }
    renameSync(tmp, out);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new SlipwayError(`converting to ${format} failed: ${(err as Error).message}`, {
      where: out,
      cause: err,
    });
  }
}

/** File name extension of a format's output. */
export function formatExtension(format: ImageFormat): string {
  return format === "gce" ? "tar.gz" : format;
}
