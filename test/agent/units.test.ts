import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ManualClock } from "../../src/agent/clock.ts";
import { configFromEntries, parseConfText } from "../../src/agent/config.ts";
import { checkHealth } from "../../src/agent/health.ts";
import { CheckSchedule } from "../../src/agent/schedule.ts";
import { transition } from "../../src/agent/state.ts";
import { compareVersions } from "../../src/agent/version.ts";
import {
  inWindow,
  msUntilWindow,
  parseDuration,
  parseWindowStart,
} from "../../src/agent/window.ts";
import { InputError } from "../../src/errors.ts";

const conf = (text: string) => configFromEntries(parseConfText(text, "/etc/slipway/update.conf"));

test("update.conf: keys, quotes, comments, defaults and errors with file:line", () => {
  const c = conf(
    '# comment\nSERVER="http://u.example/v1/update/"\nGROUP=beta  # trailing\nREBOOT_STRATEGY=etcd-lock\nETCD_ENDPOINTS=http://10.0.0.1:2379, http://10.0.0.2:2379\nREBOOT_WINDOW_START="Thu 23:00"\nREBOOT_WINDOW_LENGTH=1h30m\n',
  );
  assert.equal(c.server, "http://u.example/v1/update/");
  assert.equal(c.group, "beta");
  assert.equal(c.lockGroup, "beta");
  assert.deepEqual(c.etcdEndpoints, ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
  assert.deepEqual(c.window, { days: [4], minuteOfDay: 23 * 60, lengthSeconds: 5400 });
  assert.equal(conf("").strategy, "best-effort");
  assert.throws(
    () => conf("\nREBOOT_STRATEGY=sometimes\n"),
    (e: Error) => e instanceof InputError && /update\.conf:2/.test(e.message),
  );
  assert.equal(conf("APPID=my-image\n").appId, "my-image", "the builder's spelling");
  assert.throws(() => conf("SERVR=x\n"), /unknown key SERVR/);
  assert.throws(() => conf("just words\n"), /update\.conf:1: expected KEY=value/);
  assert.throws(() => conf("BOOT_TRIES=99\n"), /1–15/);
});

test("reboot windows: single day, ranges, wrap past midnight, next start", () => {
  const thu = parseWindowStart("Thu 23:00");
  const w = { ...thu, lengthSeconds: parseDuration("1h") };
  // 2026-11-26 is a Thursday.
  assert.equal(inWindow(w, Date.UTC(2026, 10, 26, 22, 59), true), false);
  assert.equal(inWindow(w, Date.UTC(2026, 10, 26, 23, 30), true), true);
  assert.equal(inWindow(w, Date.UTC(2026, 10, 27, 0, 0), true), false);
  assert.equal(msUntilWindow(w, Date.UTC(2026, 10, 26, 22, 0), true), 3600_000);
  assert.equal(msUntilWindow(w, Date.UTC(2026, 10, 27, 0, 0), true), (7 * 24 - 1) * 3600_000);
  const wk = { ...parseWindowStart("Mon..Fri 23:30"), lengthSeconds: 3600 };
  assert.deepEqual(wk.days, [1, 2, 3, 4, 5]);
  assert.equal(
    inWindow(wk, Date.UTC(2026, 10, 28, 0, 15), true),
    true,
    "Friday's window runs into Saturday",
  );
  assert.equal(
    inWindow(wk, Date.UTC(2026, 10, 29, 0, 15), true),
    false,
    "no window starts on Saturday",
  );
  assert.deepEqual(parseWindowStart("Fri..Mon 01:00").days, [0, 1, 5, 6]);
  assert.deepEqual(parseWindowStart("03:00").days.length, 7);
  assert.throws(() => parseWindowStart("Thursday-ish 25:00"), InputError);
  assert.throws(() => parseDuration("soon"), InputError);
  assert.equal(parseDuration("2d"), 172_800);
});

test("check schedule: 7 ± 5 min first, 45 ± 5 min after, doubling on errors, PollInterval honoured", () => {
  let r = 0;
  const s = new CheckSchedule({ random: () => r });
  assert.equal(s.firstDelay(), 2 * 60_000);
  r = 1;
  assert.equal(s.firstDelay(), 12 * 60_000);
  r = 0.5;
  assert.equal(s.afterSuccess(), 45 * 60_000);
  assert.equal(s.afterFailure(), 90 * 60_000);
  assert.equal(s.afterFailure(), 180 * 60_000);
  assert.equal(s.afterFailure(), 240 * 60_000);
  assert.equal(s.afterSuccess(600), 600_000, "server PollInterval");
  assert.equal(s.afterFailure(), 1_200_000);
});

test("state machine: the update path, failures, reset; illegal moves throw", () => {
  let s = transition("idle", "check");
  for (const e of [
    "update-found",
    "download-start",
    "downloaded",
    "verified",
    "finalized",
    "reboot",
  ] as const) {
    s = transition(s, e);
  }
  assert.equal(s, "rebooting");
  assert.equal(transition("downloading", "fail"), "reporting-error");
  assert.equal(transition("reporting-error", "reported"), "idle");
  assert.equal(transition("updated-need-reboot", "reset"), "idle");
  assert.throws(() => transition("idle", "finalized"), /no "finalized" from idle/);
  assert.throws(() => transition("rebooting", "reset"));
});

test("versions compare numerically", () => {
  assert.equal(compareVersions("4081.10.0", "4081.2.0"), 1);
  assert.equal(compareVersions("1.0", "1.0.0"), 0);
  assert.equal(compareVersions("1.0.0", "1.0.1"), -1);
});

test("manual clock fires timers in order and only when time is advanced", async () => {
  const c = new ManualClock(0);
  const fired: number[] = [];
  c.schedule(200, () => fired.push(200));
  c.schedule(100, () => fired.push(100));
  const cancel = c.schedule(150, () => fired.push(150));
  cancel();
  await c.advance(99);
  assert.deepEqual(fired, []);
  await c.advance(200);
  assert.deepEqual(fired, [100, 200]);
  assert.equal(c.now(), 299);
});

test("the agent reads the update.conf and os-release the image builder writes", async () => {
  const { osRelease, updateConf } = await import("../../src/build/image-files.ts");
  const id = {
    name: "web",
    prettyName: "Web image",
    version: "1.2.3",
    buildId: "b1",
    flavour: "prod" as const,
    suite: "trixie",
  };
  for (const strategy of ["reboot", "etcd-lock", "fleetlock", "best-effort", "off"] as const) {
    const text = updateConf(
      {
        server: "http://updates.example/v1/update/",
        group: "beta",
        rebootStrategy: strategy,
        rebootWindowStart: "Thu 23:00",
        rebootWindowLength: "1h",
        etcdEndpoints: ["http://10.0.0.1:2379", "https://10.0.0.2:2379"],
        fleetlockUrl: "http://lock.example:8080/",
        lockGroup: "web-eu",
      },
      id,
    );
    const c = configFromEntries(parseConfText(text, "/usr/share/slipway/update.conf"));
    assert.equal(c.server, "http://updates.example/v1/update/");
    assert.equal(c.group, "beta");
    assert.equal(c.appId, "web");
    assert.equal(c.strategy, strategy);
    assert.deepEqual(c.window?.days, [4]);
    assert.deepEqual(c.etcdEndpoints, ["http://10.0.0.1:2379", "https://10.0.0.2:2379"]);
    assert.equal(c.fleetlockUrl, "http://lock.example:8080/");
    assert.equal(c.lockGroup, "web-eu");
  }
  // Without the optional lock settings the agent falls back to its defaults.
  const bare = configFromEntries(
    parseConfText(
      updateConf({ group: "beta", rebootStrategy: "reboot", etcdEndpoints: [] }, id),
      "/usr/share/slipway/update.conf",
    ),
  );
  assert.equal(bare.lockGroup, "beta");
  assert.equal(bare.fleetlockUrl, undefined);
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { readOsVersion } = await import("../../src/agent/bootstate.ts");
  const dir = mkdtempSync("/var/tmp/slipway-agent-osrel-");
  try {
    writeFileSync(`${dir}/os-release`, osRelease(id, "13"));
    assert.equal(readOsVersion(`${dir}/os-release`), "1.2.3");
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("the booted slot comes from GRUB's slipway.slot= (lowercase, as grub.cfg writes it)", async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { bootedSlot } = await import("../../src/agent/bootstate.ts");
  const dir = mkdtempSync("/var/tmp/slipway-agent-cmdline-");
  try {
    writeFileSync(
      `${dir}/cmdline`,
      "BOOT_IMAGE=/slipway/usr-b/vmlinuz root=PARTUUID=x slipway.slot=b mount.usr=PARTUUID=y\n",
    );
    assert.equal(bootedSlot(`${dir}/cmdline`), "B");
    writeFileSync(`${dir}/cmdline`, "root=/dev/vda9 quiet\n");
    assert.throws(() => bootedSlot(`${dir}/cmdline`), /no slipway\.slot=/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("health gate: image checks in /usr/lib/slipway/health.d, host checks in /etc override by name", async () => {
  const root = mkdtempSync("/var/tmp/agent-health-");
  try {
    const usr = join(root, "usr/lib/slipway/health.d");
    const etc = join(root, "etc/slipway/health.d");
    mkdirSync(usr, { recursive: true });
    mkdirSync(etc, { recursive: true });
    writeFileSync(join(usr, "10-image"), "#!/bin/sh\necho image-check-failed >&2\nexit 3\n", {
      mode: 0o755,
    });
    writeFileSync(join(usr, "20-ok"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const running = async () => "running";
    const failing = await checkHealth([usr, etc], running);
    assert.equal(failing.healthy, false);
    assert.equal(failing.problems.length, 1);
    assert.match(failing.problems[0]!, /10-image exited 3: image-check-failed/);
    // The host replaces the image's check by name (here: with one that passes).
    writeFileSync(join(etc, "10-image"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    assert.deepEqual(await checkHealth([usr, etc], running), { healthy: true, problems: [] });
    // A non-executable /etc entry switches the image's check off.
    writeFileSync(join(etc, "10-image"), "", { mode: 0o644 });
    assert.equal((await checkHealth([usr, etc], running)).healthy, true);
    const degraded = await checkHealth([usr, etc], async () => "degraded");
    assert.match(degraded.problems[0]!, /degraded/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
