/**
 * Build benchmark, one run: cold build, no-op rebuild, overlay-only rebuild,
 * USR image size against the /usr tree, and time to multi-user of this
 * layout against the same tree on a plain one-partition disk. Writes
 * bench/build/results.json (or --out) and prints the ratios with their goals.
 *
 *   node bench/build/run.ts            full run (cold mmdebstrap, 3 interleaved boot pairs)
 *     [--runs N] [--vm-lock /tmp/slipway-vm.lock]  boot pairs; flock held while booting
 *   node bench/build/run.ts --boot-only WORKDIR   only the boots, on a --keep run's work dir
 *   node bench/build/run.ts --smoke    CI: reuses the test cache's rootfs, no boots
 *   node bench/build/run.ts --no-boot  skip the boot comparison
 *     [--first-boot]                   boots from the pristine images instead of the steady state
 */
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { BuildMeta } from "../../src/build/meta.ts";
import { SHARED_CACHE_KEEP, withFlock } from "../../test/build/fixture.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SLIPWAY = join(REPO, "bin/slipway");

const { values: args } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    "no-boot": { type: "boolean", default: false },
    out: { type: "string", default: join(REPO, "bench/build/results.json") },
    keep: { type: "boolean", default: false },
    /** Boot pairs (layout, plain) to run, interleaved. */
    runs: { type: "string", default: "3" },
    /** Hold this flock while booting (machines shared with other QEMU users). */
    "vm-lock": { type: "string" },
    /** Only the boot comparison, on this work dir (from a --keep run). */
    "boot-only": { type: "string" },
    /** Measure first boots (pristine images) instead of the steady state. */
    "first-boot": { type: "boolean", default: false },
  },
});

function run(
  argv: string[],
  env: Record<string, string> = {},
): { seconds: number; stdout: string; stderr: string } {
  const t = Date.now();
  const r = spawnSync(SLIPWAY, argv, {
    // --smoke builds in the tests' shared stage cache: keep as many entries as they do.
    env: { ...process.env, CI: "1", SLIPWAY_CACHE_KEEP: SHARED_CACHE_KEEP, ...env },
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  const seconds = (Date.now() - t) / 1000;
  if (r.status !== 0)
    throw new Error(`slipway ${argv.join(" ")} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  return { seconds, stdout: r.stdout, stderr: r.stderr };
}

function latestMeta(work: string): BuildMeta {
  return JSON.parse(readFileSync(join(work, "builds/latest/meta.json"), "utf8")) as BuildMeta;
}

if (args["boot-only"]) {
  // Only the boot comparison, on a work dir a full run left (--keep): its "boot" section
  // replaces the one in --out, the build figures there stay as they were.
  const dir = resolve(args["boot-only"]);
  const boot = {
    time: new Date().toISOString(),
    host: { cpus: cpus().length, loadavg: loadavg() },
    ...(await bootComparison(dir, latestMeta(dir))),
  };
  const previous = existsSync(args.out!)
    ? (JSON.parse(readFileSync(args.out!, "utf8")) as Record<string, unknown>)
    : {};
  writeFileSync(args.out!, `${JSON.stringify({ ...previous, boot }, null, 2)}\n`);
  process.stdout.write(`${bootLine(boot)}\nresults: ${args.out}\n`);
  process.exit(0);
}

const work = join("/var/tmp", `slipway-bench-build-${process.pid}`);
rmSync(work, { recursive: true, force: true });
cpSync(join(REPO, "examples/minimal-dev"), work, { recursive: true });
if (args.smoke) {
  // CI: the test suite's stage cache already holds the rootfs and initrd.
  const shared = join(
    process.env.SLIPWAY_TEST_CACHE ?? "/var/tmp/slipway-test-cache",
    "stage-cache",
  );
  mkdirSync(shared, { recursive: true });
  symlinkSync(shared, join(work, "cache"));
}

const results: Record<string, unknown> = {
  time: new Date().toISOString(),
  mode: args.smoke ? "smoke" : "full",
  host: { cpus: cpus().length, loadavg: loadavg() },
};
try {
  const config = join(work, "slipway.yaml");
  const cold = run(["build", "--config", config]);
  const coldMeta = latestMeta(work);
  const noop = run(["build", "--config", config]);
  if (!/nothing changed/.test(noop.stderr))
    throw new Error(`the no-op build rebuilt:\n${noop.stderr}`);
  writeFileSync(join(work, "overlay/motd"), `bench ${Date.now()}\n`);
  const overlay = run(["build", "--config", config]);
  const overlayMeta = latestMeta(work);
  const rootfsCached = overlayMeta.stages.find((s) => s.stage === "rootfs")?.cached === true;

  const usrImage = overlayMeta.artifacts.usr!;
  results.build = {
    coldSeconds: cold.seconds,
    coldRootfsCached: coldMeta.stages.find((s) => s.stage === "rootfs")?.cached ?? false,
    noopSeconds: noop.seconds,
    overlaySeconds: overlay.seconds,
    overlayReusedRootfs: rootfsCached,
    overlayToCold: overlay.seconds / cold.seconds,
    stages: overlayMeta.stages.map((s) => ({
      stage: s.stage,
      cached: s.cached,
      seconds: s.seconds,
      bytes: s.bytes,
    })),
    coldStages: coldMeta.stages.map((s) => ({
      stage: s.stage,
      cached: s.cached,
      seconds: s.seconds,
    })),
  };
  results.usr = {
    compression: overlayMeta.usr.compression,
    treeBytes: overlayMeta.usr.treeBytes,
    imageBytes: usrImage.size,
    imageToTree: usrImage.size / overlayMeta.usr.treeBytes,
  };
  if (!args.smoke && !args["no-boot"]) results.boot = await bootComparison(work, overlayMeta);
  if (!args.smoke) {
    // The example builds /usr uncompressed (fast, for CI); the default is erofs lz4hc. Its
    // size (and the rebuild it costs: usr and later stages) from the same tree, measured last
    // so the boots above ran the example as it is.
    const yaml = readFileSync(config, "utf8");
    writeFileSync(config, yaml.replace(/^( {2}compression:) none\b/m, "$1 lz4hc"));
    const lz = run(["build", "--config", config]);
    const lzMeta = latestMeta(work);
    results.usrLz4hc = {
      compression: lzMeta.usr.compression,
      treeBytes: lzMeta.usr.treeBytes,
      imageBytes: lzMeta.artifacts.usr!.size,
      imageToTree: lzMeta.artifacts.usr!.size / lzMeta.usr.treeBytes,
      rebuildSeconds: lz.seconds,
    };
  }
} finally {
  if (!args.keep) rmSync(work, { recursive: true, force: true });
}

mkdirSync(dirname(args.out!), { recursive: true });
writeFileSync(args.out!, `${JSON.stringify(results, null, 2)}\n`);

const b = results.build as Record<string, number | boolean>;
const u = results.usr as Record<string, number | string>;
const lines = [
  `cold build            ${fmt(b.coldSeconds as number)} s${b.coldRootfsCached ? " (rootfs from cache: smoke)" : ""}`,
  `no-op rebuild         ${fmt(b.noopSeconds as number)} s   goal ≤ 2 s        ${(b.noopSeconds as number) <= 2 ? "ok" : "MISSED"}`,
  `overlay-only rebuild  ${fmt(b.overlaySeconds as number)} s   ${fmt(b.overlayToCold as number, 2)}× cold, goal ≤ 0.2×  ${(b.overlayToCold as number) <= 0.2 ? "ok" : "MISSED"}  (rootfs reused: ${b.overlayReusedRootfs})`,
  `USR image (${u.compression})    ${mib(u.imageBytes as number)} for a ${mib(u.treeBytes as number)} /usr tree: ${fmt(u.imageToTree as number, 2)}×`,
];
if (results.usrLz4hc) {
  const z = results.usrLz4hc as Record<string, number | string>;
  lines.push(
    `USR image (${z.compression})   ${mib(z.imageBytes as number)} for a ${mib(z.treeBytes as number)} /usr tree: ${fmt(z.imageToTree as number, 2)}× (rebuild from the cached tree ${fmt(z.rebuildSeconds as number)} s)`,
  );
}
if (results.boot) {
  lines.push(bootLine(results.boot as Record<string, unknown>));
}
process.stdout.write(`${lines.join("\n")}\nresults: ${args.out}\n`);

function bootLine(boot: Record<string, unknown>): string {
  const r = boot as Record<string, number> & { bootState: string };
  const worst = Math.max(r.ratio!, r.medianPairRatio!);
  return `boot to multi-user    layout ${fmt(r.layoutSeconds!)} s, plain disk ${fmt(r.plainSeconds!)} s (medians, direct kernel boot, ${r.bootState} state): ${fmt(r.ratio!, 2)}×, median pair ${fmt(r.medianPairRatio!, 2)}×, goal ≤ 1.1×  ${worst <= 1.1 ? "ok" : "MISSED"}`;
}

function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}
function mib(n: number): string {
  return `${(n / 1048576).toFixed(0)} MiB`;
}

/** Median of a non-empty list. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Hold an exclusive flock on `lock` while `fn` runs (other engineers' VMs wait, and we for them). */
async function withVmLock<T>(lock: string | undefined, fn: () => Promise<T>): Promise<T> {
  return lock ? await withFlock(lock, fn) : await fn();
}

/**
 * Time from QEMU start to "Reached target multi-user.target" under TCG (UEFI firmware, 2 GiB):
 * the built disk (erofs /usr from USR-A, ext4 ROOT, OEM, repart/growfs units) against the same
 * customized tree as one ext4 filesystem on a whole disk. Both boot the same kernel and initrd
 * directly (QEMU -kernel/-initrd), with the same arguments except where root and /usr come
 * from, so GRUB is out of both (it is a constant of a few seconds and the plain disk has
 * none); both get the `slipway.slot=a` GRUB would add. Neither carries ignition.firstboot
 * (GRUB adds it from the ESP stamp), so both are ordinary boots. Runs interleave (layout, plain, layout, plain, ...) so load from other jobs
 * hits both; the ratio is of the medians.
 *
 * Both disks are measured in their steady state, the boot a host does every day: each is
 * 2 GiB and was booted once before (not in a snapshot) and shut down cleanly, so ROOT has
 * already grown into the disk and systemd's first-boot work (machine id, presets) is done on
 * both. A first boot is a one-off per host; `--first-boot` measures that instead (every boot
 * from the pristine images, in snapshots).
 */
async function bootComparison(workDir: string, meta: BuildMeta): Promise<Record<string, unknown>> {
  const { startQemu } = await import("../../src/vm/qemu.ts");
  // systemd stops its status lines on the console once the autologin shell has it, so the
  // example's own unit (ordered after multi-user.target) is the second, reliable marker.
  const multiUser =
    /Reached target .*Multi-User System|slipway-example: reached multi-user\.target/;
  const buildDir = join(workDir, "builds/latest");
  const kernel = join(buildDir, meta.artifacts.kernel!.path);
  const initrd = join(buildDir, meta.artifacts.initrd!.path);
  const boot = async (
    name: string,
    disk: string,
    cmdline: string,
    settle = false,
  ): Promise<number | undefined> => {
    const t = Date.now();
    const vm = await startQemu({
      consoleLog: join(workDir, `boot-${name}.log`),
      disk,
      firmware: "uefi",
      accel: "tcg",
      memoryMiB: 2048,
      console: "capture",
      snapshot: !settle,
      extraArgs: ["-kernel", kernel, "-initrd", initrd, "-append", cmdline],
    });
    try {
      await vm.waitForLine(multiUser, 300_000);
      const seconds = (Date.now() - t) / 1000;
      // A settling boot writes to the disk: shut down cleanly so the next boot finds it clean.
      if (settle) await vm.shutdown(120_000);
      return seconds;
    } catch (err) {
      // A stuck boot is a finding, not the end of the benchmark: its console log stays.
      process.stderr.write(`boot ${name}: ${(err as Error).message}\n`);
      failures.push({ boot: name, error: (err as Error).message, log: `boot-${name}.log` });
      return undefined;
    } finally {
      await vm.kill();
    }
  };
  const failures: { boot: string; error: string; log: string }[] = [];

  // The same customized tree (from the cache) on a plain ext4 disk.
  const customize = meta.stages.find((s) => s.stage === "customize")!;
  const tree = join(workDir, "cache/customize", customize.key, "out/tree");
  if (!existsSync(tree)) throw new Error(`customize tree not in the cache: ${tree}`);
  const plainTree = join(workDir, "plain-tree");
  const cp = spawnSync("cp", ["-a", tree, plainTree]);
  if (cp.status !== 0) throw new Error(`cp failed: ${cp.stderr}`);
  writeFileSync(join(plainTree, "etc/fstab"), "/dev/vda / ext4 defaults 0 1\n");
  // ROOT growth is the layout's job; on a whole-disk filesystem repart has nothing to do.
  rmSync(join(plainTree, "usr/lib/repart.d"), { recursive: true, force: true });
  const plainDisk = join(workDir, "plain.ext4");
  writeFileSync(plainDisk, "");
  truncateSync(plainDisk, 2 * 1024 * 1024 * 1024);
  const mk = spawnSync("mkfs.ext4", ["-q", "-F", "-d", plainTree, plainDisk]);
  if (mk.status !== 0) throw new Error(`mkfs.ext4 failed: ${mk.stderr}`);
  rmSync(plainTree, { recursive: true, force: true });

  // Steady state: both disks 2 GiB, booted once for real (ROOT grows, first-boot work done).
  let layoutDisk = join(buildDir, meta.artifacts.disk!.path);
  const firstBoot = args["first-boot"] === true;
  const settled: { layoutSeconds?: number; plainSeconds?: number } = {};

  // GRUB adds the slot it picked (the update agent reads it); both get it.
  const layoutCmdline = `${meta.kernelCmdline} slipway.slot=a`;
  // Same arguments, root on the whole disk and no separate /usr.
  const plainCmdline = [
    "root=/dev/vda rootfstype=ext4 rw",
    ...layoutCmdline
      .split(" ")
      .filter(
        (a) =>
          !/^(root|rootfstype|rw|mount\.usr[a-z]*|usrhash|systemd\.verity_usr_[a-z]+)(=|$)/.test(a),
      ),
  ].join(" ");
  const runs: { layoutSeconds: number; plainSeconds: number; loadavg: number[] }[] = [];
  await withVmLock(args["vm-lock"], async () => {
    if (!firstBoot) {
      const copy = join(workDir, "layout-steady.raw");
      const cp2 = spawnSync("cp", ["--sparse=always", layoutDisk, copy]);
      if (cp2.status !== 0) throw new Error(`cp failed: ${cp2.stderr}`);
      truncateSync(copy, 2 * 1024 * 1024 * 1024);
      layoutDisk = copy;
      settled.layoutSeconds = await boot("layout-settle", layoutDisk, layoutCmdline, true);
      settled.plainSeconds = await boot("plain-settle", plainDisk, plainCmdline, true);
      if (settled.layoutSeconds === undefined || settled.plainSeconds === undefined)
        throw new Error(`a settling boot failed: ${JSON.stringify(failures)}`);
      process.stderr.write(
        `first boots (settling): layout ${settled.layoutSeconds} s, plain ${settled.plainSeconds} s\n`,
      );
    }
    for (let i = 0; i < Number(args.runs); i++) {
      const load = loadavg();
      const layoutSeconds = await boot(`layout-${i}`, layoutDisk, layoutCmdline);
      const plainSeconds = await boot(`plain-${i}`, plainDisk, plainCmdline);
      if (layoutSeconds === undefined || plainSeconds === undefined) continue;
      runs.push({
        layoutSeconds,
        plainSeconds,
        loadavg: load.map((l) => Math.round(l * 100) / 100),
      });
      process.stderr.write(
        `boot pair ${i + 1}: layout ${layoutSeconds} s, plain ${plainSeconds} s\n`,
      );
    }
  });
  if (runs.length === 0) throw new Error(`no boot pair completed: ${JSON.stringify(failures)}`);
  const layoutSeconds = median(runs.map((r) => r.layoutSeconds));
  const plainSeconds = median(runs.map((r) => r.plainSeconds));
  // Each pair ran back to back under about the same load: its ratio is the less noisy figure.
  const pairRatios = runs.map((r) => r.layoutSeconds / r.plainSeconds);
  return {
    method: `direct kernel boot (QEMU -kernel/-initrd, UEFI, TCG) for both, same kernel, initrd and arguments but root and /usr; ${firstBoot ? "first boots: pristine images in snapshots" : "steady state: both 2 GiB disks booted once for real and shut down, then measured in snapshots"}; runs interleaved; ratio of medians and median of per-pair ratios`,
    bootState: firstBoot ? "first" : "steady",
    settlingBoots: settled,
    layoutCmdline,
    plainCmdline,
    runs,
    failures,
    layoutSeconds,
    plainSeconds,
    ratio: layoutSeconds / plainSeconds,
    pairRatios,
    medianPairRatio: median(pairRatios),
    loadavgAfter: loadavg(),
  };
}
