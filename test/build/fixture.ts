/**
 * One built copy of examples/minimal-dev shared by every test file (and the
 * boot tests): built once per change of the example or the build/boot code,
 * under /var/tmp/slipway-test-cache. The stage cache there is shared too, so
 * a code change re-runs only the stages it affects (mmdebstrap runs once).
 */
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hashJson, hashPath } from "../../src/build/hash.ts";
import { type BuildMeta, readMeta } from "../../src/build/meta.ts";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SLIPWAY = join(REPO, "bin/slipway");
export const EXAMPLE = join(REPO, "examples/minimal-dev");
export const TEST_CACHE = process.env.SLIPWAY_TEST_CACHE ?? "/var/tmp/slipway-test-cache";
/** Stage cache shared by every test work dir. */
export const SHARED_STAGE_CACHE = join(TEST_CACHE, "stage-cache");

export interface ExampleBuild {
  workDir: string;
  configPath: string;
  /** builds/<version> of the example's build. */
  buildDir: string;
  meta: BuildMeta;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

export function slipway(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): CliResult {
  const started = Date.now();
  const r = spawnSync(SLIPWAY, args, {
    cwd: opts.cwd,
    env: { ...process.env, CI: "1", ...opts.env },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    code: r.status ?? 1,
    stdout: r.stdout,
    stderr: r.stderr,
    seconds: (Date.now() - started) / 1000,
  };
}

/** A fresh work dir from the example whose cache/ is the shared stage cache. */
export function newWorkDir(name: string): string {
  mkdirSync(TEST_CACHE, { recursive: true });
  const dir = join(TEST_CACHE, `${name}-${process.pid}-${Date.now()}`);
  cpSync(EXAMPLE, dir, { recursive: true });
  linkSharedCache(dir);
  return dir;
}

export function linkSharedCache(workDir: string): void {
  mkdirSync(SHARED_STAGE_CACHE, { recursive: true });
  rmSync(join(workDir, "cache"), { recursive: true, force: true });
  symlinkSync(SHARED_STAGE_CACHE, join(workDir, "cache"));
}

/**
 * A copy of a built work dir for a test to change: config, overlays,
 * lockfile and the builds index with each build's meta.json (no images:
 * the no-op check and the package diff need only those). Its cache/ is the
 * shared stage cache.
 */
export function copyWorkDir(from: string, name: string): string {
  const dir = join(TEST_CACHE, `${name}-${process.pid}-${Date.now()}`);
  cpSync(from, dir, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => {
      const rel = relative(from, src);
      if (rel === "cache" || rel.startsWith("tmp")) return false;
      const parts = rel.split("/");
      // builds/<version>/meta.json only
      return !(parts[0] === "builds" && parts.length === 3 && parts[2] !== "meta.json");
    },
  });
  linkSharedCache(dir);
  return dir;
}

async function fixtureKey(): Promise<string> {
  return hashJson({
    example: await hashPath(EXAMPLE),
    build: await hashPath(join(REPO, "src/build")),
    boot: await hashPath(join(REPO, "src/boot")),
    disk: await hashPath(join(REPO, "src/disk")),
    config: await hashPath(join(REPO, "src/config")),
  }).slice(0, 16);
}

/** The example, built (once per change of its inputs or slipway's build code). */
export async function exampleBuild(): Promise<ExampleBuild> {
  const key = await fixtureKey();
  const dir = join(TEST_CACHE, `example-${key}`);
  const found = readMeta(join(dir, "builds/latest"));
  if (found)
    return {
      workDir: dir,
      configPath: join(dir, "slipway.yaml"),
      buildDir: join(dir, "builds/latest"),
      meta: found,
    };

  const tmp = newWorkDir(`example-${key}.tmp`);
  const r = slipway(["build", "--config", join(tmp, "slipway.yaml")]);
  if (r.code !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`building the example failed (exit ${r.code}):\n${r.stderr.slice(-4000)}`);
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  pruneFixtures(dir);
  const meta = readMeta(join(dir, "builds/latest"));
  if (!meta) throw new Error(`no meta.json in ${dir}/builds/latest`);
  return {
    workDir: dir,
    configPath: join(dir, "slipway.yaml"),
    buildDir: join(dir, "builds/latest"),
    meta,
  };
}

/** Keep the two newest example builds; test work dirs older than an hour go. */
function pruneFixtures(keep: string): void {
  const entries = readdirSync(TEST_CACHE)
    .filter((n) => n.startsWith("example-") && !n.includes(".tmp"))
    .map((n) => ({ n, t: statSync(join(TEST_CACHE, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const e of entries.slice(2)) {
    const p = join(TEST_CACHE, e.n);
    if (p !== keep) rmSync(p, { recursive: true, force: true });
  }
  // Only this file's own work dirs: the cache dir is shared with other test areas.
  const mine = /^(example-[0-9a-f]+\.tmp|noop|overlay|fail|tools|badconfig|init|lockfile|convert)-/;
  for (const n of readdirSync(TEST_CACHE)) {
    const p = join(TEST_CACHE, n);
    if (!mine.test(n) || !existsSync(p)) continue;
    if (Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
  }
}
