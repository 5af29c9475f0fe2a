/**
 * Where the agent finds the host's parts. On a real host everything hangs off
 * `/`: slots are /dev/disk/by-partlabel/USR-A|B, the ESP is the EFI-SYSTEM
 * partition edited with mtools. Tests pass a root prefix holding image files
 * (or an ESP directory) at the same relative paths.
 */
import { readlinkSync, realpathSync } from "node:fs";
import { basename, join } from "node:path";
import type { SlotName } from "../boot/slots.ts";

export interface HostLayout {
  root: string;
  /** Block device (or image file) of each USR slot. */
  slots: Record<SlotName, string>;
  /** The ESP: a FAT partition/image (edited with mtools) or a directory. */
  esp: string;
  /** Whole disk holding the GPT mirror of the slot state; undefined = no mirror. */
  disk: string | undefined;
  /** Kernel command line (says which slot GRUB booted: slipway.slot=A). */
  cmdline: string;
  /** os-release of the running /usr (VERSION_ID is the running version). */
  osRelease: string;
  stateDir: string;
  socketPath: string;
  /**
   * Health checks: vendor checks shipped in /usr, then the host's in /etc; an /etc check
   * with the same name replaces the vendor one (a non-executable or /dev/null link disables it).
   */
  healthDirs: string[];
  utmp: string;
}

export interface LayoutOverrides {
  disk?: string;
  esp?: string;
}

export function hostLayout(root = "/", o: LayoutOverrides = {}): HostLayout {
  const r = (p: string) => join(root, p);
  return {
    root,
    slots: { A: r("dev/disk/by-partlabel/USR-A"), B: r("dev/disk/by-partlabel/USR-B") },
    esp: o.esp ? r(o.esp) : r("dev/disk/by-partlabel/EFI-SYSTEM"),
    disk: o.disk
      ? r(o.disk)
      : root === "/"
        ? wholeDiskOf(r("dev/disk/by-partlabel/USR-A"))
        : undefined,
    cmdline: r("proc/cmdline"),
    osRelease: r("usr/lib/os-release"),
    stateDir: r("var/lib/slipway"),
    socketPath: r("run/slipway/agent.sock"),
    healthDirs: [r("usr/lib/slipway/health.d"), r("etc/slipway/health.d")],
    utmp: r("run/utmp"),
  };
}

/**
 * The whole disk a partition lives on, from sysfs: /dev/vda3 → /dev/vda
 * (its /sys/class/block entry is a child of the disk's). Undefined when it
 * cannot be told; the agent then keeps no GPT mirror.
 */
export function wholeDiskOf(partition: string): string | undefined {
  try {
    const dev = basename(realpathSync(partition));
    const sys = readlinkSync(`/sys/class/block/${dev}`);
    const parent = basename(join(sys, ".."));
    return parent === "block" ? undefined : `/dev/${parent}`;
  } catch {
    return undefined;
  }
}
