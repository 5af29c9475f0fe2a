/** `slipway test`: boot scenarios (test/e2e/<name>/) in QEMU and report what happened. */
import { resolve } from "node:path";
import type { Command } from "commander";
import { InputError } from "../errors.ts";
import type { Accel } from "../vm/qemu.ts";
import { formatTable, printJson } from "./output.ts";
import { resolveDisk } from "./run.ts";

interface TestOptions {
  image?: string;
  dir: string;
  out: string;
  parallel?: string;
  cpuBudget?: string;
  accel: string;
  buildsDir: string;
  list?: boolean;
  json?: boolean;
}

function positive(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new InputError(`${what} must be a positive whole number, got ${v}`);
  return Number(v);
}

export function register(program: Command): void {
  program
    .command("test")
    .description("Boot test scenarios in QEMU (Ignition, ssh, console checks) and report results")
    .argument("[pattern]", "run scenarios whose name matches (glob with * ?, or a substring)")
    .option(
      "--image <disk-or-build>",
      "disk image, build version or build directory (default: builds/latest)",
    )
    .option("--dir <dir>", "where scenarios live", "test/e2e")
    .option("--out <dir>", "output: report.json, junit.xml, logs per test", "test-results")
    .option("--parallel <n>", "VMs at once (default: within the CPU budget)")
    .option("--cpu-budget <n>", "vCPUs all VMs may use together (default: host cores)")
    .option("--accel <accel>", "tcg, kvm, or auto (KVM only after a probe boots)", "auto")
    .option("--builds-dir <dir>", "where builds live", "builds")
    .option("--list", "list the matching scenarios, boot nothing")
    .option("--json", "print the report as JSON")
    .action(async (pattern: string | undefined, o: TestOptions) => {
      // The harness loads on use, not at start-up: every slipway command imports this module.
      const { stopAllVms } = await import("../vm/harness/machine.ts");
      const { makeReport, writeReports } = await import("../vm/harness/report.ts");
      const { runScenarios } = await import("../vm/harness/runner.ts");
      const { discoverScenarios } = await import("../vm/harness/scenario.ts");
      if (!["tcg", "kvm", "auto"].includes(o.accel))
        throw new InputError(`--accel must be tcg, kvm or auto, got ${o.accel}`);
      const scenarios = discoverScenarios(resolve(o.dir), pattern);
      if (o.list) {
        const rows = scenarios.map((s) => [
          s.name,
          s.meta.expect.boot_fails_with ? "boot-fail" : s.meta.expect.fails_with ? "fail" : "pass",
          s.meta.timeout,
          s.meta.description ?? "",
        ]);
        if (o.json)
          printJson(
            scenarios.map((s) => ({ name: s.name, dir: s.dir, meta: s.meta, script: s.script })),
          );
        else
          process.stdout.write(
            `${formatTable(["NAME", "EXPECT", "TIMEOUT", "DESCRIPTION"], rows, new Set([2]))}\n`,
          );
        return;
      }
      if (scenarios.length === 0)
        throw new InputError(`no scenario matches ${JSON.stringify(pattern ?? "*")}`, {
          where: o.dir,
        });
      const disk = resolveDisk(o.image, o.buildsDir);
      const outDir = resolve(o.out);
      const started = new Date();
      const say = (l: string) => process.stderr.write(`slipway test: ${l}\n`);
      say(`${scenarios.length} scenario(s) on ${disk}; output in ${outDir}`);
      // Ctrl-C: no QEMU may outlive the run.
      const interrupt = () => {
        say("interrupted: stopping VMs");
        void stopAllVms().then(() => process.exit(130));
      };
      process.once("SIGINT", interrupt);
      process.once("SIGTERM", interrupt);
      const results = await runScenarios(scenarios, {
        disk,
        outDir,
        accel: o.accel as Accel,
        parallel: positive(o.parallel, "--parallel"),
        cpuBudget: positive(o.cpuBudget, "--cpu-budget"),
        log: say,
      });
      process.off("SIGINT", interrupt);
      process.off("SIGTERM", interrupt);
      const report = makeReport(
        disk,
        started,
        results,
        Math.round((Date.now() - started.getTime()) / 100) / 10,
      );
      const files = await writeReports(outDir, report);
      if (o.json) printJson(report);
      else {
        const rows = results.map((r) => [
          r.name,
          r.ok ? "ok" : "NOT OK",
          r.outcome,
          r.durationSeconds.toFixed(1),
          r.failures[0] ?? "",
        ]);
        process.stdout.write(
          `${formatTable(["SCENARIO", "RESULT", "OUTCOME", "SECONDS", "REASON"], rows, new Set([3]))}\n`,
        );
        process.stdout.write(
          `${report.summary.ok}/${report.summary.total} ok; ${files.json}, ${files.junit}\n`,
        );
      }
      if (report.summary.notOk > 0) process.exitCode = 1;
    });
}
