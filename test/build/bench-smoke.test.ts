/**
 * CI smoke of bench/build/run.ts: the rootfs and initrd come from the test
 * cache, no boots. Checks that one run reports every figure and that the
 * no-op and overlay-only rebuilds behave; the full numbers come from a
 * manual `node bench/build/run.ts`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { exampleBuild, REPO } from "./fixture.ts";

const dir = mkdtempSync(join(tmpdir(), "slipway-bench-smoke-"));
after(() => rmSync(dir, { recursive: true, force: true }));

it("bench/build --smoke reports build times, ratios and USR size", {
  timeout: 900_000,
}, async () => {
  await exampleBuild(); // fills the shared stage cache (rootfs, initrd) if this runs first
  const out = join(dir, "results.json");
  const r = spawnSync(
    join(REPO, "node_modules/.bin/node"),
    [join(REPO, "bench/build/run.ts"), "--smoke", "--out", out],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /no-op rebuild/);
  assert.match(r.stdout, /overlay-only rebuild .*× cold/);
  const res = JSON.parse(readFileSync(out, "utf8"));
  assert.equal(res.mode, "smoke");
  assert.equal(res.build.overlayReusedRootfs, true);
  assert.ok(res.build.noopSeconds < res.build.overlaySeconds);
  assert.ok(res.usr.imageBytes > 0 && res.usr.treeBytes > 0);
  assert.equal(res.usr.compression, "none");
  // Uncompressed erofs is about the size of the tree it holds.
  assert.ok(res.usr.imageToTree > 0.7 && res.usr.imageToTree < 1.3, `ratio ${res.usr.imageToTree}`);
});
