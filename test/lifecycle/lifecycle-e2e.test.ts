/**
 * The update lifecycle under TCG, as `slipway test 'lifecycle-*'` runs it: the scenarios in
 * test/e2e/lifecycle-*, one at a time (the fleet scenario runs two VMs). Builds the four
 * lifecycle images first (cached). Needs root (image build), QEMU, OVMF and socat (guest
 * forwards). SLIPWAY_E2E=0 or SLIPWAY_LIFECYCLE=0 skips it; SLIPWAY_LIFECYCLE_ONLY=PATTERN
 * runs only the matching scenarios.
 *
 * Logs, consoles, status captures, the lock log and dashboard screenshots are artifacts: they
 * stay in $SLIPWAY_LIFECYCLE_OUT, by default /var/tmp/slipway-artifacts/lifecycle-<time>/.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { makeReport, writeReports } from "../../src/vm/harness/report.ts";
import { runScenarios } from "../../src/vm/harness/runner.ts";
import { discoverScenarios } from "../../src/vm/harness/scenario.ts";
import { OVMF_CODE } from "../../src/vm/qemu.ts";
import { lifecycleBuild } from "./images.ts";

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const skip =
  process.env.SLIPWAY_E2E === "0" || process.env.SLIPWAY_LIFECYCLE === "0"
    ? "SLIPWAY_E2E=0 / SLIPWAY_LIFECYCLE=0"
    : process.getuid?.() !== 0
      ? "building the lifecycle images needs root"
      : !has("qemu-system-x86_64") || !has("ssh") || !has("socat") || !existsSync(OVMF_CODE)
        ? "needs qemu-system-x86_64, ssh, socat and OVMF"
        : false;

test("update lifecycle scenarios under TCG", { skip, timeout: 90 * 60_000 }, async (t) => {
  const out =
    process.env.SLIPWAY_LIFECYCLE_OUT ??
    join(
      "/var/tmp/slipway-artifacts",
      `lifecycle-${new Date().toISOString().replace(/[:.]/g, "-")}`,
    );
  mkdirSync(out, { recursive: true });
  t.diagnostic(`artifacts: ${out}`);
  const t0 = Date.now();
  const v1 = await lifecycleBuild("1.0.0");
  for (const v of ["2.0.0", "3.0.0", "3.1.0"] as const) await lifecycleBuild(v);
  t.diagnostic(`images ready in ${Math.round((Date.now() - t0) / 1000)} s`);
  const pattern = process.env.SLIPWAY_LIFECYCLE_ONLY ?? "lifecycle-*";
  const scenarios = discoverScenarios(new URL("../e2e/", import.meta.url).pathname, pattern);
  assert.ok(scenarios.length > 0, `no scenario matches ${pattern}`);
  const t1 = Date.now();
  const results = await runScenarios(scenarios, {
    disk: join(v1.buildDir, "disk.raw"),
    outDir: out,
    accel: "tcg",
    parallel: 1,
    cpuBudget: 2,
    log: (l) => t.diagnostic(l),
  });
  const report = makeReport(v1.buildDir, new Date(t1), results, (Date.now() - t1) / 1000);
  await writeReports(out, report);
  for (const r of results) t.diagnostic(`${r.name}: ${r.outcome} in ${r.durationSeconds} s`);
  const why = results
    .filter((r) => !r.ok)
    .map(
      (r) =>
        `${r.name}: ${r.outcome}\n${r.failures.join("\n")}\n${
          r.logs.script ? readFileSync(join(out, r.name, r.logs.script), "utf8").slice(-3000) : ""
        }`,
    )
    .join("\n---\n");
  assert.equal(report.summary.notOk, 0, why);
});
