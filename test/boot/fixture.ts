/**
 * One bootable test disk per test run, cached by input hash under
 * /var/tmp/slipway-test-cache: the boot code's sources and the rootfs it
 * starts from. Source tree, first found:
 *   $SLIPWAY_TEST_ROOTFS, /var/tmp/slipway-dev/rootfs-base, or a fresh
 *   mmdebstrap (CI cold start, ~70 s).
 * The image carries a report unit that prints the boot's facts to ttyS0 and
 * powers off, so a test is one QEMU run that ends by itself.
 * Also built: a second /usr image ("B") for the A/B tests.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildBootableDisk } from "../../src/boot/bootable.ts";
import { unmountUnder, withChrootMounts } from "../../src/boot/initrd.ts";
import { runTool } from "../../src/boot/tool.ts";
import { buildUsrImage } from "../../src/boot/usr-image.ts";
import { makeGuid } from "../../src/disk/layout.ts";

export const TEST_CACHE = process.env.SLIPWAY_TEST_CACHE ?? "/var/tmp/slipway-test-cache";
const DEV_ROOTFS = "/var/tmp/slipway-dev/rootfs-base";
const FIXTURE_VERSION = "1";
const PACKAGES =
  "systemd,systemd-sysv,systemd-repart,systemd-cryptsetup,udev,dbus,linux-image-amd64,dracut,dracut-core,erofs-utils,kmod,e2fsprogs,zstd";

export interface BootFixture {
  dir: string;
  /** The disk: USR-A installed, B empty, initial boot state. */
  disk: string;
  /** A second /usr image whose /usr/lib/slipway-test/usr-id says B, with a dm-verity hash tree. */
  usrB: string;
  usrBVerity: { rootHash: string; hashOffset: number };
  kernel: string;
  initrd: string;
  /** Seconds the cold build took (0 when cached). */
  buildSeconds: number;
}

export const REPORT_BEGIN = "SLIPWAY-REPORT-BEGIN";
export const REPORT_END = "SLIPWAY-REPORT-END";

/** Printed to ttyS0 once boot has finished, then the machine powers off. */
const REPORT_SCRIPT = `#!/bin/sh
# Kernel messages on ttyS0 would cut into the report's lines.
dmesg -n 1 2>/dev/null || true
state=$(systemctl is-system-running --wait 2>/dev/null)
{
echo "${REPORT_BEGIN}"
echo "report state=$state"
echo "report slot=$(sed -n 's/.*slipway\\.slot=\\([ab]\\).*/\\1/p' /proc/cmdline)"
echo "report usr-id=$(cat /usr/lib/slipway-test/usr-id)"
echo "report usr-mount=$(findmnt -no SOURCE,FSTYPE,OPTIONS /usr | tr ' ' '|')"
echo "report root-mount=$(findmnt -no SOURCE,FSTYPE /  | tr ' ' '|')"
echo "report root-bytes=$(df -B1 --output=size / | tail -1 | tr -d ' ')"
echo "report disk-bytes=$(lsblk -bdno SIZE /dev/vda | tr -d ' ')"
echo "report root-part-bytes=$(lsblk -bdno SIZE /dev/vda9 | tr -d ' ')"
systemctl --failed --no-legend --plain | sed 's/^/report failed=/'
echo "${REPORT_END}"
} > /dev/ttyS0 2>&1
systemctl poweroff --no-block
`;

const REPORT_UNIT = `[Unit]
Description=Slipway boot test report
After=multi-user.target

[Service]
Type=exec
ExecStart=/usr/lib/slipway-test/report
`;

function hashInputs(rootfs: string): string {
  const h = createHash("sha256").update(`fixture ${FIXTURE_VERSION}\n`);
  const root = new URL("../../", import.meta.url).pathname;
  const files = [
    ...readdirSync(join(root, "src/boot")).map((f) => `src/boot/${f}`),
    "src/disk/layout.ts",
    "src/disk/ext4.ts",
    "src/disk/assemble.ts",
    "src/disk/gpt.ts",
    "test/boot/fixture.ts",
  ];
  for (const f of files.sort()) {
    if (existsSync(join(root, f))) h.update(`${f}\n`).update(readFileSync(join(root, f)));
  }
  // The rootfs is identified by its package database.
  const status = join(rootfs, "var/lib/dpkg/status");
  h.update(existsSync(status) ? readFileSync(status) : `mmdebstrap ${PACKAGES}`);
  return h.digest("hex").slice(0, 16);
}

function sourceRootfs(): string | undefined {
  const env = process.env.SLIPWAY_TEST_ROOTFS;
  if (env) return env;
  if (existsSync(join(DEV_ROOTFS, "usr"))) return DEV_ROOTFS;
  return undefined;
}

let memo: Promise<BootFixture> | undefined;

/** The cached fixture, building it on first use (with a lock across processes). */
export function bootFixture(log: (l: string) => void = () => undefined): Promise<BootFixture> {
  memo ??= build(log);
  return memo;
}

async function build(log: (l: string) => void): Promise<BootFixture> {
  const src = sourceRootfs();
  const key = hashInputs(src ?? "/nonexistent");
  const dir = join(TEST_CACHE, `boot-${key}`);
  const result = (buildSeconds: number): BootFixture => ({
    dir,
    disk: join(dir, "disk.img"),
    usrB: join(dir, "usr-b.img"),
    usrBVerity: existsSync(join(dir, "usr-b.json"))
      ? (JSON.parse(readFileSync(join(dir, "usr-b.json"), "utf8")) as BootFixture["usrBVerity"])
      : { rootHash: "", hashOffset: 0 },
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    buildSeconds,
  });
  if (existsSync(join(dir, "done"))) return result(0);
  await mkdir(TEST_CACHE, { recursive: true });
  const lock = join(TEST_CACHE, `boot-${key}.lock`);
  await runTool("flock", [lock, "true"]); // ensure the lock file exists
  // Serialize builders of the same key; the loser finds "done".
  return await withFlock(lock, async () => {
    if (existsSync(join(dir, "done"))) return result(0);
    const t0 = Date.now();
    const work = `${dir}.work`;
    await removeTree(work);
    await mkdir(work, { recursive: true });
    try {
      const tree = join(work, "tree");
      if (src) {
        log(`copying ${src}`);
        await runTool("cp", ["-a", src, tree]);
      } else {
        log("no rootfs found: running mmdebstrap (trixie)");
        await runTool("mmdebstrap", [
          "--variant=minbase",
          `--include=${PACKAGES}`,
          "trixie",
          tree,
          "http://deb.debian.org/debian",
        ]);
      }
      await ensureVeritysetup(tree, log);
      await instrument(tree, "A");
      const disk = await buildBootableDisk({
        tree,
        workDir: join(work, "w"),
        out: join(work, "disk.img"),
        sizes: { espMiB: 64, usrMiB: 512, rootMiB: 256, oemMiB: 16, oemConfigMiB: 8 },
        seed: `test-${key}`,
        compression: "uncompressed",
        log,
      });
      await writeFile(join(tree, "usr/lib/slipway-test/usr-id"), "B\n");
      const b = await buildUsrImage({
        tree,
        out: join(work, "usr-b.img"),
        compression: "uncompressed",
        uuid: makeGuid(`test-${key}`, "usr-b"),
        timestamp: 0,
        verity: { salt: "42".repeat(32), uuid: makeGuid(`test-${key}`, "usr-b-verity") },
      });
      await writeFile(join(work, "usr-b.json"), JSON.stringify(b.verity));
      await runTool("cp", [disk.kernel, join(work, "vmlinuz")]);
      await runTool("cp", [disk.initrd, join(work, "initrd.img")]);
      await removeTree(tree);
      await rm(join(work, "w"), { recursive: true, force: true });
      const seconds = Math.round((Date.now() - t0) / 1000);
      await writeFile(join(work, "done"), `${seconds}\n`);
      await rm(dir, { recursive: true, force: true });
      await rename(work, dir);
      // Older fixtures (other inputs) are dead weight: ~1 GiB each.
      for (const e of readdirSync(TEST_CACHE)) {
        if (/^boot-[0-9a-f]{16}(\.lock)?$/.test(e) && !e.startsWith(`boot-${key}`)) {
          await rm(join(TEST_CACHE, e), { recursive: true, force: true });
        }
      }
      return result(seconds);
    } catch (e) {
      await removeTree(work);
      throw e;
    }
  });
}

/**
 * dm-verity in the initrd needs systemd-veritysetup (package
 * systemd-cryptsetup); the dev rootfs lacks it, so add it from Debian.
 */
async function ensureVeritysetup(tree: string, log: (l: string) => void): Promise<void> {
  if (existsSync(join(tree, "usr/lib/systemd/systemd-veritysetup"))) return;
  log("adding systemd-cryptsetup to the tree (apt-get in chroot)");
  await runTool("cp", ["/etc/resolv.conf", join(tree, "etc/resolv.conf")]);
  try {
    await withChrootMounts(tree, async () => {
      const env = { DEBIAN_FRONTEND: "noninteractive" };
      await runTool("chroot", [tree, "apt-get", "update", "-q"], { env });
      await runTool(
        "chroot",
        [tree, "apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd-cryptsetup"],
        {
          env,
        },
      );
      await runTool("chroot", [tree, "apt-get", "clean"]);
    });
  } finally {
    await rm(join(tree, "etc/resolv.conf"), { force: true });
    await runTool("sh", ["-c", `rm -rf ${join(tree, "var/lib/apt/lists")}/*`]);
  }
}

/** Delete a tree that may still carry bind mounts from a killed run. */
async function removeTree(path: string): Promise<void> {
  await unmountUnder(path);
  await runTool("rm", ["-rf", "--one-file-system", path]);
}

/** Test-only additions: a /usr identity file and the report unit. */
async function instrument(tree: string, usrId: string): Promise<void> {
  const d = join(tree, "usr/lib/slipway-test");
  await mkdir(d, { recursive: true });
  await writeFile(join(d, "usr-id"), `${usrId}\n`);
  await writeFile(join(d, "report"), REPORT_SCRIPT);
  await chmod(join(d, "report"), 0o755);
  await writeFile(join(tree, "etc/systemd/system/slipway-test-report.service"), REPORT_UNIT);
  const wants = join(tree, "etc/systemd/system/multi-user.target.wants");
  await mkdir(wants, { recursive: true });
  await rm(join(wants, "slipway-test-report.service"), { force: true });
  await symlink("../slipway-test-report.service", join(wants, "slipway-test-report.service"));
  await writeFile(join(tree, "etc/hostname"), "slipway-test\n");
  // No login prompt on ttyS0: it would interleave with the report.
  const getty = join(tree, "etc/systemd/system/serial-getty@ttyS0.service");
  await rm(getty, { force: true });
  await symlink("/dev/null", getty);
}

/** Run `fn` holding an exclusive flock on `lock` (via a held `flock` child). */
async function withFlock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  const { spawn } = await import("node:child_process");
  const holder = spawn("flock", [lock, "sh", "-c", "echo locked; read _"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise<void>((res, rej) => {
    holder.stdout.once("data", () => res());
    holder.once("exit", (c) => rej(new Error(`flock exited ${c}`)));
  });
  try {
    return await fn();
  } finally {
    holder.stdin.end("\n");
  }
}

/** Facts from a boot's report lines. */
export interface BootReport {
  state: string;
  slot: string;
  usrId: string;
  usrMount: string[];
  rootMount: string[];
  rootBytes: number;
  rootPartBytes: number;
  diskBytes: number;
  failed: string[];
}

export function parseReport(lines: string[]): BootReport {
  const begin = lines.findLastIndex((l) => l.includes(REPORT_BEGIN));
  const end = lines.findLastIndex((l) => l.includes(REPORT_END));
  if (begin < 0 || end < begin) throw new Error("no complete boot report on the console");
  const r: Record<string, string> = {};
  const failed: string[] = [];
  for (const l of lines.slice(begin + 1, end)) {
    // Kernel or getty output may share the line's start.
    const m = /report ([a-z-]+)=(.*)$/.exec(l.trim().replace(/\[\s*\d+\.\d+\] .*$/, ""));
    if (!m) continue;
    if (m[1] === "failed") failed.push(m[2]!);
    else r[m[1]!] = m[2]!;
  }
  return {
    state: r.state ?? "",
    slot: r.slot ?? "",
    usrId: r["usr-id"] ?? "",
    usrMount: (r["usr-mount"] ?? "").split("|"),
    rootMount: (r["root-mount"] ?? "").split("|"),
    rootBytes: Number(r["root-bytes"] ?? 0),
    rootPartBytes: Number(r["root-part-bytes"] ?? 0),
    diskBytes: Number(r["disk-bytes"] ?? 0),
    failed,
  };
}
