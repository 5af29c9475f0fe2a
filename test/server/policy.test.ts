import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type ChannelView,
  decideGrant,
  type GroupPolicy,
  inOfficeHours,
  nextVersion,
} from "../../src/server/policy.ts";
import { compareVersions } from "../../src/server/versions.ts";

const policy = (p: Partial<GroupPolicy> = {}): GroupPolicy => ({
  updatesEnabled: true,
  safeMode: false,
  maxUpdatesPerPeriod: 10,
  periodIntervalS: 3600,
  updateTimeoutS: 3600,
  officeHours: false,
  timezone: "UTC",
  officeStartMin: 9 * 60,
  officeEndMin: 17 * 60,
  haltedReason: null,
  ...p,
});
const idle = { grantedInPeriod: 0, inProgress: 0, completed: 0 };
const MON_10_UTC = Date.UTC(2026, 0, 5, 10, 0);

test("versions compare numerically per part; pre-releases sort before the release", () => {
  assert.equal(compareVersions("3815.2.10", "3815.2.9"), 1);
  assert.equal(compareVersions("1.2", "1.2.0"), 0);
  assert.equal(compareVersions("1.2.0-rc1", "1.2.0"), -1);
  assert.equal(compareVersions("1.2.0-rc2", "1.2.0-rc1"), 1);
  assert.equal(compareVersions("2.0.0", "10.0.0"), -1);
});

test("next version: only upgrades, floors first, blacklist skipped, downgrade when allowed", () => {
  const ch = (c: Partial<ChannelView>): ChannelView => ({
    targetVersion: "3.0.0",
    allowDowngrade: false,
    floors: [],
    blacklist: new Set(),
    ...c,
  });
  assert.equal(nextVersion("1.0.0", ch({})), "3.0.0");
  assert.equal(nextVersion("3.0.0", ch({})), null);
  assert.equal(nextVersion("4.0.0", ch({})), null);
  assert.equal(nextVersion("4.0.0", ch({ allowDowngrade: true })), "3.0.0");
  assert.equal(nextVersion("1.0.0", ch({ floors: ["2.5.0", "2.0.0"] })), "2.0.0");
  assert.equal(nextVersion("2.0.0", ch({ floors: ["2.5.0", "2.0.0"] })), "2.5.0");
  assert.equal(
    nextVersion("1.0.0", ch({ floors: ["2.0.0"], blacklist: new Set(["2.0.0"]) })),
    "3.0.0",
  );
  assert.equal(nextVersion("1.0.0", ch({ blacklist: new Set(["3.0.0"]) })), null);
  assert.equal(nextVersion("1.0.0", ch({ targetVersion: null })), null);
});

test("office hours follow the group's timezone, DST and weekends", () => {
  const nine = 9 * 60;
  const five = 17 * 60;
  assert.equal(inOfficeHours(MON_10_UTC, "UTC", nine, five), true);
  assert.equal(inOfficeHours(MON_10_UTC, "America/New_York", nine, five), false); // 05:00 EST
  assert.equal(inOfficeHours(MON_10_UTC + 4 * 3600_000, "America/New_York", nine, five), true); // 09:00 EST
  assert.equal(inOfficeHours(Date.UTC(2026, 6, 6, 13, 0), "America/New_York", nine, five), true); // 09:00 EDT
  assert.equal(inOfficeHours(Date.UTC(2026, 6, 6, 12, 59), "America/New_York", nine, five), false); // 08:59 EDT
  assert.equal(inOfficeHours(MON_10_UTC, "Asia/Kolkata", nine, five), true); // 15:30 IST
  assert.equal(inOfficeHours(MON_10_UTC + 2 * 3600_000, "Asia/Kolkata", nine, five), false); // 17:30 IST
  // Sunday 22:00 UTC is Monday 11:00 in Auckland (NZDT): office hours there, not in London.
  const sun22 = Date.UTC(2026, 0, 4, 22, 0);
  assert.equal(inOfficeHours(sun22, "Pacific/Auckland", nine, five), true);
  assert.equal(inOfficeHours(sun22, "Europe/London", nine, five), false);
  assert.equal(inOfficeHours(Date.UTC(2026, 0, 10, 12, 0), "UTC", nine, five), false); // Saturday
});

test("grant decisions: paused, halted, office hours, safe mode, max per period", () => {
  assert.deepEqual(decideGrant(MON_10_UTC, policy(), idle), { grant: true });
  assert.match(
    (decideGrant(MON_10_UTC, policy({ updatesEnabled: false }), idle) as { reason: string }).reason,
    /paused/,
  );
  assert.match(
    (decideGrant(MON_10_UTC, policy({ haltedReason: "x" }), idle) as { reason: string }).reason,
    /halted/,
  );
  assert.match(
    (
      decideGrant(
        MON_10_UTC,
        policy({ officeHours: true, timezone: "America/Los_Angeles" }),
        idle,
      ) as { reason: string }
    ).reason,
    /office hours/,
  );
  const safe = policy({ safeMode: true });
  assert.equal(decideGrant(MON_10_UTC, safe, idle).grant, true);
  assert.equal(
    decideGrant(MON_10_UTC, safe, { grantedInPeriod: 1, inProgress: 1, completed: 0 }).grant,
    false,
  );
  assert.equal(
    decideGrant(MON_10_UTC, safe, { grantedInPeriod: 1, inProgress: 1, completed: 1 }).grant,
    true,
  );
  assert.equal(
    decideGrant(MON_10_UTC, policy({ maxUpdatesPerPeriod: 2 }), { ...idle, grantedInPeriod: 2 })
      .grant,
    false,
  );
  assert.equal(decideGrant(MON_10_UTC, policy({ maxUpdatesPerPeriod: 0 }), idle).grant, false);
});
