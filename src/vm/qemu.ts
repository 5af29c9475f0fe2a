/**
 * QEMU runner for Slipway disks: q35, UEFI (OVMF with a private copy of the
 * variable store) or BIOS (SeaBIOS), `-snapshot` unless asked otherwise,
 * optional disk growth, serial console to the terminal or to a callback and
 * log file, user networking with `restrict=on` and only explicit forwards to
 * 127.0.0.1. TCG unless a KVM probe has shown KVM guests boot here.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, type WriteStream } from "node:fs";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runTool } from "../boot/tool.ts";
import { InputError, SlipwayError } from "../errors.ts";
import { kvmUsable } from "./kvm-probe.ts";

export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

export type Firmware = "uefi" | "bios";
export type Accel = "auto" | "tcg" | "kvm";

export interface PortForward {
  hostPort: number;
  guestPort: number;
}

/** Per-connection connector for guest forwards (Debian package `socat`). */
export const GUESTFWD_CONNECTOR = "socat";

export interface GuestForward {
  /** Address and port the guest connects to (e.g. 10.0.2.100:8080). */
  guestAddr: string;
  guestPort: number;
  /** Port on 127.0.0.1 the connection goes to. */
  hostPort: number;
}

export interface QemuOptions {
  disk: string;
  firmware?: Firmware;
  memoryMiB?: number;
  cpus?: number;
  /** Discard guest writes (default true). */
  snapshot?: boolean;
  /** Grow the guest's disk to this many bytes (an overlay when snapshotting). */
  diskSize?: bigint;
  accel?: Accel;
  /** "terminal": serial on this terminal (Ctrl-A X quits); "capture": lines to onLine/consoleLog. */
  console?: "terminal" | "capture";
  consoleLog?: string;
  onLine?: (line: string) => void;
  hostForwards?: PortForward[];
  guestForwards?: GuestForward[];
  /** QEMU fw_cfg entries, e.g. opt/com.coreos/config for Ignition. */
  fwCfg?: { name: string; file: string }[];
  extraArgs?: string[];
}

export interface QemuMachine {
  readonly accel: "tcg" | "kvm";
  /** Every console line so far (ANSI escapes removed). */
  readonly lines: string[];
  /** Resolves when QEMU exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Wait for a console line matching `re`; rejects on timeout or QEMU exit. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string>;
  /** ACPI power button, then kill after `graceMs`. */
  shutdown(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
}

/** Strip terminal escapes and carriage returns from a console line. */
export function cleanConsoleLine(s: string): string {
  return s.replace(/\x1b\[[0-9;?!]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r/g, "");
}

/** Parse a size like 8G, 512M, 1T or plain bytes. */
export function parseSize(s: string, where = "size"): bigint {
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(s.trim());
  if (!m) throw new InputError(`not a size: ${JSON.stringify(s)} (e.g. 8G, 512M)`, { where });
  const unit = (m[2] ?? "").toUpperCase()[0] ?? "";
  const mult = { "": 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n }[unit];
  return BigInt(m[1]!) * mult!;
}

export async function startQemu(opts: QemuOptions): Promise<QemuMachine> {
  const disk = resolve(opts.disk);
  if (!existsSync(disk)) throw new InputError("disk image does not exist", { where: disk });
  const work = await mkdtemp(join(tmpdir(), "slipway-qemu-"));
  const cleanup = () => rm(work, { recursive: true, force: true });
  try {
    const firmware = opts.firmware ?? "uefi";
    const snapshot = opts.snapshot ?? true;
    const format = (
      await runTool("qemu-img", ["info", "--output=json", disk], { where: disk })
    ).includes('"format": "qcow2"')
      ? "qcow2"
      : "raw";
    let drive = disk;
    let driveFormat = format;
    let useSnapshotFlag = snapshot;
    if (opts.diskSize !== undefined) {
      if (snapshot) {
        // A throwaway overlay gives the guest a larger disk without touching the image.
        drive = join(work, "overlay.qcow2");
        driveFormat = "qcow2";
        useSnapshotFlag = false;
        await runTool("qemu-img", [
          "create",
          "-q",
          "-f",
          "qcow2",
          "-b",
          disk,
          "-F",
          format,
          drive,
          String(opts.diskSize),
        ]);
      } else {
        await runTool("qemu-img", ["resize", "-q", "-f", format, disk, String(opts.diskSize)], {
          where: disk,
        });
      }
    }
    const accel = await chooseAccel(opts.accel ?? "auto", disk, format);
    const args = [
      "-accel",
      accel,
      "-M",
      "q35",
      ...(accel === "kvm" ? ["-cpu", "host"] : []),
      "-m",
      String(opts.memoryMiB ?? 2048),
      "-smp",
      String(opts.cpus ?? 2),
      "-no-user-config",
      "-nodefaults",
      "-display",
      "none",
      "-serial",
      (opts.console ?? "capture") === "terminal" ? "mon:stdio" : "stdio",
      "-qmp",
      `unix:${join(work, "qmp.sock")},server=on,wait=off`,
      "-drive",
      `if=virtio,file=${drive},format=${driveFormat}`,
      "-device",
      "virtio-rng-pci",
      ...netArgs(opts),
    ];
    if (useSnapshotFlag) args.push("-snapshot");
    if (firmware === "uefi") {
      const vars = join(work, "OVMF_VARS.fd");
      await copyFile(OVMF_VARS, vars);
      args.push(
        "-drive",
        `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
        "-drive",
        `if=pflash,format=raw,unit=1,file=${vars}`,
      );
    }
    for (const f of opts.fwCfg ?? [])
      args.push("-fw_cfg", `name=${f.name},file=${resolve(f.file)}`);
    args.push(...(opts.extraArgs ?? []));
    return launch(args, accel, work, cleanup, opts);
  } catch (e) {
    await cleanup();
    throw e;
  }
}

function netArgs(opts: QemuOptions): string[] {
  let netdev = "user,id=net0,restrict=on";
  for (const f of opts.hostForwards ?? []) {
    netdev += `,hostfwd=tcp:127.0.0.1:${port(f.hostPort)}-:${port(f.guestPort)}`;
  }
  for (const f of opts.guestForwards ?? []) {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(f.guestAddr))
      throw new InputError(`guest address ${f.guestAddr} is not IPv4`);
    // A `tcp:` chardev connects once and serves a single guest connection; `cmd:` spawns the
    // connector for every connection the guest opens (HTTP clients open many).
    netdev += `,guestfwd=tcp:${f.guestAddr}:${port(f.guestPort)}-cmd:${GUESTFWD_CONNECTOR} STDIO TCP:127.0.0.1:${port(f.hostPort)}`;
  }
  return ["-netdev", netdev, "-device", "virtio-net-pci,netdev=net0"];
}

function port(p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InputError(`port ${p} is out of range`);
  return p;
}

async function chooseAccel(a: Accel, disk: string, format: string): Promise<"tcg" | "kvm"> {
  if (a === "tcg") return "tcg";
  const ok = await kvmUsable({ disk, format });
  if (a === "kvm" && !ok)
    throw new SlipwayError("KVM was asked for, but KVM guests do not boot on this host");
  return ok ? "kvm" : "tcg";
}

function launch(
  args: string[],
  accel: "tcg" | "kvm",
  work: string,
  cleanup: () => Promise<void>,
  opts: QemuOptions,
): QemuMachine {
  const terminal = (opts.console ?? "capture") === "terminal";
  const child: ChildProcess = spawn("qemu-system-x86_64", args, {
    stdio: terminal ? "inherit" : ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters = new Set<{ re: RegExp; resolve: (line: string) => void }>();
  let log: WriteStream | undefined;
  if (opts.consoleLog) log = createWriteStream(opts.consoleLog);
  let partial = "";
  let stderr = "";
  const onLine = (raw: string) => {
    const line = cleanConsoleLine(raw);
    lines.push(line);
    opts.onLine?.(line);
    for (const w of waiters) {
      if (w.re.test(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  };
  child.stdout?.on("data", (b: Buffer) => {
    log?.write(b);
    partial += b.toString("latin1");
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const p of parts) onLine(p);
  });
  child.stderr?.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.on("error", (e) => {
      stderr += String(e);
      res({ code: 127, signal: null });
    });
    child.on("exit", (code, signal) => {
      if (partial) onLine(partial);
      res({ code, signal });
    });
  }).then(async (r) => {
    await new Promise<void>((d) => (log ? log.end(d) : d()));
    await cleanup();
    return r;
  });
  const machine: QemuMachine = {
    accel,
    lines,
    exited,
    waitForLine(re, timeoutMs) {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolveLine, reject) => {
        const w: { re: RegExp; resolve: (line: string) => void } = { re, resolve: resolveLine };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new SlipwayError(`no console line matching ${re} within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        w.resolve = (l: string) => {
          clearTimeout(timer);
          resolveLine(l);
        };
        waiters.add(w);
        void exited.then((r) => {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          clearTimeout(timer);
          reject(
            new SlipwayError(
              `QEMU exited (${r.signal ?? `code ${r.code}`}) before a console line matched ${re}${stderr ? `: ${stderr.trim()}` : ""}`,
            ),
          );
        });
      });
    },
    async shutdown(graceMs = 60_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await qmp(join(work, "qmp.sock"), "system_powerdown").catch(() => undefined);
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
  return machine;
}

/** Send one QMP command (after the capabilities handshake). */
async function qmp(socket: string, command: string): Promise<void> {
  await new Promise<void>((res, rej) => {
    const s = connect(socket);
    let buf = "";
    let step = 0;
    s.on("data", (b) => {
      buf += b.toString();
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) {
        if (step === 0 && l.includes("QMP")) {
          s.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
          step = 1;
        } else if (step === 1 && l.includes('"return"')) {
          s.write(`${JSON.stringify({ execute: command })}\n`);
          step = 2;
        } else if (step === 2 && l.includes('"return"')) {
          s.end();
          res();
        }
      }
    });
    s.on("error", rej);
  });
}
