/** The harness without VMs: console checks, scenario metadata, Ignition preparation, reports. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { XMLParser } from "fast-xml-parser";
import { renderConfig } from "../../src/provision/render.ts";
import {
  checkConsole,
  checkConsoleLine,
  ignitionReason,
} from "../../src/vm/harness/console-checks.ts";
import { SHELL_HELPERS } from "../../src/vm/harness/helpers.ts";
import {
  PUBKEY_PLACEHOLDER,
  prepareIgnition,
  withRootKey,
} from "../../src/vm/harness/provision.ts";
import { junitXml, makeReport, writeReports } from "../../src/vm/harness/report.ts";
import { prepareRunProvisioning } from "../../src/vm/harness/run-provisioning.ts";
import { judge, type TestResult } from "../../src/vm/harness/runner.ts";
import { discoverScenarios, namePredicate, parseScenario } from "../../src/vm/harness/scenario.ts";

const work = mkdtempSync(join(tmpdir(), "slipway-harness-"));
after(() => rmSync(work, { recursive: true, force: true }));
const E2E = new URL("../e2e/", import.meta.url).pathname;

test("console checks find each kind of trouble and quote the line", () => {
  const cases: [string, string, boolean][] = [
    ["[   12.3] Kernel panic - not syncing: VFS: Unable to mount root fs", "kernel-panic", true],
    ["[    3.1] Oops: general protection fault, probably for non-canonical address", "oops", false],
    ["[    3.1] Oops: 0002 [#1] PREEMPT SMP NOPTI", "oops", false],
    [
      "[    4.0] BUG: kernel NULL pointer dereference, address: 0000000000000008",
      "kernel-bug",
      false,
    ],
    [
      "[   55.2] WARNING: CPU: 0 PID: 412 at fs/proc/base.c:123 foo+0x1/0x2",
      "kernel-warning",
      false,
    ],
    ['You are in emergency mode. After logging in, type "journalctl -xb"', "emergency", true],
    ["[  OK  ] Reached target emergency.target - Emergency Mode.", "emergency", true],
    [
      "[ 9.9] app[311]: segfault at 0 ip 000055d5 sp 00007ffd error 4 in app[55d5+1000]",
      "segfault",
      false,
    ],
    ["[ 70.1] stress invoked oom-killer: gfp_mask=0x140dca, order=0", "oom-killer", false],
    [
      "[FAILED] Failed to start ignition-files.service - Ignition (files).",
      "ignition-failed",
      true,
    ],
    ["[FAILED] Failed to start e2e-broken.service - e2e broken.", "failed-unit", false],
  ];
  for (const [line, id, fatal] of cases) {
    const f = checkConsoleLine(`  ${line}\r`, 7);
    assert.ok(f, `no finding for ${line}`);
    assert.equal(f.check, id, line);
    assert.equal(f.fatal, fatal, line);
    assert.equal(f.line, line);
    assert.equal(f.lineNo, 7);
  }
  // A starved emulated CPU trips the lockup detectors: recorded, but no failure under TCG.
  const lockup = "[  161.09] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [systemd:1]";
  assert.equal(checkConsoleLine(lockup, 1, [], "tcg")?.check, "soft-lockup");
  assert.match(checkConsoleLine(lockup, 1, [], "tcg")!.ignored!, /TCG/);
  assert.equal(checkConsoleLine(lockup, 1, [], "kvm")!.ignored, undefined);
  // systemd shortens long unit names on the console.
  assert.equal(
    checkConsoleLine("[FAILED] Failed to start ignition-fetch-off…service - Ignition.", 1)?.check,
    "ignition-failed",
  );
  // Escapes left in the line (systemd's status output) do not reach the report.
  const escaped = checkConsoleLine(
    "\x1bM\x1b[K[\x1b[0;1;31mFAILED\x1b[0m] Failed to start x.service.",
    1,
  );
  assert.equal(escaped?.line, "[FAILED] Failed to start x.service.");
  // Ordinary boot chatter is not trouble.
  for (const line of [
    "[    0.000000] Command line: BOOT_IMAGE=/x rd.shell=0 rd.emergency=reboot panic=10",
    "[  OK  ] Finished ignition-files.service - Ignition (files).",
    "[  OK  ] Stopped ignition-mount.service - Ignition (mount).",
    "[    1.2] ACPI: Added _OSI(Module Device)",
    "[ 152.3] systemd-ssh-generator[388]: Failed to query local AF_VSOCK CID",
    "Starting emergency-done.service",
  ]) {
    assert.equal(checkConsoleLine(line, 1), undefined, line);
  }
  // A scenario may allow lines it causes on purpose.
  const failed = "[FAILED] Failed to start e2e-broken.service - e2e broken.";
  assert.equal(checkConsoleLine(failed, 1, [/e2e-broken/]), undefined);
  const all = checkConsole(["ok", failed, "fine"]);
  assert.deepEqual(
    all.map((f) => [f.check, f.lineNo]),
    [["failed-unit", 2]],
  );
});

test("the Ignition reason is Ignition's own message", () => {
  const lines = [
    "[  20.1] ignition[312]: Ignition 2.14.0",
    "[  20.3] ignition[312]: fetch-offline: fetching config from qemu",
    "[  20.4] ignition[312]: failed to fetch config: config is not valid",
    "[  20.5] ignition[312]: failed to acquire config: unexpected end of JSON input",
    "[  20.6] ignition[312]: CRITICAL : Ignition failed: unexpected end of JSON input",
  ];
  assert.equal(
    ignitionReason(lines),
    "failed to fetch config: config is not valid; failed to acquire config: unexpected end of JSON input; Ignition failed: unexpected end of JSON input",
  );
  assert.equal(ignitionReason(lines.slice(0, 3)), "failed to fetch config: config is not valid");
  assert.equal(ignitionReason(["nothing here"]), undefined);
  // The summary is kept even after many detail lines (files stage logging to stdout).
  const many = [1, 2, 3, 4].map((i) => `ignition[9]: op(${i}): [failed] writing file /x${i}`);
  many.push("ignition[9]: CRITICAL : Ignition failed: hash verification failed (calculated a)");
  assert.equal(
    ignitionReason(many),
    "op(1): [failed] writing file /x1; op(2): [failed] writing file /x2; Ignition failed: hash verification failed (calculated a)",
  );
});

function scenarioDir(name: string, yaml: string, files: Record<string, string> = {}): string {
  const dir = join(work, "scenarios", name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "scenario.yaml"), yaml);
  for (const [f, t] of Object.entries(files)) writeFileSync(join(dir, f), t);
  return dir;
}

test("scenario metadata: defaults, sizes, expectations, script discovery", () => {
  const dir = scenarioDir(
    "meta-ok",
    [
      "description: d",
      "timeout: 300",
      "memory: 2048",
      "disk_size: 4G",
      "disks: [{ size: 512M }, { size: 1G }]",
      "config: c.yaml",
      "allow_console: ['e2e-broken']",
      "expect: { fails_with: kernel WARNING }",
    ].join("\n"),
    { "c.yaml": "variant: slipway\n", "test.sh": "true\n" },
  );
  const s = parseScenario(
    readFileSync(join(dir, "scenario.yaml"), "utf8"),
    join(dir, "scenario.yaml"),
  );
  assert.equal(s.name, "meta-ok");
  assert.equal(s.meta.timeout, 300);
  assert.equal(s.meta.cpus, 1);
  assert.equal(s.meta.firmware, "uefi");
  assert.equal(s.meta.disk_size, 4n << 30n);
  assert.deepEqual(
    s.meta.disks.map((d) => d.size),
    [512n << 20n, 1n << 30n],
  );
  assert.deepEqual(s.meta.expect.fails_with, ["kernel WARNING"]);
  assert.equal(s.configFile, join(dir, "c.yaml"));
  assert.equal(s.script, join(dir, "test.sh"));
  assert.equal(s.setup, undefined);
  assert.ok(s.allowConsole[0]!.test("[FAILED] Failed to start e2e-broken.service"));

  const bare = parseScenario("", join(scenarioDir("meta-bare", ""), "scenario.yaml"));
  assert.equal(bare.meta.timeout, 600);
  assert.equal(bare.meta.memory, 1024);
  assert.equal(bare.script, undefined);
});

test("scenario metadata errors name file, line and key", () => {
  const bad = (name: string, yaml: string, re: RegExp) => {
    const dir = scenarioDir(name, yaml);
    const file = join(dir, "scenario.yaml");
    assert.throws(
      () => parseScenario(yaml, file),
      (e: Error & { exitCode?: number }) => {
        assert.match(e.message, re);
        assert.ok(e.message.startsWith(file), e.message);
        assert.equal(e.exitCode, 2);
        return true;
      },
    );
  };
  bad("e-type", "timeout: 60\nmemory: lots\n", /scenario\.yaml:2:9: memory: .*number/);
  bad("e-key", "timeout: 60\ntimout: 5\n", /scenario\.yaml:2:1: .*timout/);
  bad("e-size", "disks:\n  - size: huge\n", /scenario\.yaml:2:11: disks\.0\.size: not a size/);
  bad("e-file", "config: missing.yaml\n", /config: file missing\.yaml does not exist/);
  bad("e-setup", "setup: missing.ts\n", /setup: file missing\.ts does not exist/);
  bad("e-both", "expect: { boot_fails_with: a, fails_with: b }\n", /not both/);
  bad("e-yaml", "timeout: [1\n", /YAML syntax/);
  bad("e-regex", "allow_console: ['(']\n", /allow_console\.0/);
});

test("name patterns and discovery of the repository's scenarios", () => {
  assert.ok(namePredicate("provision-*")("provision-yaml"));
  assert.ok(!namePredicate("provision-*")("ignition-bad-json"));
  assert.ok(namePredicate("yaml")("provision-yaml"));
  assert.ok(namePredicate("ignition-?ad-json")("ignition-bad-json"));
  const all = discoverScenarios(E2E);
  const names = all.map((s) => s.name);
  assert.ok(
    names.includes("provision-yaml") && names.includes("provision-cloud-config"),
    names.join(),
  );
  assert.ok(!names.includes("_shared"));
  assert.deepEqual(
    discoverScenarios(E2E, "provision-*").map((s) => s.name),
    names.filter((n) => n.startsWith("provision-")),
  );
});

test("Ignition for the VM: rendered, the run's key for root and in place of the placeholder", () => {
  const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheHarnessTest slipway-test";
  const p = prepareIgnition({ configFile: join(E2E, "provision-yaml/config.yaml") }, key);
  assert.equal(p.harnessKey, true);
  const cfg = JSON.parse(p.text);
  const users = cfg.passwd.users as { name: string; sshAuthorizedKeys?: string[] }[];
  assert.deepEqual(users.find((u) => u.name === "root")?.sshAuthorizedKeys, [key]);
  assert.deepEqual(users.find((u) => u.name === "core")?.sshAuthorizedKeys, [key]);
  assert.ok(!p.text.includes(PUBKEY_PLACEHOLDER));

  // No config: a minimal one that only lets the harness in.
  const none = JSON.parse(prepareIgnition({}, key).text);
  assert.deepEqual(none, {
    ignition: { version: "3.3.0" },
    passwd: { users: [{ name: "root", sshAuthorizedKeys: [key] }] },
  });
  // root already configured: the key is added, nothing else changes.
  const merged = withRootKey(
    {
      ignition: { version: "3.3.0" },
      passwd: { users: [{ name: "root", sshAuthorizedKeys: ["k1"] }] },
    },
    key,
  );
  assert.deepEqual(merged.passwd, { users: [{ name: "root", sshAuthorizedKeys: ["k1", key] }] });

  // Raw Ignition goes in byte for byte; a config that does not render is an input error.
  const raw = join(work, "raw.ign");
  writeFileSync(raw, '{"ignition": {"version": "3.3.0"');
  assert.deepEqual(prepareIgnition({ ignitionFile: raw }, key), {
    text: '{"ignition": {"version": "3.3.0"',
    harnessKey: false,
  });
  const broken = join(work, "broken.yaml");
  writeFileSync(broken, "storage:\n  files:\n    - path: relative/path\n");
  assert.throws(() => prepareIgnition({ configFile: broken }, key), /broken\.yaml:3:\d+: error/);
});

test("the cloud-config scenario renders to the same Ignition as the YAML one", () => {
  const render = (f: string) => {
    const file = join(E2E, f);
    const r = renderConfig(readFileSync(file, "utf8"), file);
    assert.ok(r.config, r.diagnostics.map((d) => d.message).join("\n"));
    return r.config;
  };
  assert.deepEqual(
    render("provision-cloud-config/cloud-config.yaml"),
    render("provision-yaml/config.yaml"),
  );
});

function result(over: Partial<TestResult>): TestResult {
  return {
    name: "t",
    outcome: "passed",
    expected: "pass",
    ok: true,
    failures: [],
    findings: [],
    durationSeconds: 1,
    logs: { console: "console.log" },
    ...over,
  };
}

test("verdicts: expected failures need their reasons", () => {
  const s = (yaml: string) => parseScenario(yaml, join(scenarioDir("j", yaml), "scenario.yaml"));
  const plain = s("");
  assert.equal(judge(plain, "passed", []).ok, true);
  assert.equal(judge(plain, "failed", ["x"]).ok, false);
  const boot = s("expect: { boot_fails_with: [unexpected end of JSON] }");
  assert.equal(
    judge(boot, "boot-failed", ["boot failed: Ignition: unexpected end of JSON input"]).ok,
    true,
  );
  assert.match(judge(boot, "boot-failed", ["boot failed: no ssh"]).note!, /not found/);
  assert.match(judge(boot, "passed", []).note!, /boot to fail/);
  const warn = s("expect: { fails_with: [kernel WARNING, failed unit] }");
  assert.equal(
    judge(warn, "failed", ["kernel WARNING (console line 3): x", "failed unit (console line 9): y"])
      .ok,
    true,
  );
  assert.equal(judge(warn, "failed", ["kernel WARNING (console line 3): x"]).ok, false);
});

test("report.json and JUnit XML", async () => {
  const tests = [
    result({ name: "good", durationSeconds: 61.25 }),
    result({
      name: "bad <one>",
      outcome: "failed",
      ok: false,
      failures: ['failed unit (console line 9): [FAILED] Failed to start "x" & y'],
    }),
    result({ name: "broken", outcome: "error", ok: false, failures: ["harness error: boom"] }),
    result({
      name: "neg",
      outcome: "boot-failed",
      expected: "boot-fail",
      failures: ["boot failed: Ignition: z"],
    }),
  ];
  const report = makeReport("/img/disk.raw", new Date("2026-01-02T03:04:05Z"), tests, 99);
  assert.deepEqual(report.summary, { total: 4, ok: 2, notOk: 2 });
  const out = join(work, "out");
  mkdirSync(out);
  const files = await writeReports(out, report);
  assert.deepEqual(JSON.parse(readFileSync(files.json, "utf8")).summary, report.summary);
  const xml = readFileSync(files.junit, "utf8");
  assert.equal(xml, junitXml(report));
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" }).parse(xml);
  const suite = doc.testsuites.testsuite;
  assert.equal(suite["@tests"], "4");
  assert.equal(suite["@failures"], "1");
  assert.equal(suite["@errors"], "1");
  const cases = suite.testcase as Record<string, unknown>[];
  assert.deepEqual(
    cases.map((c) => c["@name"]),
    ["good", "bad <one>", "broken", "neg"],
  );
  assert.equal(cases[0]!["@time"], "61.3");
  assert.equal(cases[0]!.failure, undefined);
  assert.match(
    (cases[1]!.failure as Record<string, string>)["@message"]!,
    /\[FAILED\] Failed to start "x" & y/,
  );
  assert.ok(cases[2]!.error);
  assert.equal(cases[3]!.failure, undefined);
  assert.match(String(cases[3]!["system-out"]), /Ignition: z/);
});

test("slipway run provisioning: --config rendered, --ssh adds a key, a port and the command", {
  skip: spawnSync("sh", ["-c", "command -v ssh-keygen"]).status !== 0,
}, async () => {
  const yaml = join(E2E, "provision-yaml/config.yaml");
  const plain = await prepareRunProvisioning({ config: yaml });
  const rendered = JSON.parse(readFileSync(plain.ignitionFile!, "utf8"));
  assert.equal(rendered.ignition.version, "3.3.0");
  assert.equal(plain.forward, undefined);
  await plain.cleanup();
  assert.ok(!existsSync(plain.ignitionFile!));

  const ssh = await prepareRunProvisioning({ ssh: true });
  const cfg = JSON.parse(readFileSync(ssh.ignitionFile!, "utf8"));
  const rootKeys = cfg.passwd.users[0].sshAuthorizedKeys as string[];
  assert.match(rootKeys[0]!, /^ssh-ed25519 \S+ slipway-test$/);
  assert.equal(ssh.forward!.guestPort, 22);
  assert.ok(ssh.forward!.hostPort > 0);
  assert.match(ssh.sshCommand!, new RegExp(`-p ${ssh.forward!.hostPort} .*root@127\\.0\\.0\\.1$`));
  await ssh.cleanup();

  await assert.rejects(prepareRunProvisioning({ config: yaml, ignition: yaml }), /not both/);
  const raw = join(work, "not-json.ign");
  writeFileSync(raw, "{");
  await assert.rejects(prepareRunProvisioning({ ignition: raw, ssh: true }), /needs a JSON/);
  assert.deepEqual(Object.keys(await prepareRunProvisioning({})), ["cleanup"]);
});

test("shell helpers: valid sh; fail and assert_eq end the script with the reason", () => {
  const helpers = join(work, "helpers.sh");
  writeFileSync(helpers, SHELL_HELPERS);
  assert.equal(spawnSync("sh", ["-n", helpers]).status, 0);
  const run = (body: string) =>
    spawnSync("sh", ["-e", "-c", `. "${helpers}"\n${body}`], { encoding: "utf8" });
  const ok = run("assert_eq a a 'same'\necho reached");
  assert.equal(ok.status, 0);
  assert.equal(ok.stdout, "reached\n");
  const bad = run("assert_eq 600 644 'mode of x'\necho not-reached");
  assert.equal(bad.status, 1);
  assert.equal(bad.stdout, "");
  assert.equal(bad.stderr, "FAIL: mode of x: expected '644', got '600'\n");
});
