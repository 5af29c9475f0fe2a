/**
 * Runs scenarios: one VM per scenario (its own ssh port, Ignition config, output directory),
 * several at once within a CPU budget, and the verdict: what happened (passed, failed, boot
 * failed) against what the scenario expects.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runTool } from "../../boot/tool.ts";
import { SlipwayError } from "../../errors.ts";
import type { Accel, GuestForward } from "../qemu.ts";
import { type ConsoleFinding, formatFinding } from "./console-checks.ts";
import { SHELL_HELPERS } from "./helpers.ts";
import { BootStopped, TestVm } from "./machine.ts";
import { prepareIgnition, writeIgnition } from "./provision.ts";
import type { Scenario } from "./scenario.ts";
import { freePort, generateSshKey, type SshKey, sshArgs } from "./ssh.ts";

export type Outcome = "passed" | "failed" | "boot-failed" | "error";
export type Expected = "pass" | "fail" | "boot-fail";

export interface TestResult {
  name: string;
  description?: string;
  /** What happened. */
  outcome: Outcome;
  /** What the scenario expects. */
  expected: Expected;
  /** The outcome is the expected one (and, for failures, with the expected reasons). */
  ok: boolean;
  /** Why it failed: boot stop reason, degraded units, console findings, script failure. */
  failures: string[];
  findings: ConsoleFinding[];
  /** Seconds from QEMU start until ssh answered and the system settled (first boot). */
  bootSeconds?: number;
  durationSeconds: number;
  accel?: string;
  /** Files under the output directory, relative to it. */
  logs: { console?: string; journal?: string; script?: string; ignition?: string };
}

export interface RunOptions {
  disk: string;
  outDir: string;
  accel?: Accel;
  /** Most VMs at once; default: as many as the CPU budget allows. */
  parallel?: number;
  /** vCPUs all running VMs may use together; default: the host's cores. */
  cpuBudget?: number;
  /** Progress lines for people. */
  log?: (line: string) => void;
}

/** What the scenario expects, from its metadata. */
export function expectedOf(s: Scenario): Expected {
  if (s.meta.expect.boot_fails_with) return "boot-fail";
  if (s.meta.expect.fails_with) return "fail";
  return "pass";
}

/** Compare what happened with what was expected; needles must each appear in a reason. */
export function judge(
  s: Scenario,
  outcome: Outcome,
  failures: string[],
): { ok: boolean; note?: string } {
  const expected = expectedOf(s);
  const needles = s.meta.expect.boot_fails_with ?? s.meta.expect.fails_with ?? [];
  const missing = needles.filter((n) => !failures.some((f) => f.includes(n)));
  if (expected === "pass") return { ok: outcome === "passed" };
  if (expected === "boot-fail") {
    if (outcome !== "boot-failed") return { ok: false, note: "expected the boot to fail" };
  } else if (outcome !== "failed" && outcome !== "boot-failed") {
    return { ok: false, note: "expected the test to fail" };
  }
  if (missing.length > 0)
    return {
      ok: false,
      note: `expected reasons not found: ${missing.map((m) => JSON.stringify(m)).join(", ")}`,
    };
  return { ok: true };
}

export async function runScenario(
  s: Scenario,
  opts: RunOptions,
  key?: SshKey,
): Promise<TestResult> {
  const t0 = Date.now();
  const dir = join(opts.outDir, s.name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const log = opts.log ?? (() => undefined);
  let startMore: ((name: string) => Promise<TestVm>) | undefined;
  const failures: string[] = [];
  const result: TestResult = {
    name: s.name,
    description: s.meta.description,
    outcome: "error",
    expected: expectedOf(s),
    ok: false,
    failures,
    findings: [],
    durationSeconds: 0,
    logs: {},
  };
  let vm: TestVm | undefined;
  /** VMs a script started besides the first (stopped with it). */
  const moreVms: TestVm[] = [];
  let setup: ScenarioSetup | undefined;
  const deadline = t0 + s.meta.timeout * 1000;
  const left = () => Math.max(1_000, deadline - Date.now());
  let outcome: Outcome = "error";
  try {
    const sshKey = key ?? (await generateSshKey(dir));
    if (s.setup) {
      const mod = (await import(pathToFileURL(s.setup).href)) as {
        setup?: (ctx: SetupContext) => Promise<ScenarioSetup>;
      };
      if (typeof mod.setup !== "function")
        throw new SlipwayError(`setup ${s.setup} does not export an async function setup(ctx)`);
      const setupLog = createWriteStream(join(dir, "setup.log"));
      setup = await withTimeout(
        mod.setup({
          outDir: dir,
          scenarioDir: s.dir,
          log: (l) => {
            setupLog.write(`${l}\n`);
            log(`${s.name}: ${l}`);
          },
        }),
        left(),
        `setup of ${s.name}`,
      );
    }
    const ign = prepareIgnition(s, sshKey.publicKey);
    const ignFile = join(dir, "config.ign");
    await writeIgnition(ignFile, ign);
    result.logs.ignition = "config.ign";
    const extraDisks: string[] = [];
    for (const [i, d] of s.meta.disks.entries()) {
      const f = join(dir, `disk${i + 1}.qcow2`);
      await runTool("qemu-img", ["create", "-q", "-f", "qcow2", f, String(d.size)]);
      extraDisks.push(f);
    }
    const makeVm = async (name?: string) =>
      new TestVm({
        disk: setup?.disk ?? opts.disk,
        ignitionFile: ignFile,
        memoryMiB: s.meta.memory,
        cpus: s.meta.cpus,
        firmware: s.meta.firmware,
        accel: opts.accel ?? "auto",
        diskSize: s.meta.disk_size,
        extraDisks: name ? [] : extraDisks,
        consoleLog: join(dir, name ? `console-${name}.log` : "console.log"),
        sshPort: await freePort(),
        sshKey: sshKey.path,
        allowConsole: s.allowConsole,
        guestForwards: setup?.guestForwards,
      });
    startMore = async (name: string) => {
      if (!/^[\w.-]+$/.test(name)) throw new SlipwayError(`VM name ${name} is not a file name`);
      const more = await makeVm(name);
      moreVms.push(more);
      await more.start();
      return more;
    };
    vm = await makeVm();
    result.logs.console = "console.log";
    await vm.start();
    result.accel = vm.accel;
    log(`${s.name}: booting (${vm.accel}, ssh port ${vm.options.sshPort})`);
    try {
      const up = await vm.waitUntilUp(left());
      result.bootSeconds = Math.round((Date.now() - t0) / 100) / 10;
      log(`${s.name}: up after ${result.bootSeconds} s (${up.state})`);
      if (up.state === "degraded")
        failures.push(`system degraded; failed units: ${up.failedUnits.join(", ")}`);
      if (s.script) {
        const scriptFailure = await runScript(s, vm, dir, sshKey, left(), setup?.data, startMore);
        if (scriptFailure) failures.push(scriptFailure);
        result.logs.script = "script.log";
      }
      if (await vm.saveJournal(dir)) result.logs.journal = "journal.txt";
      outcome = "passed";
    } catch (e) {
      if (!(e instanceof BootStopped)) throw e;
      failures.unshift(`boot failed: ${e.reason}`);
      outcome = "boot-failed";
    }
  } catch (e) {
    failures.push(`harness error: ${(e as Error).message}`);
    outcome = "error";
  } finally {
    startMore = undefined;
    await Promise.all([vm?.stop(), ...moreVms.map((m) => m.stop())]);
    try {
      await setup?.teardown?.();
    } catch (e) {
      failures.push(`setup teardown: ${(e as Error).message}`);
    }
  }
  for (const m of vm ? [vm, ...moreVms] : []) {
    result.findings.push(...m.findings);
    for (const f of m.findings.filter((x) => !x.ignored)) {
      const text = formatFinding(f);
      if (!failures.some((x) => x.includes(f.line))) failures.push(text);
    }
  }
  if (outcome === "passed" && failures.length > 0) outcome = "failed";
  result.outcome = outcome;
  const verdict = outcome === "error" ? { ok: false } : judge(s, outcome, failures);
  result.ok = verdict.ok;
  if (verdict.note) failures.push(`expectation: ${verdict.note}`);
  result.durationSeconds = Math.round((Date.now() - t0) / 100) / 10;
  await writeFile(join(dir, "result.json"), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/** Run the scenario's script; returns the failure reason, or undefined when it passed. */
async function runScript(
  s: Scenario,
  vm: TestVm,
  dir: string,
  key: SshKey,
  timeoutMs: number,
  setupData?: unknown,
  startVm?: (name: string) => Promise<TestVm>,
): Promise<string | undefined> {
  const script = s.script!;
  const logFile = join(dir, "script.log");
  if (script.endsWith(".ts")) {
    const out = createWriteStream(logFile);
    try {
      const mod = (await import(pathToFileURL(script).href)) as {
        run?: (vm: TestVm, ctx: ScriptContext) => Promise<void>;
      };
      if (typeof mod.run !== "function")
        return `script ${script} does not export an async function run(vm)`;
      const ctx: ScriptContext = {
        outDir: dir,
        scenarioDir: s.dir,
        publicKey: key.publicKey,
        log: (l) => out.write(`${new Date().toISOString().slice(11, 19)} ${l}\n`),
        setup: setupData,
        startVm: async (name) => {
          if (!startVm) throw new SlipwayError("the scenario has ended");
          return await startVm(name);
        },
      };
      await withTimeout(mod.run(vm, ctx), timeoutMs, `script ${s.name}/test.ts`);
      return undefined;
    } catch (e) {
      out.write(`${(e as Error).stack ?? e}\n`);
      return `script: ${(e as Error).message}`;
    } finally {
      await new Promise<void>((r) => out.end(r));
    }
  }
  const helpers = join(dir, "helpers.sh");
  await writeFile(helpers, SHELL_HELPERS);
  const opts = sshArgs(vm.ssh()).slice(0, -1);
  const env = {
    ...process.env,
    SLIPWAY_SSH: ["ssh", ...opts, "root@127.0.0.1"].join(" "),
    SLIPWAY_SSH_OPTS: opts.join(" "),
    SLIPWAY_SSH_PORT: String(vm.options.sshPort),
    SLIPWAY_SSH_KEY: key.path,
    SLIPWAY_SSH_PUBKEY: key.publicKey,
    SLIPWAY_CONSOLE: vm.options.consoleLog,
    SLIPWAY_OUT: dir,
    SLIPWAY_SCENARIO_DIR: s.dir,
    SLIPWAY_HELPERS: helpers,
  };
  const out = createWriteStream(logFile);
  const r = await new Promise<{ code: number | null; tail: string }>((res) => {
    const child = spawn("sh", ["-e", script], {
      cwd: s.dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let tail = "";
    const take = (b: Buffer) => {
      out.write(b);
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    const timer = setTimeout(() => {
      tail += `\n(timed out after ${Math.round(timeoutMs / 1000)} s)`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      res({ code, tail });
    });
  });
  await new Promise<void>((res) => out.end(res));
  if (r.code === 0) return undefined;
  const lines = r.tail.trim().split("\n");
  const reason = lines.findLast((l) => l.startsWith("FAIL: ")) ?? lines.at(-1) ?? "";
  return `script exited ${r.code ?? "(killed)"}: ${reason.replace(/^FAIL: /, "")}`;
}

export interface ScriptContext {
  outDir: string;
  scenarioDir: string;
  /** The run's ssh public key (also substituted for ${SLIPWAY_SSH_PUBKEY} in configs). */
  publicKey: string;
  /** A line into the test's script.log. */
  log: (line: string) => void;
  /** What the scenario's setup module returned as `data`. */
  setup?: unknown;
  /**
   * Start another VM like the first (same disk, config, forwards; console in
   * `console-<name>.log`); wait for it with `waitUntilUp`. It is stopped when the test ends.
   */
  startVm: (name: string) => Promise<TestVm>;
}

export interface SetupContext {
  outDir: string;
  scenarioDir: string;
  /** A line into setup.log (and the run's progress). */
  log: (line: string) => void;
}

/** What a scenario's `setup(ctx)` returns. */
export interface ScenarioSetup {
  /** Boot this disk instead of the run's image. */
  disk?: string;
  guestForwards?: GuestForward[];
  /** Handed to the script as `ctx.setup`. */
  data?: unknown;
  /** Runs after the VMs have stopped (stop the services setup started). */
  teardown?: () => Promise<void>;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new SlipwayError(`${what} timed out after ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Run scenarios, at most `parallel` VMs at once and never more vCPUs than the budget (a
 * scenario asking for more than the whole budget runs alone). Longest timeouts start first;
 * results keep the input order.
 */
export async function runScenarios(scenarios: Scenario[], opts: RunOptions): Promise<TestResult[]> {
  await mkdir(opts.outDir, { recursive: true });
  const budget = opts.cpuBudget ?? availableParallelism();
  const parallel = Math.max(1, opts.parallel ?? budget);
  const key = await generateSshKey(opts.outDir);
  const results: TestResult[] = new Array(scenarios.length);
  // Longest first (by timeout): the run ends sooner than in name order.
  const queue = scenarios
    .map((s, i) => ({ s, i }))
    .sort((a, b) => b.s.meta.timeout - a.s.meta.timeout);
  let running = 0;
  let cpusInUse = 0;
  await new Promise<void>((done) => {
    const pump = () => {
      if (queue.length === 0 && running === 0) return done();
      while (queue.length > 0 && running < parallel) {
        const next = queue[0]!;
        const cpus = next.s.meta.cpus;
        if (running > 0 && cpusInUse + cpus > budget) break;
        queue.shift();
        running++;
        cpusInUse += cpus;
        void runScenario(next.s, opts, key).then((r) => {
          results[next.i] = r;
          running--;
          cpusInUse -= cpus;
          opts.log?.(
            `${r.name}: ${r.ok ? "ok" : "NOT OK"} — ${r.outcome} in ${r.durationSeconds} s${r.failures[0] ? ` (${r.failures[0]})` : ""}`,
          );
          pump();
        });
      }
    };
    pump();
  });
  return results;
}
