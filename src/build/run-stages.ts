/**
 * The stages of one build, in order, and what the build directory gets
 * from them (artifacts, meta.json). Loaded by pipeline.ts only when the
 * up-to-date check found work to do.
 */
import { copyFileSync, linkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import { initrdProvisioning } from "../provision/initrd.ts";
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
import type { StageCache } from "./cache.ts";
import { customizeStage } from "./customize.ts";
import { convertImage, formatExtension } from "./formats.ts";
import type { ImageIdentity } from "./image-files.ts";
import { type ArtifactRecord, artifactRecord, type BuildMeta, diffPackages } from "./meta.ts";
import type { BuildOptions, ResolvedInputs, WorkDirs } from "./pipeline.ts";
import { rootfsStage } from "./rootfs.ts";
import { type Stage, StageRunner } from "./stage.ts";

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

export interface RunContext {
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

export async function runStages(rc: RunContext): Promise<BuildMeta> {
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
  // Offline Ignition (configs from QEMU fw_cfg or the OEM partition): no network stack in the initrd.
  const provisioning = initrdProvisioning({ network: false });
  const initrd = await runner.run(initrdStage, { rootfs, verity, provisioning });
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
    agent: inputs.agent,
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
