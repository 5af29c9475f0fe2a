/**
 * One built copy of examples/minimal-dev shared by every test file (and the
 * boot tests): built once per change of the example or the build/boot code,
 * under /var/tmp/slipway-test-cache. The stage cache there is shared too, so
 * a code change re-runs only the stages it affects (mmdebstrap runs once).
 */
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Document, isSeq, parseDocument } from "yaml";
import { buildAgentFiles } from "../../src/build/agent-bundle.ts";
import { hashJson, hashPath } from "../../src/build/hash.ts";
import { type BuildMeta, readMeta } from "../../src/build/meta.ts";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SLIPWAY = join(REPO, "bin/slipway");
export const EXAMPLE = join(REPO, "examples/minimal-dev");
export const TEST_CACHE = process.env.SLIPWAY_TEST_CACHE ?? "/var/tmp/slipway-test-cache";
/** Stage cache shared by every test work dir. */
export const SHARED_STAGE_CACHE = join(TEST_CACHE, "stage-cache");
/**
 * Entries per stage in the shared cache, for every build a test runs: the cache serves every
 * variant (example, e2e, boot, lifecycle, …), and with the default 3 a stage the variants
 * differ in (rootfs: five package sets) evicts itself in turn and mmdebstrap runs each time.
 */
export const SHARED_CACHE_KEEP = "16";

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
    env: { ...process.env, CI: "1", SLIPWAY_CACHE_KEEP: SHARED_CACHE_KEEP, ...opts.env },
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

/**
 * Code whose change changes what `slipway build` writes: the pipeline and boot chain, and what
 * goes into the image (provisioning files, the agent bundle and what it imports).
 */
const IMAGE_CODE = [
  "src/build",
  "src/boot",
  "src/disk",
  "src/config",
  "src/provision",
  "src/agent",
  "src/payload",
  "src/omaha",
  "src/lock",
  "src/errors.ts",
];

async function fixtureKey(workDir: string): Promise<string> {
  const code: Record<string, string> = {};
  for (const p of IMAGE_CODE) code[p] = await hashPath(join(REPO, p));
  return hashJson({
    config: await hashPath(join(workDir, "slipway.yaml")),
    work: await hashWorkInputs(workDir),
    code,
    // The agent bundle also takes in code outside IMAGE_CODE (src/cli): its own hash, which the
    // build's input hash uses, so a stale fixture never meets a build that rebuilds.
    agent: (await buildAgentFiles()).hash,
  }).slice(0, 16);
}

/** The example, built (once per change of its inputs or slipway's build code). */
export async function exampleBuild(): Promise<ExampleBuild> {
  return await customBuild("example", () => {});
}

/**
 * A variant of the example (e.g. the boot tests add a report unit through
 * an overlay): `prepare` edits a fresh copy of examples/minimal-dev; the
 * result is built once per change of that copy or of the build code and
 * cached under TEST_CACHE/<name>-<key>. The stage cache is shared, so a
 * variant costs only the stages its change reaches.
 */
export async function customBuild(
  name: string,
  prepare: (workDir: string) => void,
): Promise<ExampleBuild> {
  const staging = newWorkDir(`${name}-staging`);
  try {
    prepare(staging);
    const key = await fixtureKey(staging);
    const dir = join(TEST_CACHE, `${name}-${key}`);
    // Another test process may be building the same variant: the loser finds it built.
    return await withFlock(`${dir}.lock`, async () => {
      const found = readMeta(join(dir, "builds/latest"));
      if (found) return built(dir, found);
      const r = slipway(["build", "--config", join(staging, "slipway.yaml")]);
      if (r.code !== 0)
        throw new Error(`building ${name} failed (exit ${r.code}):\n${r.stderr.slice(-4000)}`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
      pruneFixtures(name, dir);
      const meta = readMeta(join(dir, "builds/latest"));
      if (!meta) throw new Error(`no meta.json in ${dir}/builds/latest`);
      return built(dir, meta);
    });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Run `fn` holding an exclusive flock on `lock` (a `flock` child holds it until we are done). */
export async function withFlock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  writeFileSync(lock, "", { flag: "a" });
  const holder = spawn("flock", [lock, "sh", "-c", "echo locked; read _"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise<void>((res, rej) => {
    holder.stdout.once("data", () => res());
    holder.once("exit", (c) => rej(new Error(`flock ${lock} exited ${c}`)));
  });
  try {
    return await fn();
  } finally {
    holder.stdin.end("\n");
  }
}

function built(dir: string, meta: BuildMeta): ExampleBuild {
  return {
    workDir: dir,
    configPath: join(dir, "slipway.yaml"),
    buildDir: join(dir, "builds/latest"),
    meta,
  };
}

/** Hash of a work dir's inputs: everything but outputs and the cache link. */
async function hashWorkInputs(workDir: string): Promise<string> {
  const parts: Record<string, string> = {};
  for (const n of readdirSync(workDir).sort()) {
    if (["cache", "builds", "tmp"].includes(n)) continue;
    parts[n] = await hashPath(join(workDir, n));
  }
  return hashJson(parts);
}

/** Keep the two newest builds of a fixture; this file's test work dirs older than an hour go. */
function pruneFixtures(name: string, keep: string): void {
  const entries = readdirSync(TEST_CACHE)
    .filter((n) => new RegExp(`^${name}-[0-9a-f]{16}$`).test(n))
    .map((n) => ({ n, t: statSync(join(TEST_CACHE, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const e of entries.slice(2)) {
    const p = join(TEST_CACHE, e.n);
    if (p === keep) continue;
    rmSync(p, { recursive: true, force: true });
    rmSync(`${p}.lock`, { force: true });
  }
  // Only this file's own work dirs: the cache dir is shared with other test areas.
  const mine = /^([a-z0-9-]+-staging|noop|overlay|fail|tools|badconfig|init|lockfile|convert)-/;
  for (const n of readdirSync(TEST_CACHE)) {
    const p = join(TEST_CACHE, n);
    if (!mine.test(n) || !existsSync(p)) continue;
    if (Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
  }
}

/** Edit a work dir's slipway.yaml as a YAML document (comments and layout kept). */
export function editConfig(workDir: string, edit: (doc: Document) => void): void {
  const path = join(workDir, "slipway.yaml");
  const doc = parseDocument(readFileSync(path, "utf8"));
  edit(doc);
  if (doc.errors.length) throw new Error(`${path}: ${doc.errors[0]?.message}`);
  writeFileSync(path, doc.toString());
}

/** Append values to a list in the config (created if missing), skipping ones already there. */
export function appendToList(doc: Document, path: string[], values: string[]): void {
  const node = doc.getIn(path);
  const have = isSeq(node) ? (node.toJSON() as string[]) : [];
  doc.setIn(path, [...have, ...values.filter((v) => !have.includes(v))]);
}

/** Source directory (in the work dir) of the config's first overlay into `target`. */
export function overlayDir(workDir: string, target: "/etc" | "/usr"): string {
  const doc = parseDocument(readFileSync(join(workDir, "slipway.yaml"), "utf8"));
  const overlays = (doc.toJS() as { overlays?: { source: string; target?: string }[] }).overlays;
  const o = overlays?.find((x) => (x.target ?? "/usr").replace(/\/+$/, "") === target);
  if (!o) throw new Error(`${workDir}/slipway.yaml: no overlay with target ${target}`);
  return join(workDir, o.source);
}

/** Write a file under a directory, creating parents. */
export function putFile(dir: string, rel: string, text: string, mode = 0o644): void {
  const p = join(dir, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text, { mode });
  chmodSync(p, mode);
}
