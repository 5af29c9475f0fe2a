/**
 * Rebuilding from the lockfile reproduces the package set: a cold rootfs
 * (its own empty cache, so mmdebstrap really runs) asked for the example
 * build's locked versions installs exactly those. The second of the
 * suite's two cold rootfs builds.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { StageCache } from "../../src/build/cache.ts";
import { pinsFor, readLockfile } from "../../src/build/lockfile.ts";
import { packageRequest } from "../../src/build/pipeline.ts";
import { createReporter } from "../../src/build/progress.ts";
import { rootfsStage } from "../../src/build/rootfs.ts";
import { StageRunner } from "../../src/build/stage.ts";
import { loadConfig } from "../../src/config/load.ts";
import { exampleBuild, TEST_CACHE } from "./fixture.ts";

const work = join(TEST_CACHE, `lockfile-${process.pid}`);
after(() => rmSync(work, { recursive: true, force: true }));

it("a rootfs built from the lockfile has exactly the locked package set", {
  timeout: 900_000,
}, async () => {
  const example = await exampleBuild();
  const loaded = loadConfig(example.configPath);
  const request = packageRequest(loaded);
  const lock = readLockfile(join(example.workDir, "slipway.lock"));
  const pins = pinsFor(lock, request);
  assert.ok(pins, "the example's lockfile matches its package request");
  assert.equal(Object.keys(pins).length, example.meta.packages.length);

  mkdirSync(work, { recursive: true });
  const buildLog = join(work, "build.log");
  writeFileSync(buildLog, "");
  const runner = new StageRunner({
    cache: new StageCache(join(work, "cache")),
    reporter: createReporter("quiet"),
    buildLog,
  });
  const rootfs = await runner.run(rootfsStage, { request, pins });
  assert.equal(rootfs.cached, false, "mmdebstrap ran");
  assert.match(readFileSync(buildLog, "utf8"), /--include=.*systemd=/, "versions were requested");
  assert.deepEqual(
    rootfs.value.packages.map((p) => `${p.name}=${p.version}`),
    example.meta.packages.map((p) => `${p.name}=${p.version}`),
  );
});
