/**
 * The disk the e2e scenarios boot: the boot engineer's layout plus what first-boot
 * provisioning and the harness need, cached by input hash under the test cache.
 *
 *   - packages `ignition` (offline dracut variant: fw_cfg and OEM configs) and `openssh-server`;
 *   - the provisioning glue module in the initrd (src/provision/initrd.ts);
 *   - sshd reading Ignition's `~/.ssh/authorized_keys.d/*`, DHCP on the virtio NIC;
 *   - the first-boot stamp on the ESP and grub.cfg lines that honour it.
 *
 * The last point is a stand-in: grub.cfg from src/boot does not source the stamp yet, so this
 * fixture patches it on the ESP. Once the pipeline wires provisioning, `slipway build` output
 * replaces this fixture (SLIPWAY_E2E_IMAGE points the tests at any disk).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildBootableDisk } from "../../src/boot/bootable.ts";
import { mtoolsGet, mtoolsPut } from "../../src/boot/esp.ts";
import { ESP_GRUB_DIR } from "../../src/boot/grubcfg.ts";
import { espImageSpec } from "../../src/boot/image-slots.ts";
import { unmountUnder, withChrootMounts } from "../../src/boot/initrd.ts";
import { runTool } from "../../src/boot/tool.ts";
import {
  FIRSTBOOT_GRUB_VAR,
  FIRSTBOOT_LINUX_ARG,
  FIRSTBOOT_STAMP,
  firstbootGrubLines,
  firstbootStamp,
} from "../../src/provision/firstboot.ts";
import { initrdProvisioning } from "../../src/provision/initrd.ts";
import { placeFiles } from "../../src/provision/placed.ts";

const CACHE = process.env.SLIPWAY_TEST_CACHE ?? "/var/tmp/slipway-test-cache";
const DEV_ROOTFS = "/var/tmp/slipway-dev/rootfs-base";
const FIXTURE_VERSION = "3";
const EXTRA_PACKAGES = ["openssh-server"];
const BASE_PACKAGES =
  "systemd,systemd-sysv,systemd-repart,udev,dbus,linux-image-amd64,dracut,dracut-core,erofs-utils,kmod,e2fsprogs,iproute2,zstd";

const SSHD_CONF = `# Ignition writes keys to ~/.ssh/authorized_keys.d/ignition.
AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/*
PasswordAuthentication no
UseDNS no
`;

/**
 * Test-only dracut module: error-level journal messages of the initrd on the console, so a
 * failed first boot shows Ignition's own reason there (the harness reads nothing else when the
 * boot stops). Debian's ignition-files.service runs Ignition with --log-to-stdout, which the
 * journal files at "info": the drop-in raises that stage's output to "err" so it is forwarded
 * too. Belongs in the provisioning glue module eventually.
 */
const CONSOLE_MODULE = "slipway-e2e-console";
const CONSOLE_MODULE_SETUP = `#!/bin/bash
check() { return 255; }
depends() { echo systemd; }
install() {
    mkdir -p "$initdir/etc/systemd/journald.conf.d"
    printf '[Journal]\\nForwardToConsole=yes\\nMaxLevelConsole=err\\n' \\
        > "$initdir/etc/systemd/journald.conf.d/50-slipway-console.conf"
    mkdir -p "$initdir/etc/systemd/system/ignition-files.service.d"
    printf '[Service]\\nSyslogLevel=err\\n' \\
        > "$initdir/etc/systemd/system/ignition-files.service.d/50-slipway-console.conf"
}
`;

const DHCP_NETWORK = `[Match]
Name=en* eth*

[Network]
DHCP=ipv4
`;

function inputKey(src: string | undefined): string {
  const root = new URL("../../", import.meta.url).pathname;
  const h = createHash("sha256").update(`e2e ${FIXTURE_VERSION}\n`);
  const files = [
    ...readdirSync(join(root, "src/boot")).map((f) => `src/boot/${f}`),
    "src/disk/layout.ts",
    "src/disk/ext4.ts",
    "src/disk/assemble.ts",
    "src/provision/initrd.ts",
    "src/provision/firstboot.ts",
    "test/e2e/image.ts",
  ];
  for (const f of files.sort()) {
    if (existsSync(join(root, f))) h.update(`${f}\n`).update(readFileSync(join(root, f)));
  }
  const status = src ? join(src, "var/lib/dpkg/status") : "";
  h.update(src && existsSync(status) ? readFileSync(status) : `mmdebstrap ${BASE_PACKAGES}`);
  return h.digest("hex").slice(0, 16);
}

let memo: Promise<string> | undefined;

/** Path of the e2e disk image ($SLIPWAY_E2E_IMAGE, or the cached fixture, built on first use). */
export function e2eImage(log: (l: string) => void = () => undefined): Promise<string> {
  const env = process.env.SLIPWAY_E2E_IMAGE;
  if (env) return Promise.resolve(env);
  memo ??= build(log);
  return memo;
}

async function build(log: (l: string) => void): Promise<string> {
  const src =
    process.env.SLIPWAY_TEST_ROOTFS ??
    (existsSync(join(DEV_ROOTFS, "usr")) ? DEV_ROOTFS : undefined);
  const key = inputKey(src);
  const dir = join(CACHE, `e2e-${key}`);
  const disk = join(dir, "disk.img");
  if (existsSync(join(dir, "done"))) return disk;
  await mkdir(CACHE, { recursive: true });
  const lock = join(CACHE, `e2e-${key}.lock`);
  await writeFile(lock, "", { flag: "a" });
  return await withFlock(lock, async () => {
    if (existsSync(join(dir, "done"))) return disk;
    const t0 = Date.now();
    const work = `${dir}.work`;
    await removeTree(work);
    await mkdir(work, { recursive: true });
    try {
      const tree = join(work, "tree");
      const prov = initrdProvisioning({ network: false });
      const packages = [...prov.packages, ...EXTRA_PACKAGES];
      if (src) {
        log(`copying ${src}`);
        await runTool("cp", ["-a", src, tree]);
        await aptInstall(tree, packages, log);
      } else {
        log("no rootfs found: running mmdebstrap (trixie)");
        await runTool("mmdebstrap", [
          "--variant=minbase",
          `--include=${BASE_PACKAGES},${packages.join(",")}`,
          "trixie",
          tree,
          "http://deb.debian.org/debian",
        ]);
      }
      await customize(tree, prov.files);
      log("boot chain: dracut, erofs, ext4, ESP, GPT");
      const result = await buildBootableDisk({
        tree,
        workDir: join(work, "w"),
        out: join(work, "disk.img"),
        sizes: { espMiB: 64, usrMiB: 640, rootMiB: 384, oemMiB: 16, oemConfigMiB: 8 },
        seed: `e2e-${key}`,
        compression: "uncompressed",
        extraDracutModules: [...prov.dracutModules, CONSOLE_MODULE],
        log,
      });
      await addFirstbootStamp(result.path);
      await removeTree(tree);
      await rm(join(work, "w"), { recursive: true, force: true });
      await writeFile(join(work, "done"), `${Math.round((Date.now() - t0) / 1000)}\n`);
      await rm(dir, { recursive: true, force: true });
      await rename(work, dir);
      for (const e of readdirSync(CACHE)) {
        if (/^e2e-[0-9a-f]{16}(\.lock)?$/.test(e) && !e.startsWith(`e2e-${key}`))
          await rm(join(CACHE, e), { recursive: true, force: true });
      }
      return disk;
    } catch (e) {
      await removeTree(work);
      throw e;
    }
  });
}

async function aptInstall(tree: string, packages: string[], log: (l: string) => void) {
  log(`apt-get install ${packages.join(" ")} (chroot)`);
  await runTool("cp", ["/etc/resolv.conf", join(tree, "etc/resolv.conf")]);
  // No daemons may start in the chroot (openssh-server's postinst would try).
  await writeFile(join(tree, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  try {
    await withChrootMounts(tree, async () => {
      const env = { DEBIAN_FRONTEND: "noninteractive" };
      await runTool("chroot", [tree, "apt-get", "update", "-q"], { env });
      await runTool(
        "chroot",
        [tree, "apt-get", "install", "-y", "-q", "--no-install-recommends", ...packages],
        { env },
      );
      await runTool("chroot", [tree, "apt-get", "clean"]);
    });
  } finally {
    await rm(join(tree, "usr/sbin/policy-rc.d"), { force: true });
    await rm(join(tree, "etc/resolv.conf"), { force: true });
    await runTool("sh", ["-c", `rm -rf ${join(tree, "var/lib/apt/lists")}/*`]);
  }
}

async function customize(tree: string, glue: ReturnType<typeof initrdProvisioning>["files"]) {
  placeFiles(tree, glue);
  placeFiles(tree, [
    {
      path: `usr/lib/dracut/modules.d/99${CONSOLE_MODULE}/module-setup.sh`,
      mode: 0o755,
      contents: CONSOLE_MODULE_SETUP,
    },
  ]);
  await mkdir(join(tree, "etc/ssh/sshd_config.d"), { recursive: true });
  await writeFile(join(tree, "etc/ssh/sshd_config.d/50-slipway.conf"), SSHD_CONF);
  await mkdir(join(tree, "etc/systemd/network"), { recursive: true });
  await writeFile(join(tree, "etc/systemd/network/80-dhcp.network"), DHCP_NETWORK);
  await runTool("systemctl", [
    `--root=${tree}`,
    "enable",
    "systemd-networkd.service",
    "ssh.service",
  ]);
  await writeFile(join(tree, "etc/hostname"), "slipway-e2e\n");
  // Fast, quiet first boot: no login prompt on the serial console, no wait-online stall.
  // Host keys come from the package's postinst; regenerating them costs minutes under TCG.
  for (const unit of [
    "serial-getty@ttyS0.service",
    "systemd-networkd-wait-online.service",
    "sshd-keygen.service",
  ]) {
    const p = join(tree, "etc/systemd/system", unit);
    await rm(p, { force: true });
    await runTool("ln", ["-s", "/dev/null", p]);
  }
}

/** Stand-in until grub.cfg sources the stamp: patch grub.cfg on the ESP and add the stamp. */
async function addFirstbootStamp(disk: string): Promise<void> {
  const esp = espImageSpec(disk);
  const cfgPath = `${ESP_GRUB_DIR}/grub.cfg`;
  let cfg = (await mtoolsGet(esp, cfgPath)).toString("utf8");
  if (!cfg.includes(FIRSTBOOT_STAMP)) {
    const first = cfg.indexOf("menuentry ");
    // Menu entries run in a new GRUB context that sees only exported variables.
    const lines = [...firstbootGrubLines(), `export ${FIRSTBOOT_GRUB_VAR}`];
    cfg = `${cfg.slice(0, first)}${lines.join("\n")}\n\n${cfg.slice(first)}`;
    // The device timeout: on a loaded CI host under TCG, virtio disks have shown up after
    // systemd's default 90 s and the boot went to emergency.
    cfg = cfg.replace(
      /^(\s*linux .*)$/gm,
      `$1 systemd.default_device_timeout_sec=600 ${FIRSTBOOT_LINUX_ARG}`,
    );
  }
  await mtoolsPut(esp, [
    [cfgPath, cfg],
    [FIRSTBOOT_STAMP, firstbootStamp("qemu")],
  ]);
}

async function removeTree(path: string): Promise<void> {
  await unmountUnder(path);
  await runTool("rm", ["-rf", "--one-file-system", path]);
}

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

// `node test/e2e/image.ts` builds (or finds) the image and prints its path.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await e2eImage((l) => process.stderr.write(`e2e image: ${l}\n`)));
}
