/**
 * Stage `rootfs`: a Debian tree from Debian's archive with mmdebstrap
 * (minbase + slipway's base set + the config's packages). With a matching
 * lockfile every package is requested at its locked version. Outputs the
 * tree, the installed package list and the licence attribution.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { SlipwayError } from "../errors.ts";
import { TOOLS } from "./host-tools.ts";
import { type LicenceSummary, writeLicences } from "./licences.ts";
import type { InstalledPackage, PackageRequest } from "./lockfile.ts";
import type { Stage } from "./stage.ts";
import { STAGE_VERSIONS } from "./stage-versions.ts";

/**
 * Packages every slipway image has: init, device manager, kernel, initrd
 * generator, first-boot provisioning (Ignition), growing ROOT (repart),
 * dm-verity (systemd-veritysetup lives in systemd-cryptsetup), and Node and
 * mtools (it edits the FAT ESP without mounting it) for the update agent.
 */
export const BASE_PACKAGES: readonly string[] = [
  "dbus",
  "dracut",
  "e2fsprogs",
  "ignition",
  "iproute2",
  "kmod",
  "linux-image-amd64",
  "mtools",
  "nodejs",
  "systemd",
  "systemd-cryptsetup",
  "systemd-repart",
  "systemd-sysv",
  "udev",
  "zstd",
];

/** Keep docs out of the image except copyright files (for the licence file). */
const DPKG_EXCLUDES = [
  "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/info/*",
  "path-exclude=/usr/share/locale/*",
  "path-exclude=/usr/share/doc/*",
  "path-include=/usr/share/doc/*/copyright",
];

export interface RootfsInput {
  request: PackageRequest;
  /** Exact versions from the lockfile, or undefined to resolve the newest. */
  pins: Record<string, string> | undefined;
}

export interface RootfsOutput {
  /** The Debian tree, relative to the stage dir (read-only for later stages). */
  tree: string;
  packages: InstalledPackage[];
  licencesFile: string;
  licences: LicenceSummary;
  kernelVersion: string;
}

export const rootfsStage: Stage<RootfsInput, RootfsOutput> = {
  name: "rootfs",
  title: "Debian tree with mmdebstrap",
  version: STAGE_VERSIONS.rootfs,
  tools: [TOOLS.mmdebstrap, TOOLS.keyring, TOOLS.dpkgQuery],
  key: (input) => ({ request: input.request, pins: input.pins ?? null, excludes: DPKG_EXCLUDES }),
  async run(input, ctx) {
    const { request, pins } = input;
    const include = pins
      ? Object.entries(pins).map(([name, version]) => `${name}=${version}`)
      : request.packages;
    if (pins) {
      const unpinned = request.packages.filter((p) => !(p in pins));
      if (unpinned.length > 0) {
        throw new SlipwayError(
          `lockfile has no version for ${unpinned.join(", ")}; use --update-lock`,
        );
      }
    }
    ctx.progress(
      pins
        ? `installing ${include.length} locked packages`
        : `resolving ${request.packages.length} packages`,
    );
    const tree = join(ctx.outDir, "tree");
    await ctx.exec("mmdebstrap", [
      "--mode=root",
      "--variant=minbase",
      "--format=directory",
      `--architectures=${request.architecture}`,
      `--components=${request.components.join(",")}`,
      `--include=${include.join(",")}`,
      ...DPKG_EXCLUDES.map((o) => `--dpkgopt=${o}`),
      // Pinned versions may be older than what minbase's essential set resolved.
      ...(pins ? ['--aptopt=APT::Get::allow-downgrades "true"'] : []),
      request.suite,
      tree,
      request.mirror,
    ]);
    ctx.progress("recording package versions");
    const packages = await installedPackages(tree, (c, a) =>
      ctx.exec(c, a, { captureStdout: true }),
    );
    if (pins) {
      const drift = packages.filter(
        (p) => pins[p.name] !== undefined && pins[p.name] !== p.version,
      );
      if (drift.length > 0) {
        throw new SlipwayError(
          `installed versions differ from the lockfile: ${drift.map((p) => `${p.name} ${p.version} (locked ${pins[p.name]})`).join(", ")}`,
        );
      }
    } else {
      // Building from the lockfile this run writes would give exactly this tree.
      ctx.alsoKnownAs({
        request,
        pins: Object.fromEntries(packages.map((p) => [p.name, p.version])),
        excludes: DPKG_EXCLUDES,
      });
    }
    const licences = writeLicences(tree, packages, join(ctx.outDir, "licences.txt"));
    return {
      tree: "tree",
      packages,
      licencesFile: "licences.txt",
      licences,
      kernelVersion: kernelVersionOf(packages, tree),
    };
  },
};

export async function installedPackages(
  tree: string,
  run: (cmd: string, args: string[]) => Promise<string>,
): Promise<InstalledPackage[]> {
  const out = await run("dpkg-query", [
    `--admindir=${join(tree, "var/lib/dpkg")}`,
    "-W",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
    "-f=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n",
  ]);
  return out
    .split("\n")
    .map((l) => l.split("\t"))
    .filter((f) => f.length === 4 && f[0]!.startsWith("ii"))
    .map(([, name, version, architecture]) => ({
      name: name!,
      version: version!,
      architecture: architecture!,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The version of the installed kernel image package's modules dir (e.g. 6.12.57+deb13-amd64). */
function kernelVersionOf(packages: InstalledPackage[], tree: string): string {
  const image = packages.find((p) => /^linux-image-\d/.test(p.name));
  if (image) return image.name.replace(/^linux-image-/, "");
  try {
    return readdirSync(join(tree, "usr/lib/modules"))[0] ?? "";
  } catch {
    return "";
  }
}
