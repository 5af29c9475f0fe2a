/**
 * `meta.json`: what a build is and what it holds — identity, input hash,
 * every artifact with sha256 and sizes, the package list and its diff
 * against the previous build, per-stage timings and sizes, and the kernel
 * command line. Payload creation and `slipway run` read it.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { exec } from "./exec.ts";
import type { InstalledPackage } from "./lockfile.ts";
import type { StageTiming } from "./stage.ts";

export interface ArtifactRecord {
  /** Relative to the build directory. */
  path: string;
  sha256: string;
  /** Apparent size in bytes (what a reader gets). */
  size: number;
  /** Bytes allocated on disk (sparse images take less). */
  allocated: number;
  /** For compressed formats: what the content unpacks to. */
  uncompressedSize?: number;
  uncompressedSha256?: string;
  format?: string;
}

export interface PackageDiff {
  /** The build compared against, if any. */
  against: string | null;
  added: InstalledPackage[];
  removed: InstalledPackage[];
  changed: { name: string; from: string; to: string }[];
}

export interface BuildMeta {
  schemaVersion: 1;
  name: string;
  version: string;
  buildId: string;
  flavour: "dev" | "prod";
  /** Hash of everything the build depends on; equal hash = nothing to rebuild. */
  inputHash: string;
  time: string;
  debian: { suite: string; mirror: string };
  kernelVersion: string;
  kernelCmdline: string;
  /** Filesystem and compression of the USR image; verity root hash for prod images. */
  usr: { filesystem: string; compression: string; treeBytes: number; verityRootHash?: string };
  artifacts: Record<string, ArtifactRecord>;
  packages: InstalledPackage[];
  packageDiff: PackageDiff;
  stages: StageTiming[];
  /** Seconds from start to finish of this build. */
  buildSeconds: number;
  /** Extra facts from the boot chain (partition GUIDs, OEM ids...). */
  boot?: Record<string, unknown>;
}

export async function artifactRecord(
  buildDir: string,
  file: string,
  format?: string,
): Promise<ArtifactRecord> {
  const st = statSync(file);
  const rec: ArtifactRecord = {
    path: relative(buildDir, file),
    sha256: await sha256Of(file),
    size: st.size,
    allocated: st.blocks * 512,
  };
  if (format) rec.format = format;
  return rec;
}

export function diffPackages(
  previous: InstalledPackage[] | undefined,
  current: InstalledPackage[],
  against: string | null,
): PackageDiff {
  const before = new Map((previous ?? []).map((p) => [p.name, p]));
  const after = new Map(current.map((p) => [p.name, p]));
  const diff: PackageDiff = { against, added: [], removed: [], changed: [] };
  if (!previous) return diff;
  for (const p of current) {
    const old = before.get(p.name);
    if (!old) diff.added.push(p);
    else if (old.version !== p.version)
      diff.changed.push({ name: p.name, from: old.version, to: p.version });
  }
  for (const p of previous) if (!after.has(p.name)) diff.removed.push(p);
  return diff;
}

export function readMeta(buildDir: string): BuildMeta | undefined {
  const file = join(buildDir, "meta.json");
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as BuildMeta;
  } catch {
    return undefined;
  }
}

/**
 * sha256 of a (large) file with coreutils' sha256sum: several run in
 * parallel on separate cores while Node waits.
 */
export async function sha256Of(file: string): Promise<string> {
  const out = await exec("sha256sum", ["--binary", file], { captureStdout: true });
  return out.slice(0, 64);
}
