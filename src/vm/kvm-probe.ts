/**
 * Is KVM usable here? /dev/kvm can exist while KVM guests hang (seen on this
 * project's build host: SeaBIOS alone runs under KVM, yet the Linux guest
 * never prints a line), so we only trust KVM after a probe boots a real
 * kernel: the disk about to be run must print "Linux version" on its serial
 * console under KVM within a short time. The answer is cached per host
 * kernel and QEMU binary; without a disk to probe with, KVM is not used.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { dirname } from "node:path";

export const KVM_PROBE_CACHE = "/var/tmp/slipway-kvm-probe.json";
const PROBE_TIMEOUT_MS = 45_000;

function cacheKey(): string {
  let qemu = "missing";
  try {
    qemu = String(statSync("/usr/bin/qemu-system-x86_64").mtimeMs);
  } catch {}
  return `${release()} qemu@${qemu}`;
}

export async function kvmUsable(
  opts: { cacheFile?: string; refresh?: boolean; disk?: string; format?: string } = {},
): Promise<boolean> {
  const file = opts.cacheFile ?? KVM_PROBE_CACHE;
  if (!existsSync("/dev/kvm")) return false;
  const key = cacheKey();
  if (!opts.refresh && existsSync(file)) {
    try {
      const c = JSON.parse(readFileSync(file, "utf8")) as { key?: string; usable?: boolean };
      if (c.key === key && typeof c.usable === "boolean") return c.usable;
    } catch {}
  }
  if (!opts.disk) return false;
  const usable = await probe(opts.disk, opts.format ?? "raw");
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify({ key, usable, probedAt: new Date().toISOString() })}\n`);
  return usable;
}

/** Boot `disk` under KVM (BIOS, writes discarded): its kernel must reach the serial console. */
async function probe(disk: string, format: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const child = spawn(
      "qemu-system-x86_64",
      [
        "-accel",
        "kvm",
        "-M",
        "q35",
        "-m",
        "1024",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-drive",
        `if=virtio,file=${disk},format=${format},snapshot=on`,
        "-no-reboot",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let out = "";
    const proven = () => /Linux version \d/.test(out);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString("latin1");
      if (proven()) done(true);
    });
    child.on("error", () => done(false));
    child.on("exit", () => done(proven()));
  });
}
