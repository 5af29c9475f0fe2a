/**
 * `slipway build`: one config → `builds/<version>/`. Works out whether
 * anything changed (one hash over every input), runs the stages through the
 * cache, and publishes the build directory with a rename only when every
 * stage succeeded; then updates builds.json, `latest` and the lockfile.
 */
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { type LoadedConfig, loadConfig } from "../config/load.ts";
import { InputError } from "../errors.ts";
import {
  diskPlanFor,
  diskStage,
  espStage,
  initrdStage,
  layoutSizes,
  oemStage,
  rootStage,
  usrStage,
} from "./boot-stages.ts";
import {
  addBuild,
  nextDateVersion,
  pointLatest,
  readBuildsIndex,
  writeBuildsIndex,
} from "./builds-index.ts";
import { StageCache } from "./cache.ts";
import { customizeStage, type ResolvedOverlay } from "./customize.ts";
import { convertImage, type ImageFormat } from "./formats.ts";
import { hashJson, hashPath } from "./hash.ts";
import { type HostTool, requireTools } from "./host-tools.ts";
import type { ImageIdentity } from "./image-files.ts";
import {
  lockfileFrom,
  lockPathFor,
  type PackageRequest,
  pinsFor,
  readLockfile,
  writeLockfile,
} from "./lockfile.ts";
import {
  type ArtifactRecord,
  artifactRecord,
  type BuildMeta,
  diffPackages,
  readMeta,
} from "./meta.ts";
import type { ProgressReporter } from "./progress.ts";
import { BASE_PACKAGES, rootfsStage } from "./rootfs.ts";
import { type Stage, StageRunner } from "./stage.ts";
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

/** Every stage, in pipeline order (their tools are checked before anything runs). */
export const ALL_STAGES: readonly Stage<never, unknown>[] = [
  rootfsStage,
  initrdStage,
  customizeStage,
  usrStage,
  rootStage,
  oemStage,
  espStage,
  diskStage,
] as unknown as Stage<never, unknown>[];

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

interface ResolvedInputs {
  request: PackageRequest;
  pins: Record<string, string> | undefined;
  overlays: ResolvedOverlay[];
  oemFiles: ({ dir: string; hash: string } | undefined)[];
  signingKey: string | undefined;
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
  const versionInput = config.version.scheme === "semver" ? config.version : { scheme: "date" };
  const inputHash = hashJson({
    stages: ALL_STAGES.map((s) => `${s.name}@${s.version}`),
    config: { ...config, version: versionInput, overlays: undefined, oem: undefined },
    request,
    overlays: overlays.map((o) => ({ target: o.target, hash: o.hash })),
    oem: config.oem.map((v, i) => ({ ...v, files: oemFiles[i]?.hash ?? null })),
    signingKey: signingKey ?? null,
  });
  return { request, pins, overlays, oemFiles, signingKey, inputHash };
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

interface RunContext {
  loaded: LoadedConfig;
  inputs: ResolvedInputs;
  version: string;
  buildId: string;
  tmpBuild: string;
  dirs: WorkDirs;
  opts: BuildOptions;
  previous: BuildMeta | undefined;
  cache: StageCache;
  timestamp: number;
  started: number;
}

async function runStages(rc: RunContext): Promise<BuildMeta> {
  const { loaded, inputs, version, buildId, tmpBuild, opts } = rc;
  const { config } = loaded;
  const buildLog = join(tmpBuild, "build.log");
  writeFileSync(buildLog, `slipway build ${config.name} ${version} (${buildId})\n`);
  const runner = new StageRunner({
    cache: rc.cache,
    reporter: opts.reporter,
    buildLog,
    force: opts.force,
    failStage: opts.failStage ?? process.env.SLIPWAY_FAIL_STAGE,
  });
  const verity = config.flavour === "prod";
  const seed = buildId;
  const plan = diskPlanFor(seed, layoutSizes(config.partitions));
  const identity: ImageIdentity = {
    name: config.name,
    prettyName: config.prettyName ?? config.name,
    version,
    buildId,
    flavour: config.flavour,
    suite: config.debian.suite,
  };

  const artifacts: Record<string, ArtifactRecord> = {};
  const pending: Promise<void>[] = [];
  /** Link (or copy) an artifact into the build dir; its hash runs alongside what follows. */
  const place = (name: string, src: string, file: string, format?: string) => {
    const dest = join(tmpBuild, file);
    linkOrCopy(src, dest);
    const recorded = artifactRecord(tmpBuild, dest, format).then((rec) => {
      artifacts[name] = rec;
    });
    recorded.catch(() => {}); // awaited below; a failed build must not crash on it
    pending.push(recorded);
  };
  const rootfs = await runner.run(rootfsStage, { request: inputs.request, pins: inputs.pins });
  const initrd = await runner.run(initrdStage, { rootfs, verity, extraModules: [] });
  const tree = await runner.run(customizeStage, {
    rootfs,
    initrd,
    identity,
    overlays: inputs.overlays,
    units: config.units,
    flavour: config.flavour,
    dev: config.dev,
    update: config.update,
    signingKey: inputs.signingKey,
    timestamp: rc.timestamp,
  });
  const usr = await runner.run(usrStage, {
    tree,
    compression: config.usr.compression,
    verity,
    seed,
    timestamp: rc.timestamp,
  });
  place("usr", usr.path(usr.value.image), "usr.img");
  const root = await runner.run(rootStage, { tree, plan, seed, timestamp: rc.timestamp });

  let cmdline = "";
  const bootFacts: Record<string, unknown> = { variants: [] as unknown[] };
  for (const [i, variant] of config.oem.entries()) {
    const oem = await runner.run(oemStage, {
      variant,
      files: inputs.oemFiles[i],
      name: config.name,
      plan,
      seed,
      timestamp: rc.timestamp,
    });
    const esp = await runner.run(espStage, {
      tree,
      initrd,
      usr,
      plan,
      seed,
      kernelArgs: [
        `ignition.platform.id=${variant.id}`,
        ...config.kernel.cmdline,
        ...variant.cmdline,
      ],
      variant: variant.id,
    });
    const disk = await runner.run(diskStage, { plan, esp, usr, oem, root });
    const suffix = i === 0 ? "" : `-${variant.id}`;
    place(`disk${suffix}`, disk.path(disk.value.image), `disk${suffix}.raw`, "raw");
    if (i === 0) cmdline = esp.value.cmdline;
    (bootFacts.variants as unknown[]).push({
      id: variant.id,
      cmdline: esp.value.cmdline,
      disk: `disk${suffix}.raw`,
    });
    for (const format of config.formats) {
      const out = join(tmpBuild, `disk${suffix}.${formatExtension(format)}`);
      await convertImage(join(tmpBuild, `disk${suffix}.raw`), out, format);
      artifacts[`disk${suffix}-${format}`] = await artifactRecord(tmpBuild, out, format);
    }
  }
  bootFacts.partitions = plan.partitions.map((p) => ({
    label: p.label,
    number: p.number,
    partuuid: p.uniqueGuid,
    offset: Number(p.offset),
    size: Number(p.size),
  }));
  bootFacts.diskGuid = plan.diskGuid;

  const treeDir = tree.path(tree.value.tree);
  const kver = initrd.value.kver;
  place("kernel", join(treeDir, "usr/lib/modules", kver, "vmlinuz"), "vmlinuz");
  place("initrd", initrd.path(initrd.value.initrd), "initrd.img");
  place("licences", rootfs.path(rootfs.value.licencesFile), "licences.txt");

  await Promise.all(pending);
  const packages = rootfs.value.packages;
  const meta: BuildMeta = {
    schemaVersion: 1,
    name: config.name,
    version,
    buildId,
    flavour: config.flavour,
    inputHash: inputs.inputHash,
    time: new Date().toISOString(),
    debian: { suite: config.debian.suite, mirror: config.debian.mirror },
    kernelVersion: kver,
    kernelCmdline: cmdline,
    usr: {
      filesystem: config.usr.filesystem,
      compression: config.usr.compression,
      treeBytes: tree.value.usrBytes,
      ...(usr.value.verity ? { verityRootHash: usr.value.verity.rootHash } : {}),
    },
    artifacts,
    packages,
    packageDiff: diffPackages(rc.previous?.packages, packages, rc.previous?.version ?? null),
    stages: runner.timings,
    buildSeconds: (Date.now() - rc.started) / 1000,
    boot: { ...bootFacts, usrDataSize: usr.value.dataSize, verity: usr.value.verity ?? null },
  };
  writeFileSync(join(tmpBuild, "meta.json"), `${JSON.stringify(meta, null, 2)}\n`);
  return meta;
}

export function formatExtension(format: ImageFormat): string {
  return format === "gce" ? "tar.gz" : format;
}

/**
 * Artifacts share storage with their cache entry (a hard link: no copy of a
 * GiB disk). Entries of build-specific stages are never reused by another
 * build; treat builds/ as read-only (`slipway run` boots a copy-on-write overlay).
 */
function linkOrCopy(src: string, dest: string): void {
  try {
    linkSync(src, dest);
  } catch {
    copyFileSync(src, dest);
  }
}
