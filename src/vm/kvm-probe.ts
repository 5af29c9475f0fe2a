/**
 * Is KVM usable here? /dev/kvm can exist while KVM guests hang (seen on this
 * project's build host), so we only trust KVM after a probe: SeaBIOS under
 * KVM must reach its boot attempt within a few seconds. The answer is cached
 * per host kernel and QEMU binary.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { dirname } from "node:path";

export const KVM_PROBE_CACHE = "/var/tmp/slipway-kvm-probe.json";
const PROBE_TIMEOUT_MS = 8000;

function cacheKey(): string {
  let qemu = "missing";
  try {
    qemu = String(statSync("/usr/bin/qemu-system-x86_64").mtimeMs);
  } catch {}
  return `${release()} qemu@${qemu}`;
}

export async function kvmUsable(
  opts: { cacheFile?: string; refresh?: boolean } = {},
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
  const usable = await probe();
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify({ key, usable, probedAt: new Date().toISOString() })}\n`);
  return usable;
}

/** Boot SeaBIOS with no disk under KVM: it must print that nothing is bootable. */
async function probe(): Promise<boolean> {
  return await new Promise((resolve) => {
    const child = spawn(
      "qemu-system-x86_64",
      [
        "-accel",
        "kvm",
        "-M",
        "q35",
        "-m",
        "128",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "none",
        "-chardev",
        "stdio,id=dbg",
        "-device",
        "isa-debugcon,iobase=0x402,chardev=dbg",
        "-no-reboot",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let out = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString("latin1");
      if (/No bootable device|Booting from/.test(out)) done(true);
    });
    child.on("error", () => done(false));
    child.on("exit", () => done(/No bootable device|Booting from/.test(out)));
  });
}
