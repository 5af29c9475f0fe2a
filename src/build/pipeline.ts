/**
 * `slipway build`: one config → `builds/<version>/`. Works out whether
 * anything changed (one hash over every input), runs the stages through the
 * cache, and publishes the build directory with a rename only when every
 * stage succeeded; then updates builds.json, `latest` and the lockfile.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { type LoadedConfig, loadConfig } from "../config/load.ts";
import { InputError } from "../errors.ts";
import { type AgentFiles, buildAgentFiles } from "./agent-bundle.ts";
import {
  addBuild,
  nextDateVersion,
  pointLatest,
  readBuildsIndex,
  writeBuildsIndex,
} from "./builds-index.ts";
import { StageCache } from "./cache.ts";
import type { ResolvedOverlay } from "./customize.ts";
import { hashJson, hashPath } from "./hash.ts";
import { type HostTool, requireTools } from "./host-tools.ts";
import {
  lockfileFrom,
  lockPathFor,
  type PackageRequest,
  pinsFor,
  readLockfile,
  writeLockfile,
} from "./lockfile.ts";
import { type BuildMeta, readMeta } from "./meta.ts";
import type { ProgressReporter } from "./progress.ts";
import { BASE_PACKAGES } from "./rootfs.ts";
import { STAGE_VERSIONS } from "./stage-versions.ts";
import { acquireWorkDirLock } from "./work-lock.ts";

export interface BuildOptions {
  configPath: string;
  /** Where builds/ and cache/ live; default: the config's directory. */
  workDir?: string;
  force?: boolean;
  /** Re-resolve packages even when the lockfile matches. */
  updateLock?: boolean;
  reporter: ProgressReporter;
  /** Test hook (also SLIPWAY_FAIL_STAGE): this stage fails on purpose. */
  failStage?: string;
  /** Cache entries kept per stage. */
  cacheKeep?: number;
  now?: () => Date;
}

export interface BuildOutcome {
  upToDate: boolean;
  version: string;
  dir: string;
  seconds: number;
  meta: BuildMeta | undefined;
}

export interface WorkDirs {
  work: string;
  builds: string;
  cache: string;
  tmp: string;
}

export function workDirs(work: string): WorkDirs {
  return { work, builds: join(work, "builds"), cache: join(work, "cache"), tmp: join(work, "tmp") };
}

export function packageRequest(loaded: LoadedConfig): PackageRequest {
  const { debian, packages } = loaded.config;
  return {
    suite: debian.suite,
    mirror: debian.mirror,
    components: debian.components,
    architecture: "amd64",
    packages: [...new Set([...BASE_PACKAGES, ...packages])].sort(),
  };
}

export interface ResolvedInputs {
  request: PackageRequest;
  pins: Record<string, string> | undefined;
  overlays: ResolvedOverlay[];
  oemFiles: ({ dir: string; hash: string } | undefined)[];
  signingKey: string | undefined;
  /** The update agent bundle and unit every image ships. */
  agent: AgentFiles;
  /**
   * One hash over everything the build depends on, version and lockfile pins
   * excluded: the pins are compared with the latest build's package list
   * instead, since the build that wrote them had none.
   */
  inputHash: string;
}

export async function resolveInputs(
  loaded: LoadedConfig,
  updateLock = false,
): Promise<ResolvedInputs> {
  const { config, dir } = loaded;
  const request = packageRequest(loaded);
  const lock = updateLock ? undefined : readLockfile(lockPathFor(loaded.path));
  const pins = pinsFor(lock, request);
  const overlays: ResolvedOverlay[] = [];
  for (const o of config.overlays) {
    const source = resolve(dir, o.source);
    overlays.push({ source, target: o.target, hash: await hashPath(source) });
  }
  const oemFiles: ResolvedInputs["oemFiles"] = [];
  for (const v of config.oem) {
    if (!v.files) oemFiles.push(undefined);
    else {
      const d = resolve(dir, v.files);
      oemFiles.push({ dir: d, hash: await hashPath(d) });
    }
  }
  const signingKey = config.prod.signingKey
    ? readFileSync(resolve(dir, config.prod.signingKey), "utf8")
    : undefined;
  // The date version is assigned per build, so it is not an input; a semver value is.
  const agent = await buildAgentFiles();
  const versionInput = config.version.scheme === "semver" ? config.version : { scheme: "date" };
  const inputHash = hashJson({
    stages: STAGE_VERSIONS,
    config: { ...config, version: versionInput, overlays: undefined, oem: undefined },
    request,
    overlays: overlays.map((o) => ({ target: o.target, hash: o.hash })),
    oem: config.oem.map((v, i) => ({ ...v, files: oemFiles[i]?.hash ?? null })),
    signingKey: signingKey ?? null,
    agent: agent.hash,
  });
  return { request, pins, overlays, oemFiles, signingKey, agent, inputHash };
}

export async function build(opts: BuildOptions): Promise<BuildOutcome> {
  const started = Date.now();
  const now = opts.now ?? (() => new Date());
  const loaded = loadConfig(opts.configPath);
  const { config } = loaded;
  const dirs = workDirs(resolve(opts.workDir ?? loaded.dir));
  const { reporter } = opts;
  mkdirSync(dirs.builds, { recursive: true });
  const unlock = acquireWorkDirLock(dirs.work);
  try {
    // We hold the work dir lock: whatever is in tmp/ is left over from a killed build.
    rmSync(dirs.tmp, { recursive: true, force: true });
    const inputs = await resolveInputs(loaded, opts.updateLock);
    const index = readBuildsIndex(dirs.builds);
    const latest = index.builds[0];

    if (!opts.force && latest && latest.inputHash === inputs.inputHash) {
      const meta = readMeta(join(dirs.builds, latest.version));
      if (meta && (!inputs.pins || samePackages(inputs.pins, meta.packages))) {
        const seconds = (Date.now() - started) / 1000;
        reporter.emit({ type: "up-to-date", version: latest.version, seconds });
        return {
          upToDate: true,
          version: latest.version,
          dir: join(dirs.builds, latest.version),
          seconds,
          meta,
        };
      }
    }

    // The stages (and the boot code behind them) load only when there is work to do.
    const { ALL_STAGES, runStages } = await import("./run-stages.ts");
    const tools: HostTool[] = ALL_STAGES.flatMap((s) => [...s.tools]);
    requireTools(tools);

    const version = chooseVersion(loaded, index, dirs.builds, inputs.inputHash, now(), opts.force);
    const buildId = `${version}-${inputs.inputHash.slice(0, 12)}`;
    reporter.emit({ type: "build-start", name: config.name, version, workDir: dirs.work });

    mkdirSync(dirs.tmp, { recursive: true });
    const tmpBuild = join(dirs.tmp, `build-${version}-${process.pid}`);
    rmSync(tmpBuild, { recursive: true, force: true });
    mkdirSync(tmpBuild, { recursive: true });
    const cache = new StageCache(dirs.cache, opts.cacheKeep ?? 3);
    try {
      const meta = await runStages({
        cache,
        loaded,
        inputs,
        version,
        buildId,
        tmpBuild,
        dirs,
        opts,
        previous: latest ? readMeta(join(dirs.builds, latest.version)) : undefined,
        timestamp: Math.floor(now().getTime() / 1000),
        started,
      });
      // Publish: the build directory appears whole or not at all.
      const final = join(dirs.builds, version);
      if (existsSync(final)) rmSync(final, { recursive: true, force: true });
      renameSync(tmpBuild, final);
      writeBuildsIndex(
        dirs.builds,
        addBuild(index, {
          version,
          buildId,
          time: meta.time,
          inputHash: inputs.inputHash,
          flavour: config.flavour,
        }),
      );
      pointLatest(dirs.builds, version);
      const lockChanged = writeLockfile(
        lockPathFor(loaded.path),
        lockfileFrom(inputs.request, meta.packages),
      );
      if (lockChanged)
        reporter.emit({ type: "note", message: `wrote ${lockPathFor(loaded.path)}` });
      const seconds = (Date.now() - started) / 1000;
      reporter.emit({ type: "build-end", version, dir: final, seconds });
      cache.pruneAll();
      return { upToDate: false, version, dir: final, seconds, meta };
    } catch (err) {
      rmSync(tmpBuild, { recursive: true, force: true });
      cache.pruneAll();
      throw err;
    }
  } finally {
    unlock();
  }
}

function samePackages(pins: Record<string, string>, packages: BuildMeta["packages"]): boolean {
  return (
    packages.length === Object.keys(pins).length &&
    packages.every((p) => pins[p.name] === p.version)
  );
}

function chooseVersion(
  loaded: LoadedConfig,
  index: ReturnType<typeof readBuildsIndex>,
  buildsDir: string,
  inputHash: string,
  now: Date,
  force: boolean | undefined,
): string {
  const v = loaded.config.version;
  if (v.scheme === "date") return nextDateVersion(index, now, buildsDir);
  const value = v.value!;
  const existing = index.builds.find((b) => b.version === value);
  if (existing && existing.inputHash !== inputHash && !force) {
    throw new InputError(
      `version ${value} was already built from other inputs; raise version.value (or --force to replace it)`,
      { where: `${loaded.path}:${loaded.lineOf(["version", "value"])}` },
    );
  }
  return value;
}
