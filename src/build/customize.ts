/**
 * Stage `customize`: the rootfs tree made into this image's OS. Copies the
 * cached Debian tree (never edits it), then applies overlays, units, users,
 * os-release, update.conf, the signing key, the factory copy of /etc and
 * /var with tmpfiles rules, sysusers.d entries for package users, and
 * finally lets the boot code prepare the tree for the CoreOS layout.
 */
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { installInitrdInTree, prepareTreeForLayout } from "../boot/tree.ts";
import type { ImageConfig } from "../config/schema.ts";
import { SlipwayError } from "../errors.ts";
import type { InitrdOutput } from "./boot-stages.ts";
import { diskUsage } from "./cache.ts";
import { TOOLS } from "./host-tools.ts";
import {
  autologinDropIn,
  FACTORY_TMPFILES,
  type ImageIdentity,
  OEM_ENVIRONMENT_SCRIPT,
  OEM_ENVIRONMENT_UNIT,
  osRelease,
  updateConf,
} from "./image-files.ts";
import type { RootfsOutput } from "./rootfs.ts";
import type { Stage, StageContext, StageResult } from "./stage.ts";
import { STAGE_VERSIONS } from "./stage-versions.ts";
import { sysusersConf } from "./sysusers.ts";

export interface ResolvedOverlay {
  /** Absolute source directory. */
  source: string;
  target: string;
  /** Content hash of the source (the cache key uses it, not the path). */
  hash: string;
}

export interface CustomizeInput {
  rootfs: StageResult<RootfsOutput>;
  identity: ImageIdentity;
  overlays: ResolvedOverlay[];
  units: ImageConfig["units"];
  flavour: ImageConfig["flavour"];
  dev: ImageConfig["dev"];
  update: ImageConfig["update"];
  /** PEM text of the update-signing public key, if any. */
  signingKey: string | undefined;
  /** Build time (seconds since the epoch): /usr's mtime, so ConditionNeedsUpdate= fires. */
  timestamp: number;
  /** The initrd, installed next to the kernel inside /usr (the slot image is self-contained). */
  initrd: StageResult<InitrdOutput>;
}

export interface CustomizeOutput {
  tree: string;
  /** Bytes of the /usr tree on disk (the USR image's source). */
  usrBytes: number;
}

/** Only these may hold content on /; the rest are symlinks into /usr or mount points. */
const MERGED_USR_LINKS = ["bin", "sbin", "lib", "lib64"];

export const customizeStage: Stage<CustomizeInput, CustomizeOutput> = {
  name: "customize",
  title: "overlays, units, users, os-release, factory /etc",
  version: STAGE_VERSIONS.customize,
  tools: [TOOLS.cp],
  key: (i) => ({
    rootfs: i.rootfs,
    identity: i.identity,
    overlays: i.overlays.map((o) => ({ target: o.target, hash: o.hash })),
    units: i.units,
    flavour: i.flavour,
    dev: i.dev,
    update: i.update,
    signingKey: i.signingKey ?? null,
    timestamp: i.timestamp,
    initrd: i.initrd,
  }),
  async run(input, ctx) {
    const tree = join(ctx.outDir, "tree");
    ctx.progress("copying the rootfs tree");
    await ctx.exec("cp", [
      "-a",
      "--reflink=auto",
      input.rootfs.path(input.rootfs.value.tree),
      tree,
    ]);
    checkMergedUsr(tree);

    ctx.progress("applying overlays");
    for (const o of input.overlays) {
      const dest = join(tree, o.target);
      mkdirSync(dest, { recursive: true });
      // Content and modes from the overlay, ownership root (the build user's ids mean nothing in the image).
      await ctx.exec("cp", [
        "-rT",
        "--preserve=mode,timestamps",
        "--no-preserve=ownership",
        o.source,
        dest,
      ]);
    }

    writeIdentity(tree, input);
    await configureUnits(tree, input, ctx);
    await configureAccess(tree, input, ctx);
    cleanMachineState(tree);

    // The boot code's part: kernel into /usr, /boot and /oem mount points, fstab, repart.
    ctx.progress("preparing the tree for the disk layout");
    const prepared = await prepareTreeForLayout(tree, { kver: input.initrd.value.kver });
    await installInitrdInTree(tree, prepared.kver, input.initrd.path(input.initrd.value.initrd));

    ctx.progress("sysusers.d and factory copies of /etc and /var");
    writeSysusers(tree);
    await writeFactory(tree, ctx);

    const t = input.timestamp;
    utimesSync(join(tree, "usr"), t, t);
    return { tree: "tree", usrBytes: diskUsage(join(tree, "usr")) };
  },
};

function checkMergedUsr(tree: string): void {
  for (const name of MERGED_USR_LINKS) {
    const p = join(tree, name);
    if (!existsSync(p) && !isLink(p)) continue;
    if (!isLink(p) || !readlinkSync(p).replace(/^\//, "").startsWith("usr/")) {
      throw new SlipwayError(`/${name} is not a symlink into /usr: the tree is not merged-/usr`, {
        where: tree,
      });
    }
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function writeFile(tree: string, rel: string, text: string, mode = 0o644): void {
  const p = join(tree, rel);
  mkdirSync(dirname(p), { recursive: true });
  rmSync(p, { force: true });
  writeFileSync(p, text);
  chmodSync(p, mode);
}

function writeIdentity(tree: string, input: CustomizeInput): void {
  let debianVersion = "";
  try {
    debianVersion = readFileSync(join(tree, "etc/debian_version"), "utf8").trim();
  } catch {}
  writeFile(tree, "usr/lib/os-release", osRelease(input.identity, debianVersion));
  rmSync(join(tree, "etc/os-release"), { force: true });
  symlinkSync("../usr/lib/os-release", join(tree, "etc/os-release"));
  writeFile(tree, "usr/share/slipway/update.conf", updateConf(input.update, input.identity));
  writeFile(tree, "usr/lib/systemd/system/slipway-oem-environment.service", OEM_ENVIRONMENT_UNIT);
  writeFile(tree, "usr/lib/slipway/oem-environment", OEM_ENVIRONMENT_SCRIPT, 0o755);
  const wants = join(tree, "etc/systemd/system/multi-user.target.wants");
  mkdirSync(wants, { recursive: true });
  rmSync(join(wants, "slipway-oem-environment.service"), { force: true });
  symlinkSync(
    "/usr/lib/systemd/system/slipway-oem-environment.service",
    join(wants, "slipway-oem-environment.service"),
  );
  if (input.signingKey) writeFile(tree, "usr/share/slipway/update-signing.pem", input.signingKey);
  writeFile(tree, "etc/hostname", `${input.identity.name}\n`);
}

async function configureUnits(
  tree: string,
  input: CustomizeInput,
  ctx: StageContext,
): Promise<void> {
  const { enable, disable, mask } = input.units;
  // The image's own systemctl works offline in a chroot and knows the image's presets.
  for (const [verb, units] of [
    ["enable", enable],
    ["disable", disable],
    ["mask", mask],
  ] as const) {
    if (units.length === 0) continue;
    ctx.progress(`systemctl ${verb} ${units.join(" ")}`);
    await ctx.exec("chroot", [tree, "systemctl", verb, ...units]);
  }
}

async function configureAccess(
  tree: string,
  input: CustomizeInput,
  ctx: StageContext,
): Promise<void> {
  if (input.flavour === "prod") {
    // No debug access: root stays locked, no autologin, no users baked in.
    await ctx.exec("chroot", [tree, "passwd", "--lock", "root"]);
    return;
  }
  const { dev } = input;
  for (const u of dev.users) {
    ctx.progress(`user ${u.name}`);
    const args = ["useradd", "--create-home", "--shell", u.shell, "--user-group"];
    if (u.groups.length) args.push("--groups", u.groups.join(","));
    if (u.passwordHash) args.push("--password", u.passwordHash);
    await ctx.exec("chroot", [tree, ...args, u.name]);
    if (u.sshAuthorizedKeys.length) {
      const sshDir = join(tree, "home", u.name, ".ssh");
      writeFile(
        tree,
        join("home", u.name, ".ssh/authorized_keys"),
        `${u.sshAuthorizedKeys.join("\n")}\n`,
        0o600,
      );
      chmodSync(sshDir, 0o700);
      await ctx.exec("chroot", [
        tree,
        "chown",
        "-R",
        `${u.name}:${u.name}`,
        `/home/${u.name}/.ssh`,
      ]);
    }
  }
  if (dev.debugPassword) {
    // set_shared_user_password: one debug password for root and every dev user.
    const names = ["root", ...dev.users.map((u) => u.name)];
    await ctx.exec("chroot", [tree, "chpasswd"], {
      input: names.map((n) => `${n}:${dev.debugPassword}`).join("\n"),
    });
  }
  if (dev.autologin) {
    writeFile(
      tree,
      "etc/systemd/system/getty@.service.d/10-autologin.conf",
      autologinDropIn("getty"),
    );
    writeFile(
      tree,
      "etc/systemd/system/serial-getty@.service.d/10-autologin.conf",
      autologinDropIn("serial-getty"),
    );
  }
}

/** Per-machine identity must be created on first boot, not shared by every host. */
function cleanMachineState(tree: string): void {
  writeFile(tree, "etc/machine-id", "uninitialized\n", 0o444);
  rmSync(join(tree, "var/lib/dbus/machine-id"), { force: true });
  for (const f of [
    "var/log/apt",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/cache/ldconfig/aux-cache",
  ]) {
    rmSync(join(tree, f), { recursive: true, force: true });
  }
}

function writeSysusers(tree: string): void {
  const passwd = readFileSync(join(tree, "etc/passwd"), "utf8");
  const group = readFileSync(join(tree, "etc/group"), "utf8");
  writeFile(tree, "usr/lib/sysusers.d/slipway-image.conf", sysusersConf(passwd, group));
}

async function writeFactory(tree: string, ctx: StageContext): Promise<void> {
  const factory = join(tree, "usr/share/factory");
  rmSync(factory, { recursive: true, force: true });
  mkdirSync(factory, { recursive: true });
  // machine-id stays out: a host must generate its own.
  await ctx.exec("cp", ["-a", "--reflink=auto", join(tree, "etc"), join(factory, "etc")]);
  rmSync(join(factory, "etc/machine-id"), { force: true });
  await ctx.exec("cp", ["-a", "--reflink=auto", join(tree, "var"), join(factory, "var")]);
  writeFile(tree, "usr/lib/tmpfiles.d/slipway-factory.conf", FACTORY_TMPFILES);
}
