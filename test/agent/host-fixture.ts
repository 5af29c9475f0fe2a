/**
 * A directory standing in for a host: slot image files at
 * dev/disk/by-partlabel/USR-A|B, an ESP (directory or FAT image edited with
 * mtools), a whole-disk image with the GPT mirror, kernel command line,
 * os-release, machine id and update.conf. `reboot()` plays GRUB: picks the
 * slot from the grubenv, consumes a try and "boots" it.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GRUBENV_PATH } from "../../src/agent/bootstate.ts";
import { encodeGrubEnv, parseGrubEnv } from "../../src/boot/grubenv.ts";
import {
  type BootState,
  bootStateFromEnv,
  bootStateToEnv,
  initialBootState,
  type SlotName,
  simulateBootAttempt,
} from "../../src/boot/slots.ts";
import { createGpt, writeGpt } from "../../src/disk/gpt.ts";

export interface HostFixture {
  root: string;
  slotPath(slot: SlotName): string;
  espKind: "dir" | "fat";
  readEsp(path: string): Buffer | undefined;
  bootState(): BootState;
  /** Versions installed per slot, as the test knows them. */
  slotVersion: Record<SlotName, string>;
  writeConf(lines: string[]): void;
  /** GRUB's choice at the next boot; returns the booted slot. */
  reboot(): SlotName;
  cleanup(): void;
}

const SLOT_BYTES = 4 * 1024 * 1024;

export function makeHost(
  opts: { espKind?: "dir" | "fat"; version?: string; slotBytes?: number } = {},
): HostFixture {
  const root = mkdtempSync(join(process.env.SLIPWAY_TMP ?? tmpdir(), "slipway-agent-host-"));
  const espKind = opts.espKind ?? "dir";
  const slotBytes = opts.slotBytes ?? SLOT_BYTES;
  const parts = join(root, "dev/disk/by-partlabel");
  mkdirSync(parts, { recursive: true });
  writeFileSync(join(parts, "USR-A"), randomBytes(slotBytes));
  writeFileSync(join(parts, "USR-B"), Buffer.alloc(slotBytes));
  const esp = join(parts, "EFI-SYSTEM");
  const env = encodeGrubEnv(bootStateToEnv(initialBootState()));
  if (espKind === "dir") {
    mkdirSync(join(esp, "slipway/grub"), { recursive: true });
    writeFileSync(join(esp, GRUBENV_PATH), env);
  } else {
    execFileSync("mkfs.fat", ["-C", esp, String(32 * 1024)], { stdio: "ignore" });
    const mt = { env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } };
    execFileSync("mmd", ["-i", esp, "::/slipway", "::/slipway/grub"], mt);
    const tmp = join(root, "grubenv.tmp");
    writeFileSync(tmp, env);
    execFileSync("mcopy", ["-i", esp, tmp, `::${GRUBENV_PATH}`], mt);
    rmSync(tmp);
  }
  // Whole disk with the GPT mirror (only the table matters to the agent).
  const disk = join(root, "disk.img");
  writeFileSync(disk, Buffer.alloc(0));
  execFileSync("truncate", ["-s", "64M", disk]);
  const table = createGpt(disk);
  const guid = (n: number) =>
    `5dfbf5f4-2848-4bac-aa5e-0d9a20b745${n.toString(16).padStart(2, "0")}`;
  table.partitions.push(
    {
      number: 3,
      label: "USR-A",
      typeGuid: "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6",
      uniqueGuid: guid(3),
      firstLba: 4096n,
      lastLba: 4096n + 16383n,
      attributes: 0n,
    },
    {
      number: 4,
      label: "USR-B",
      typeGuid: "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6",
      uniqueGuid: guid(4),
      firstLba: 20480n,
      lastLba: 20480n + 16383n,
      attributes: 0n,
    },
  );
  writeGpt(disk, table);
  mkdirSync(join(root, "proc/sys/kernel/random"), { recursive: true });
  writeFileSync(
    join(root, "proc/sys/kernel/random/boot_id"),
    "0b7e5d6c-1111-4222-8333-944455556666\n",
  );
  mkdirSync(join(root, "usr/lib"), { recursive: true });
  mkdirSync(join(root, "etc/slipway"), { recursive: true });
  mkdirSync(join(root, "usr/share/slipway"), { recursive: true });
  writeFileSync(join(root, "etc/machine-id"), `${randomBytes(16).toString("hex")}\n`);
  const slotVersion: Record<SlotName, string> = { A: opts.version ?? "1.0.0", B: "" };
  const boot = (slot: SlotName) => {
    writeFileSync(join(root, "proc/cmdline"), `root=PARTUUID=x rw slipway.slot=${slot} quiet\n`);
    writeFileSync(
      join(root, "usr/lib/os-release"),
      `ID=slipway\nVERSION_ID=${slotVersion[slot]}\n`,
    );
  };
  boot("A");
  const readEsp = (path: string): Buffer | undefined => {
    if (espKind === "dir") {
      try {
        return readFileSync(join(esp, path));
      } catch {
        return undefined;
      }
    }
    try {
      return execFileSync("mtype", ["-i", esp, `::${path}`], {
        env: { ...process.env, MTOOLS_SKIP_CHECK: "1" },
        stdio: ["ignore", "pipe", "ignore"],
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch {
      return undefined;
    }
  };
  const writeEsp = (path: string, data: Buffer) => {
    if (espKind === "dir") {
      writeFileSync(join(esp, path), data);
      return;
    }
    const tmp = join(root, "esp.tmp");
    writeFileSync(tmp, data);
    execFileSync("mcopy", ["-o", "-i", esp, tmp, `::${path}`], {
      env: { ...process.env, MTOOLS_SKIP_CHECK: "1" },
    });
    rmSync(tmp);
  };
  const bootState = () => bootStateFromEnv(parseGrubEnv(readEsp(GRUBENV_PATH)!));
  return {
    root,
    espKind,
    slotPath: (slot) => join(parts, `USR-${slot}`),
    readEsp,
    bootState,
    slotVersion,
    writeConf(lines) {
      writeFileSync(join(root, "etc/slipway/update.conf"), `${lines.join("\n")}\n`);
    },
    reboot() {
      const env = parseGrubEnv(readEsp(GRUBENV_PATH)!);
      const { slot, next } = simulateBootAttempt(bootStateFromEnv(env));
      if (slot === undefined) throw new Error("GRUB found no bootable slot");
      writeEsp(GRUBENV_PATH, encodeGrubEnv(bootStateToEnv(next, env)));
      writeFileSync(join(root, "proc/sys/kernel/random/boot_id"), `${randomUUID()}\n`);
      boot(slot);
      return slot;
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
