/** `slipway run`: boot a build's disk image (or any disk image) in QEMU. */
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { InputError } from "../errors.ts";
import type { Accel } from "../vm/qemu.ts";

interface RunOptions {
  bios?: boolean;
  snapshot: boolean;
  diskSize?: string;
  memory: string;
  cpus: string;
  consoleLog?: string;
  accel: string;
  buildsDir: string;
  artifact: string;
  forward: string[];
  guestForward: string[];
  ignition?: string;
  config?: string;
  ssh?: boolean;
}

/** BUILD (a version or build directory) or DISK (an image file) → the disk image path. */
export function resolveDisk(
  target: string | undefined,
  buildsDir: string,
  artifact = "disk",
): string {
  const candidates =
    target === undefined ? [join(buildsDir, "latest")] : [target, join(buildsDir, target)];
  for (const c of candidates) {
    if (!existsSync(c)) continue;
    // Real paths, so the user sees which version `latest` was.
    if (statSync(c).isFile()) return realpathSync(c);
    const metaFile = join(c, "meta.json");
    if (!existsSync(metaFile))
      throw new InputError("build directory has no meta.json", { where: c });
    const meta = JSON.parse(readFileSync(metaFile, "utf8")) as {
      artifacts?: Record<string, { path: string }>;
    };
    const a = meta.artifacts?.[artifact];
    if (!a) {
      const names = Object.keys(meta.artifacts ?? {}).join(", ");
      throw new InputError(`build has no artifact "${artifact}" (has: ${names})`, {
        where: metaFile,
      });
    }
    return realpathSync(resolve(c, a.path));
  }
  throw new InputError(
    target === undefined
      ? `no build to run: ${join(buildsDir, "latest")} does not exist (run slipway build, or give a disk image)`
      : `"${target}" is neither a disk image nor a build in ${buildsDir}`,
  );
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function register(program: Command): void {
  program
    .command("run")
    .description(
      "Boot a build (default: builds/latest) or a disk image in QEMU, console on this terminal",
    )
    .argument("[build-or-disk]", "build version, build directory or disk image")
    .option("--bios", "boot with SeaBIOS instead of UEFI")
    .option("--no-snapshot", "keep the guest's writes in the image (default: discard them)")
    .option(
      "--disk-size <size>",
      "grow the guest's disk, e.g. 8G (a copy-on-write overlay unless --no-snapshot)",
    )
    .option("--memory <MiB>", "guest memory in MiB", "2048")
    .option("--cpus <n>", "guest CPUs", "2")
    .option("--console-log <file>", "write the serial console to FILE instead of the terminal")
    .option("--accel <accel>", "tcg, kvm, or auto (KVM only after a probe boots)", "auto")
    .option("--builds-dir <dir>", "where builds live", "builds")
    .option("--artifact <name>", "which disk artifact of the build (see meta.json)", "disk")
    .option(
      "--forward <host:guest>",
      "forward 127.0.0.1:HOST to guest port GUEST (repeatable)",
      collect,
      [],
    )
    .option(
      "--guest-forward <addr:port=hostport>",
      "guest connections to ADDR:PORT go to 127.0.0.1:HOSTPORT, e.g. 10.0.2.100:80=8080 (repeatable; needs socat)",
      collect,
      [],
    )
    .option("--ignition <file>", "Ignition config passed through QEMU fw_cfg")
    .option("--config <file>", "Slipway YAML or #cloud-config, rendered to Ignition (fw_cfg)")
    .option("--ssh", "add a throwaway ssh key for root, forward a free 127.0.0.1 port to port 22")
    .action(async (target: string | undefined, o: RunOptions) => {
      if (!["tcg", "kvm", "auto"].includes(o.accel))
        throw new InputError(`--accel must be tcg, kvm or auto, got ${o.accel}`);
      const int = (v: string, what: string) => {
        if (!/^\d+$/.test(v) || Number(v) < 1)
          throw new InputError(`${what} must be a positive whole number, got ${v}`);
        return Number(v);
      };
      const forwards = o.forward.map((f) => {
        const m = /^(\d+):(\d+)$/.exec(f);
        if (!m) throw new InputError(`--forward ${f}: expected HOSTPORT:GUESTPORT`);
        return { hostPort: Number(m[1]), guestPort: Number(m[2]) };
      });
      const guestForwards = o.guestForward.map((f) => {
        const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)=(\d+)$/.exec(f);
        if (!m) throw new InputError(`--guest-forward ${f}: expected ADDR:PORT=HOSTPORT`);
        return { guestAddr: m[1]!, guestPort: Number(m[2]), hostPort: Number(m[3]) };
      });
      if (o.ignition && !existsSync(o.ignition))
        throw new InputError("Ignition config not found", { where: o.ignition });
      if (o.config && !existsSync(o.config))
        throw new InputError("config not found", { where: o.config });
      const disk = resolveDisk(target, o.buildsDir, o.artifact);
      const toLog = o.consoleLog !== undefined;
      if (toLog) process.stderr.write(`slipway: booting ${disk}; console → ${o.consoleLog}\n`);
      else process.stderr.write(`slipway: booting ${disk} (Ctrl-A X quits)\n`);
      // Loaded here, not at start-up: every slipway command imports this module.
      const { prepareRunProvisioning } = await import("../vm/harness/run-provisioning.ts");
      const { parseSize, startQemu } = await import("../vm/qemu.ts");
      const prov = await prepareRunProvisioning(o);
      if (prov.sshCommand) process.stderr.write(`slipway: once booted: ${prov.sshCommand}\n`);
      const vm = await startQemu({
        disk,
        firmware: o.bios ? "bios" : "uefi",
        snapshot: o.snapshot,
        diskSize: o.diskSize ? parseSize(o.diskSize, "--disk-size") : undefined,
        memoryMiB: int(o.memory, "--memory"),
        cpus: int(o.cpus, "--cpus"),
        accel: o.accel as Accel,
        console: toLog ? "capture" : "terminal",
        consoleLog: o.consoleLog,
        hostForwards: [...forwards, ...(prov.forward ? [prov.forward] : [])],
        guestForwards,
        fwCfg: prov.ignitionFile
          ? [{ name: "opt/com.coreos/config", file: prov.ignitionFile }]
          : [],
      }).catch(async (e) => {
        await prov.cleanup();
        throw e;
      });
      const stop = () => void vm.shutdown(30_000);
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      const r = await vm.exited;
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      await prov.cleanup();
      if (r.code !== 0 && r.signal === null) process.exitCode = 1;
    });
}
