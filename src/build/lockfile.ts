/**
 * The package lockfile (`slipway.lock`, next to the config): the exact
 * version of every installed package, recorded after a build. While the
 * package request (suite, mirror, packages) is unchanged, the next rootfs
 * asks apt for exactly those versions (`pkg=version`), so a rebuild from the
 * lockfile installs the same package set. Changing the request re-resolves
 * and rewrites it; `--update-lock` does so on demand.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { InputError } from "../errors.ts";
import { hashJson } from "./hash.ts";

export const LOCKFILE_NAME = "slipway.lock";

export interface PackageRequest {
  suite: string;
  mirror: string;
  components: string[];
  architecture: string;
  /** Sorted, de-duplicated: slipway's base set plus the config's packages. */
  packages: string[];
}

export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
}

export interface Lockfile {
  lockfileVersion: 1;
  requestHash: string;
  request: PackageRequest;
  /** name → version, for every installed package. */
  packages: Record<string, string>;
}

export function lockPathFor(configPath: string): string {
  return join(dirname(configPath), LOCKFILE_NAME);
}

export function requestHash(req: PackageRequest): string {
  return hashJson(req);
}

export function readLockfile(path: string): Lockfile | undefined {
  if (!existsSync(path)) return undefined;
  let parsed: Lockfile;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8")) as Lockfile;
  } catch (err) {
    throw new InputError(`not a valid lockfile (${(err as Error).message}); delete it or fix it`, {
      where: path,
      cause: err,
    });
  }
  if (parsed.lockfileVersion !== 1 || typeof parsed.packages !== "object") {
    throw new InputError("unknown lockfile version; delete it to re-resolve packages", {
      where: path,
    });
  }
  return parsed;
}

/** The pins for this request, or undefined when the lockfile is absent or for another request. */
export function pinsFor(
  lock: Lockfile | undefined,
  req: PackageRequest,
): Record<string, string> | undefined {
  if (!lock || lock.requestHash !== requestHash(req)) return undefined;
  return lock.packages;
}

export function lockfileFrom(req: PackageRequest, installed: InstalledPackage[]): Lockfile {
  const packages: Record<string, string> = {};
  for (const p of [...installed].sort((a, b) => (a.name < b.name ? -1 : 1)))
    packages[p.name] = p.version;
  return { lockfileVersion: 1, requestHash: requestHash(req), request: req, packages };
}

/** Write only when the content changed (keeps the file's mtime for unchanged builds). */
export function writeLockfile(path: string, lock: Lockfile): boolean {
  const text = `${JSON.stringify(lock, null, 2)}\n`;
  if (existsSync(path) && readFileSync(path, "utf8") === text) return false;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
  return true;
}
