import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ManualClock } from "../../src/agent/clock.ts";
import { configFromEntries, parseConfText } from "../../src/agent/config.ts";
import { RebootTask } from "../../src/agent/reboot.ts";
import { loggedInUsers } from "../../src/agent/users.ts";
import { EtcdClient } from "../../src/lock/etcd.ts";
import { EtcdSemaphore } from "../../src/lock/etcd-semaphore.ts";
import { type EtcdFixture, freePort, startEtcd } from "../lock/etcd-fixture.ts";
import { installKey, makeAgent, until } from "./helpers.ts";
import { makeHost } from "./host-fixture.ts";
import { startOmaha } from "./omaha-fixture.ts";
import { makeRelease } from "./payloads.ts";

let etcd: EtcdFixture;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

const THU_NOON = Date.UTC(2026, 10, 26, 12, 0, 0);

function task(lines: string[], opts: { users?: string[]; start?: number } = {}) {
  const config = configFromEntries(parseConfText(lines.join("\n"), "update.conf"));
  const clock = new ManualClock(opts.start ?? THU_NOON);
  const out = {
    reboots: 0,
    lockTaken: 0,
    warnings: [] as string[],
    logs: [] as string[],
    rebootAt: 0,
  };
  const t = new RebootTask({
    config,
    clock,
    holderId: "this-host",
    log: (m) => out.logs.push(m),
    onLockTaken: async () => {
      out.lockTaken++;
    },
    loggedInUsers: () => opts.users ?? [],
    warn: async (m) => {
      out.warnings.push(m);
    },
    rebootNow: async () => {
      out.reboots++;
      out.rebootAt = clock.now();
    },
    utc: true,
  });
  const done = t.run();
  return { t, clock, out, done };
}

/** Step the manual clock until `cond` holds, letting real I/O (etcd) run in between. */
async function pump(clock: ManualClock, stepMs: number, cond: () => boolean, steps = 50) {
  for (let i = 0; i < steps && !cond(); i++) {
    await clock.advance(stepMs);
    await new Promise((r) => setTimeout(r, 30));
  }
}

const sem = (group: string) =>
  new EtcdSemaphore({ client: new EtcdClient({ endpoints: [etcd.url] }), group });

test("etcd-lock: waits while the group is full, reboots once a place frees up", async () => {
  const group = "strat-busy";
  await sem(group).lock("other-host");
  const { clock, out, done } = task([
    "REBOOT_STRATEGY=etcd-lock",
    `ETCD_ENDPOINTS=${etcd.url}`,
    `GROUP=${group}`,
    "LOCK_RETRY_SECONDS=60",
  ]);
  await pump(clock, 60_000, () => false, 3);
  assert.equal(out.reboots, 0, "no reboot while the only place is held");
  assert.ok(out.logs.some((l) => /reboot lock busy/.test(l)));
  assert.equal(await sem(group).unlock("other-host"), true);
  await pump(clock, 60_000, () => out.reboots > 0);
  assert.equal(await done, "rebooted");
  assert.equal(out.lockTaken, 1);
  assert.deepEqual((await sem(group).status()).holders, ["this-host"], "held across the reboot");
});

test("etcd-lock with etcd unreachable: never reboots, keeps retrying", async () => {
  const port = await freePort();
  const { t, clock, out, done } = task([
    "REBOOT_STRATEGY=etcd-lock",
    `ETCD_ENDPOINTS=http://127.0.0.1:${port}`,
    "LOCK_RETRY_SECONDS=30",
  ]);
  await pump(clock, 30_000, () => false, 5);
  assert.equal(out.reboots, 0);
  assert.ok(out.logs.filter((l) => /not rebooting/.test(l)).length >= 3);
  t.cancel();
  await clock.advance(30_000);
  assert.equal(await done, "cancelled");
});

test("etcd-lock or fleetlock without endpoints: never reboots, says what is missing", async () => {
  for (const [strategy, missing] of [
    ["etcd-lock", "ETCD_ENDPOINTS"],
    ["fleetlock", "FLEETLOCK_URL"],
  ]) {
    const { t, clock, out, done } = task([`REBOOT_STRATEGY=${strategy}`, "LOCK_RETRY_SECONDS=30"]);
    await pump(clock, 30_000, () => false, 3);
    assert.equal(out.reboots, 0);
    assert.ok(
      out.logs.some((l) => l.includes(`needs ${missing}`)),
      out.logs.join("\n"),
    );
    t.cancel();
    await clock.advance(30_000);
    assert.equal(await done, "cancelled");
  }
});

test("best-effort: uses etcd when reachable, reboots without a lock when not", async () => {
  const withEtcd = task(["REBOOT_STRATEGY=best-effort", `ETCD_ENDPOINTS=${etcd.url}`, "GROUP=be"]);
  await pump(withEtcd.clock, 1000, () => withEtcd.out.reboots > 0);
  assert.equal(await withEtcd.done, "rebooted");
  assert.deepEqual((await sem("be").status()).holders, ["this-host"]);
  const port = await freePort();
  const without = task(["REBOOT_STRATEGY=best-effort", `ETCD_ENDPOINTS=http://127.0.0.1:${port}`]);
  await pump(without.clock, 1000, () => without.out.reboots > 0);
  assert.equal(await without.done, "rebooted");
  assert.equal(without.out.lockTaken, 0);
  const plain = task(["REBOOT_STRATEGY=reboot"]);
  await pump(plain.clock, 1000, () => plain.out.reboots > 0);
  assert.equal(plain.out.lockTaken, 0);
});

test("reboot window: staged at noon Thursday, reboots at 23:00, not before", async () => {
  const { clock, out, done } = task([
    "REBOOT_STRATEGY=reboot",
    'REBOOT_WINDOW_START="Thu 23:00"',
    "REBOOT_WINDOW_LENGTH=1h",
  ]);
  await clock.advance(11 * 3600_000 - 1);
  assert.equal(out.reboots, 0);
  await clock.advance(1);
  await done;
  assert.equal(out.rebootAt, Date.UTC(2026, 10, 26, 23, 0, 0));
  // Friday 00:30 is outside: the next chance is next Thursday.
  const late = task(["REBOOT_STRATEGY=reboot", 'REBOOT_WINDOW_START="Thu 23:00"'], {
    start: Date.UTC(2026, 10, 27, 0, 30),
  });
  await late.clock.advance(6 * 24 * 3600_000);
  assert.equal(late.out.reboots, 0);
  await late.clock.advance(23 * 3600_000);
  await late.done;
  assert.equal(late.out.rebootAt, Date.UTC(2026, 11, 3, 23, 0, 0));
});

test("logged-in users are warned and given REBOOT_WARN_SECONDS", async () => {
  const { clock, out, done } = task(["REBOOT_STRATEGY=reboot", "REBOOT_WARN_SECONDS=300"], {
    users: ["alice"],
  });
  await clock.advance(299_000);
  assert.equal(out.reboots, 0);
  assert.match(out.warnings[0] ?? "", /rebooting in 300 s .*alice/);
  await clock.advance(1000);
  await done;
  assert.equal(out.reboots, 1);
});

test("utmp: USER_PROCESS records are logged-in users", () => {
  const dir = mkdtempSync(join(tmpdir(), "slipway-agent-utmp-"));
  try {
    const rec = (type: number, user: string) => {
      const b = Buffer.alloc(384);
      b.writeInt16LE(type, 0);
      b.write(user, 44);
      return b;
    };
    writeFileSync(
      join(dir, "utmp"),
      Buffer.concat([rec(2, "reboot"), rec(7, "bob"), rec(8, "gone"), rec(7, "alice")]),
    );
    assert.deepEqual(loggedInUsers(join(dir, "utmp")), ["alice", "bob"]);
    assert.deepEqual(loggedInUsers(join(dir, "missing")), []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("agent with etcd-lock: lock taken before the reboot, released after the health gate", async () => {
  const omaha = await startOmaha();
  const host = makeHost();
  try {
    installKey(host);
    host.writeConf([
      `SERVER=${omaha.url}/v1/update/`,
      "REBOOT_STRATEGY=etcd-lock",
      `ETCD_ENDPOINTS=${etcd.url}`,
      "GROUP=agents",
    ]);
    omaha.offer("1.1.0", (await makeRelease("1.1.0")).payload);
    const h = makeAgent(host);
    await h.agent.start({ checkNow: true });
    await h.clock.advance(0);
    await until(() => h.reboots === 1, "the reboot");
    const id = (await import("node:fs"))
      .readFileSync(join(host.root, "etc/machine-id"), "utf8")
      .trim();
    assert.deepEqual((await sem("agents").status()).holders, [id]);
    host.slotVersion.B = "1.1.0";
    host.reboot();
    const back = makeAgent(host);
    await back.agent.start();
    assert.deepEqual((await sem("agents").status()).holders, [], "released once healthy");
    assert.equal(omaha.events.at(-1)?.result, 2);
  } finally {
    host.cleanup();
    await omaha.stop();
  }
});
