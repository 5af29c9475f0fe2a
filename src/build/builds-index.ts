/**
 * `builds/`: one directory per version, `builds.json` listing them newest
 * first, and the `latest` symlink. Both index files are replaced by rename.
 */
import { existsSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../errors.ts";

export interface BuildEntry {
  version: string;
  buildId: string;
  /** ISO time the build finished. */
  time: string;
  inputHash: string;
  flavour: string;
}

export interface BuildsIndex {
  schemaVersion: 1;
  builds: BuildEntry[];
}

export function readBuildsIndex(buildsDir: string): BuildsIndex {
  const file = join(buildsDir, "builds.json");
  if (!existsSync(file)) return { schemaVersion: 1, builds: [] };
  try {
    return JSON.parse(readFileSync(file, "utf8")) as BuildsIndex;
  } catch (err) {
    throw new InputError(`damaged builds index: ${(err as Error).message}`, {
      where: file,
      cause: err,
    });
  }
}

export function writeBuildsIndex(buildsDir: string, index: BuildsIndex): void {
  const file = join(buildsDir, "builds.json");
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(index, null, 2)}\n`);
  renameSync(tmp, file);
}

/** Put a finished build first (replacing an older entry of the same version). */
export function addBuild(index: BuildsIndex, entry: BuildEntry): BuildsIndex {
  return {
    schemaVersion: 1,
    builds: [entry, ...index.builds.filter((b) => b.version !== entry.version)],
  };
}

export function pointLatest(buildsDir: string, version: string): void {
  const link = join(buildsDir, "latest");
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(version, tmp);
  renameSync(tmp, link);
}

/** Date-based version YYYY.MM.DD.N: N counts this day's builds from 1. */
export function nextDateVersion(index: BuildsIndex, now: Date, buildsDir?: string): string {
  const y = now.getUTCFullYear();
  const m = String(now.getUTCMonth() + 1).padStart(2, "0");
  const d = String(now.getUTCDate()).padStart(2, "0");
  const prefix = `${y}.${m}.${d}.`;
  let n = 0;
  for (const b of index.builds) {
    if (b.version.startsWith(prefix)) n = Math.max(n, Number(b.version.slice(prefix.length)) || 0);
  }
  // A directory left by hand (or an index lost) must not be overwritten.
  while (buildsDir && existsSync(join(buildsDir, `${prefix}${n + 1}`))) n++;
  return `${prefix}${n + 1}`;
}
