/**
 * A test VM: the boot engineer's QEMU runner plus what a scenario needs: wait until the guest is
 * up (ssh answers and `systemctl is-system-running` settles), notice a boot that stops (a fatal
 * console finding, an unasked-for reboot, QEMU exiting), run commands over ssh, reboot and wait
 * again, wait for console lines. Console checks run on every line as it arrives.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SlipwayError } from "../../errors.ts";
import type { Firmware, GuestForward } from "../qemu.ts";
import { type Accel, type QemuMachine, startQemu } from "../qemu.ts";
import {
  type ConsoleFinding,
  checkConsoleLine,
  formatFinding,
  ignitionReason,
} from "./console-checks.ts";
import { type SshResult, type SshTarget, sshCommandLine, sshRun } from "./ssh.ts";

/** The boot stopped before the guest came up; `reason` is what a report shows. */
export class BootStopped extends SlipwayError {
  readonly reason: string;
  constructor(reason: string) {
    super(`boot stopped: ${reason}`);
    this.name = "BootStopped";
    this.reason = reason;
  }
}

export interface VmOptions {
  disk: string;
  ignitionFile?: string;
  memoryMiB: number;
  cpus: number;
  firmware: Firmware;
  accel: Accel;
  diskSize?: bigint;
  extraDisks: string[];
  consoleLog: string;
  sshPort: number;
  sshKey: string;
  allowConsole: RegExp[];
  /** Guest connections to these addresses go to 127.0.0.1 ports (e.g. a test's update server). */
  guestForwards?: GuestForward[];
}

/** A kernel starting: counts boots (an unasked-for second one means the first failed). */
const KERNEL_START = /^\[\s*0\.0+\] Linux version /;

/** How long to keep reading the console after a fatal finding before giving the reason. */
const FATAL_GRACE_MS = 3_000;
const IGNITION_GRACE_MS = 20_000;

export interface SystemState {
  /** `systemctl is-system-running --wait` output: running, degraded, … */
  state: string;
  failedUnits: string[];
}

/** VMs still running, killed if the harness process ends (a crash must not leave QEMU behind). */
const running = new Set<TestVm>();
let exitHookInstalled = false;
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const vm of running) void vm.stop();
  });
}

/** Stop every running test VM (for signal handlers). */
export async function stopAllVms(): Promise<void> {
  await Promise.all([...running].map((vm) => vm.stop()));
}

export class TestVm {
  readonly findings: ConsoleFinding[] = [];
  readonly options: VmOptions;
  /** Boots seen on the console so far. */
  boots = 0;
  private qemu: QemuMachine | undefined;
  private expectedBoots = 1;
  private fatal: ConsoleFinding | undefined;
  private fatalWaiters = new Set<(f: ConsoleFinding) => void>();

  constructor(options: VmOptions) {
    this.options = options;
  }

  get accel(): string {
    return this.qemu?.accel ?? "?";
  }

  /** Console lines so far (escapes removed). */
  get console(): readonly string[] {
    return this.qemu?.lines ?? [];
  }

  ssh(user = "root"): SshTarget {
    return { port: this.options.sshPort, key: this.options.sshKey, user };
  }

  sshCommand(user = "root"): string {
    return sshCommandLine(this.ssh(user));
  }

  async start(): Promise<void> {
    const o = this.options;
    this.qemu = await startQemu({
      disk: o.disk,
      firmware: o.firmware,
      memoryMiB: o.memoryMiB,
      cpus: o.cpus,
      accel: o.accel,
      diskSize: o.diskSize,
      console: "capture",
      consoleLog: o.consoleLog,
      onLine: (l) => this.onLine(l),
      hostForwards: [{ hostPort: o.sshPort, guestPort: 22 }],
      guestForwards: o.guestForwards ?? [],
      fwCfg: o.ignitionFile ? [{ name: "opt/com.coreos/config", file: o.ignitionFile }] : [],
      extraArgs: o.extraDisks.flatMap((d) => ["-drive", `if=virtio,file=${d},format=qcow2`]),
    });
    running.add(this);
    killAllOnExit();
  }

  private onLine(line: string): void {
    if (KERNEL_START.test(line)) this.boots++;
    const accel = this.qemu?.accel ?? "tcg";
    const f = checkConsoleLine(line, this.console.length, this.options.allowConsole, accel);
    if (f) {
      this.findings.push(f);
      if (f.fatal && !this.fatal) {
        this.fatal = f;
        for (const w of this.fatalWaiters) w(f);
      }
    }
  }

  /** Why the boot stopped, in the guest's own words where possible. */
  private stopReason(f: ConsoleFinding): string {
    if (f.check === "ignition-failed" || /ignition/i.test(f.line)) {
      const ign = ignitionReason(this.console);
      if (ign) return `Ignition: ${ign}`;
    }
    return formatFinding(f);
  }

  /**
   * Wait until ssh answers and the system has settled; rejects with BootStopped when the boot
   * cannot succeed. Degraded is returned (with the failed units), not thrown.
   */
  async waitUntilUp(timeoutMs: number): Promise<SystemState> {
    const qemu = this.need();
    const deadline = Date.now() + timeoutMs;
    let stop: ((e: Error) => void) | undefined;
    const stopped = new Promise<never>((_, rej) => {
      stop = rej;
    });
    stopped.catch(() => undefined);
    // The guest's own explanation (e.g. Ignition's message) may trail the line that was fatal.
    // journald forwards Ignition's message to the console later than systemd's own line under
    // load: wait for it a while when Ignition failed.
    const onFatal = (f: ConsoleFinding) => {
      const until =
        Date.now() + (f.check === "ignition-failed" ? IGNITION_GRACE_MS : FATAL_GRACE_MS);
      const tick = setInterval(() => {
        const done = f.check === "ignition-failed" && ignitionReason(this.console) !== undefined;
        if (done || Date.now() >= until) {
          clearInterval(tick);
          stop?.(new BootStopped(this.stopReason(f)));
        }
      }, 250);
    };
    if (this.fatal) onFatal(this.fatal);
    this.fatalWaiters.add(onFatal);
    void qemu.exited.then((r) =>
      stop?.(new BootStopped(`QEMU exited (${r.signal ?? `code ${r.code}`}) during boot`)),
    );
    let cancelled = false;
    const poll = async (): Promise<SystemState> => {
      for (;;) {
        if (cancelled) throw new Error("cancelled");
        if (this.boots > this.expectedBoots) {
          const reason = this.fatal ? this.stopReason(this.fatal) : "the guest rebooted by itself";
          throw new BootStopped(reason);
        }
        if (Date.now() > deadline)
          throw new BootStopped(`no ssh within ${Math.round(timeoutMs / 1000)} s`);
        const r = await sshRun(this.ssh(), "systemctl is-system-running --wait", {
          timeoutMs: Math.max(5_000, deadline - Date.now()),
          connectTimeoutS: 5,
        });
        if (r.code !== 255) {
          const state = r.stdout.trim().split("\n").pop() ?? "";
          if (state === "degraded") return { state, failedUnits: await this.failedUnits() };
          if (state === "running") return { state, failedUnits: [] };
          // starting/initializing after a timeout of --wait, or maintenance: keep asking.
        }
        await sleep(2_000);
      }
    };
    try {
      return await Promise.race([poll(), stopped]);
    } finally {
      cancelled = true;
      this.fatalWaiters.delete(onFatal);
      stop = undefined;
    }
  }

  async failedUnits(): Promise<string[]> {
    const r = await sshRun(this.ssh(), "systemctl --failed --no-legend --plain", {
      timeoutMs: 30_000,
    });
    return r.stdout
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0] ?? "")
      .filter((u) => u.length > 0);
  }

  /** Run a shell command in the guest; `check` (default) makes a non-zero exit an error. */
  async run(
    command: string,
    opts: { user?: string; timeoutMs?: number; check?: boolean; input?: string } = {},
  ): Promise<SshResult> {
    const r = await sshRun(this.ssh(opts.user), command, {
      timeoutMs: opts.timeoutMs ?? 120_000,
      input: opts.input,
    });
    if ((opts.check ?? true) && r.code !== 0) {
      throw new SlipwayError(
        `\`${command}\` as ${opts.user ?? "root"} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-500)}`,
      );
    }
    return r;
  }

  /** Reboot the guest and wait until it is up again. */
  async reboot(timeoutMs = 600_000): Promise<SystemState> {
    this.expectedBoots = this.boots + 1;
    const before = this.boots;
    await sshRun(this.ssh(), "systemctl reboot", { timeoutMs: 30_000 });
    await this.waitForLine(KERNEL_START, timeoutMs, before);
    return await this.waitUntilUp(timeoutMs);
  }

  /**
   * Wait for a reboot the guest starts by itself (an update agent, a panic): boot number
   * `afterBoots + 1 + extraBoots` must start, then the guest must come up as in waitUntilUp.
   * `extraBoots` counts boots expected in between (a slot that fails and falls back).
   */
  async awaitReboot(afterBoots: number, timeoutMs: number, extraBoots = 0): Promise<SystemState> {
    const deadline = Date.now() + timeoutMs;
    const target = afterBoots + 1 + extraBoots;
    this.expectedBoots = target;
    for (let b = afterBoots; b < target; b++)
      await this.waitForLine(KERNEL_START, Math.max(1_000, deadline - Date.now()), b);
    return await this.waitUntilUp(Math.max(1_000, deadline - Date.now()));
  }

  /** Wait for a console line matching `re` (also one already seen in the current boot). */
  async waitForLine(re: RegExp, timeoutMs: number, afterBoot = this.boots - 1): Promise<string> {
    const qemu = this.need();
    // Lines of earlier boots do not count: find where the boot after `afterBoot` started.
    let seen = 0;
    let start = qemu.lines.length;
    for (let i = 0; i < qemu.lines.length; i++) {
      if (KERNEL_START.test(qemu.lines[i]!) && ++seen > afterBoot) {
        start = i;
        break;
      }
    }
    const hit = qemu.lines.slice(start).find((l) => re.test(l));
    if (hit !== undefined) return hit;
    const from = qemu.lines.length;
    return await new Promise((res, rej) => {
      const timer = setTimeout(
        () => rej(new SlipwayError(`no console line matching ${re} within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      const tick = setInterval(() => {
        const l = qemu.lines.slice(from).find((x) => re.test(x));
        if (l !== undefined) {
          clearInterval(tick);
          clearTimeout(timer);
          res(l);
        }
      }, 250);
      void qemu.exited.then(() => {
        clearInterval(tick);
        clearTimeout(timer);
        const l = qemu.lines.slice(from).find((x) => re.test(x));
        if (l !== undefined) res(l);
        else rej(new SlipwayError(`QEMU exited before a console line matched ${re}`));
      });
    });
  }

  /** Save the journal of every boot (best effort: the guest may be down). */
  async saveJournal(dir: string): Promise<string | undefined> {
    // Every boot the journal kept (persistent journal), else the current one.
    const r = await sshRun(this.ssh(), "journalctl --no-pager -o short-monotonic", {
      timeoutMs: 60_000,
      connectTimeoutS: 5,
    });
    if (r.code !== 0) return undefined;
    const file = join(dir, "journal.txt");
    await writeFile(file, r.stdout);
    return file;
  }

  async stop(): Promise<void> {
    running.delete(this);
    if (this.qemu) await this.qemu.kill();
  }

  private need(): QemuMachine {
    if (!this.qemu) throw new SlipwayError("the VM was not started");
    return this.qemu;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
