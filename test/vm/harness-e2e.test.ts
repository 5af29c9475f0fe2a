/**
 * The e2e scenarios (test/e2e/) booted for real under TCG through the harness, as `slipway test`
 * runs them: first-boot provisioning from Slipway YAML and #cloud-config, broken configs that
 * must stop the boot with Ignition's message, and the console checks' self-test.
 * Needs root (image build), QEMU and OVMF; SLIPWAY_E2E=0 skips it.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { makeReport, writeReports } from "../../src/vm/harness/report.ts";
import { runScenarios, type TestResult } from "../../src/vm/harness/runner.ts";
import { loadScenario } from "../../src/vm/harness/scenario.ts";
import { OVMF_CODE } from "../../src/vm/qemu.ts";
import { e2eImage } from "../e2e/image.ts";

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const skip =
  process.env.SLIPWAY_E2E === "0"
    ? "SLIPWAY_E2E=0"
    : process.getuid?.() !== 0 && !process.env.SLIPWAY_E2E_IMAGE
      ? "building the e2e image needs root"
      : !has("qemu-system-x86_64") || !has("ssh") || !existsSync(OVMF_CODE)
        ? "needs qemu-system-x86_64, ssh and OVMF"
        : false;

const PROVISIONING_SCENARIOS = [
  "provision-yaml",
  "provision-cloud-config",
  "ignition-bad-json",
  "ignition-unsupported-version",
  "ignition-bad-hash",
  "console-findings",
];

let out = "";
after(() => {
  if (!out) return;
  if (process.env.SLIPWAY_E2E_KEEP) console.log(`e2e output kept in ${out}`);
  else rmSync(out, { recursive: true, force: true });
});

test("e2e scenarios under TCG", { skip, timeout: 60 * 60_000 }, async (t) => {
  out = mkdtempSync("/var/tmp/harness-e2e-");
  const disk = await e2eImage((l) => t.diagnostic(`image: ${l}`));
  // Issue #4's scenarios only, loaded by name: the lifecycle scenarios under test/e2e/ bring
  // their own images and server (test/lifecycle runs them).
  const root = new URL("../e2e/", import.meta.url).pathname;
  const scenarios = PROVISIONING_SCENARIOS.map((n) => loadScenario(join(root, n)));
  const t0 = Date.now();
  const results = await runScenarios(scenarios, {
    disk,
    outDir: out,
    accel: "tcg",
    cpuBudget: 2,
    log: (l) => t.diagnostic(l),
  });
  const report = makeReport(disk, new Date(t0), results, (Date.now() - t0) / 1000);
  const files = await writeReports(out, report);
  const by = new Map(results.map((r) => [r.name, r]));
  const get = (name: string): TestResult => {
    const r = by.get(name);
    assert.ok(r, `scenario ${name} did not run`);
    return r;
  };
  const why = (r: TestResult) =>
    `${r.name}: ${r.outcome}\n${r.failures.join("\n")}\n${
      r.logs.script ? readFileSync(join(out, r.name, r.logs.script), "utf8").slice(-1500) : ""
    }`;
  for (const r of results) t.diagnostic(`${r.name}: ${r.outcome} in ${r.durationSeconds} s`);

  for (const name of ["provision-yaml", "provision-cloud-config"]) {
    const r = get(name);
    assert.equal(r.outcome, "passed", why(r));
    assert.ok(r.ok);
    assert.ok(existsSync(join(out, name, "journal.txt")), "journal saved");
  }
  for (const name of ["ignition-bad-json", "ignition-unsupported-version", "ignition-bad-hash"]) {
    const r = get(name);
    assert.equal(r.outcome, "boot-failed", why(r));
    assert.match(r.failures[0]!, /^boot failed: Ignition: /, why(r));
    assert.ok(r.ok, why(r));
  }
  const c = get("console-findings");
  assert.equal(c.outcome, "failed", why(c));
  assert.ok(c.ok, why(c));
  assert.ok(
    c.failures.some((f) =>
      /kernel WARNING \(console line \d+\): .*WARNING: CPU: 0 PID: \d+ at/.test(f),
    ),
    why(c),
  );
  assert.ok(
    c.failures.some((f) => /failed unit .*Failed to start e2e-broken\.service/.test(f)),
    why(c),
  );
  assert.ok(
    c.failures.some((f) => /degraded; failed units: .*e2e-broken\.service/.test(f)),
    why(c),
  );

  const junit = readFileSync(files.junit, "utf8");
  assert.equal((junit.match(/<testcase /g) ?? []).length, results.length);
  assert.equal(
    report.summary.notOk,
    0,
    results
      .filter((r) => !r.ok)
      .map(why)
      .join("\n---\n"),
  );
});
