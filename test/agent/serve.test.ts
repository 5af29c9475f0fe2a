/**
 * The agent against a real `slipway serve` on loopback (the update-service
 * engineer's server): the full Omaha exchange with a real payload, and the
 * FleetLock guarantees through the server's lock endpoints.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ManualClock } from "../../src/agent/clock.ts";
import { configFromEntries, parseConfText } from "../../src/agent/config.ts";
import { RebootTask } from "../../src/agent/reboot.ts";
import { FleetLockClient } from "../../src/lock/fleetlock.ts";
import { freePort } from "../lock/etcd-fixture.ts";
import { startTestServer, type TestServer } from "../server/helpers.ts";
import { installKey, makeAgent, until } from "./helpers.ts";
import { makeHost } from "./host-fixture.ts";
import { makeRelease } from "./payloads.ts";

const APP = "slipway-agent-test";
let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
});

test("against slipway serve: check, download, verify, write, boot state; server sees 13/1 14/1 3/1, then 3/2", async () => {
  const host = makeHost();
  try {
    installKey(host);
    const rel = await makeRelease("1.1.0", { base: readFileSync(host.slotPath("A")) });
    assert.equal((await t.api("POST", "/api/apps", { id: APP, name: APP })).status, 201);
    const up = await fetch(
      `${t.url}/api/apps/${APP}/packages/1.1.0?filename=slipway-1.1.0.payload`,
      {
        method: "PUT",
        headers: { authorization: `Bearer ${t.token}`, "content-type": "application/octet-stream" },
        body: rel.payload,
      },
    );
    assert.equal(up.status, 201, await up.text());
    assert.equal(
      (await t.api("POST", `/api/apps/${APP}/channels`, { name: "stable", package: "1.1.0" }))
        .status,
      201,
    );
    const g = await t.api("POST", `/api/apps/${APP}/groups`, {
      name: "stable",
      channel: "stable",
      policy: { safeMode: false, maxUpdatesPerPeriod: 1000 },
    });
    assert.equal(g.status, 201, JSON.stringify(g.body));
    host.writeConf([
      `SERVER=${t.url}/v1/update/`,
      `APP_ID=${APP}`,
      "GROUP=stable",
      "REBOOT_STRATEGY=reboot",
    ]);

    const h = makeAgent(host);
    await h.agent.start({ checkNow: true });
    await h.clock.advance(0);
    await until(() => h.reboots === 1, "the reboot", 20_000).catch((e) => {
      throw new Error(`${e.message}; agent log:\n${h.logs.join("\n")}`);
    });
    assert.ok(readFileSync(host.slotPath("B")).subarray(0, rel.image.length).equals(rel.image));
    assert.deepEqual(host.bootState().B, { priority: 2, tries: 1, successful: 0 });
    const machine = readFileSync(join(host.root, "etc/machine-id"), "utf8").trim();
    const events = async () => {
      const r = await t.api<{
        status: string;
        events: { type: number; result: number; previousVersion: string | null }[];
      }>("GET", `/api/apps/${APP}/instances/${machine}`);
      return {
        status: r.body.status,
        events: r.body.events.map((e) => `${e.type}/${e.result}`).reverse(),
        raw: r.body.events,
      };
    };
    assert.deepEqual((await events()).events, ["13/1", "14/1", "3/1"]);

    host.slotVersion.B = "1.1.0";
    assert.equal(host.reboot(), "B");
    const back = makeAgent(host);
    await back.agent.start();
    const final = await events();
    assert.deepEqual(final.events, ["13/1", "14/1", "3/1", "3/2"]);
    assert.equal(final.raw[0]!.previousVersion, "1.0.0");
    assert.equal(final.status, "complete");
    assert.deepEqual(host.bootState().B, { priority: 2, tries: 0, successful: 1 });
  } finally {
    host.cleanup();
  }
});

test("FleetLock through slipway serve: 50 clients, max 2, never more than 2 holders", async () => {
  const group = "fleet50";
  assert.equal((await t.api("PUT", `/api/fleetlock/${group}`, { maxSlots: 2 })).status, 200);
  let holding = 0;
  let maxSeen = 0;
  const served = new Set<string>();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const c = new FleetLockClient({ baseUrl: t.url, id: `host-${i}`, group });
      while (!(await c.acquire())) await sleep(5 + Math.random() * 20);
      holding++;
      maxSeen = Math.max(maxSeen, holding);
      const list = await t.api<{ name: string; holders: { id: string }[] }[]>(
        "GET",
        "/api/fleetlock",
      );
      const holders = list.body.find((x) => x.name === group)!.holders.length;
      assert.ok(holders <= 2, `server lists ${holders} holders`);
      served.add(`host-${i}`);
      await sleep(5);
      holding--;
      await c.release();
    }),
  );
  assert.equal(served.size, 50);
  assert.ok(maxSeen <= 2 && maxSeen >= 1, `max concurrent holders ${maxSeen}`);
});

test("FleetLock: a dead holder keeps its slot until an admin frees it; unreachable server → no reboot", async () => {
  const group = "deadfl";
  const dead = new FleetLockClient({ baseUrl: t.url, id: "dead-host", group });
  assert.equal(await dead.acquire(), true);
  const live = new FleetLockClient({ baseUrl: t.url, id: "live-host", group });
  assert.equal(await live.acquire(), false);
  assert.equal((await t.api("DELETE", `/api/fleetlock/${group}/holders/dead-host`)).status, 204);
  assert.equal(await live.acquire(), true);

  const port = await freePort();
  const config = configFromEntries(
    parseConfText(
      `REBOOT_STRATEGY=fleetlock\nFLEETLOCK_URL=http://127.0.0.1:${port}\nLOCK_RETRY_SECONDS=10\n`,
      "update.conf",
    ),
  );
  const clock = new ManualClock(Date.UTC(2026, 10, 26, 12));
  let reboots = 0;
  const task = new RebootTask({
    config,
    clock,
    holderId: "h1",
    log: () => {},
    onLockTaken: async () => {},
    loggedInUsers: () => [],
    warn: async () => {},
    rebootNow: async () => {
      reboots++;
    },
  });
  const done = task.run();
  for (let i = 0; i < 5; i++) {
    await clock.advance(10_000);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(reboots, 0);
  task.cancel();
  await clock.advance(10_000);
  assert.equal(await done, "cancelled");
});

test("agent with REBOOT_STRATEGY=fleetlock: slot taken on slipway serve before the reboot, released after the health gate", async () => {
  const host = makeHost();
  try {
    installKey(host);
    const APP2 = "slipway-agent-fl";
    const rel = await makeRelease("1.1.0");
    assert.equal((await t.api("POST", "/api/apps", { id: APP2, name: APP2 })).status, 201);
    const up = await fetch(`${t.url}/api/apps/${APP2}/packages/1.1.0?filename=p.payload`, {
      method: "PUT",
      headers: { authorization: `Bearer ${t.token}`, "content-type": "application/octet-stream" },
      body: rel.payload,
    });
    assert.equal(up.status, 201);
    await t.api("POST", `/api/apps/${APP2}/channels`, { name: "stable", package: "1.1.0" });
    await t.api("POST", `/api/apps/${APP2}/groups`, {
      name: "stable",
      channel: "stable",
      policy: { safeMode: false, maxUpdatesPerPeriod: 1000 },
    });
    host.writeConf([
      `SERVER=${t.url}/v1/update/`,
      `APP_ID=${APP2}`,
      "REBOOT_STRATEGY=fleetlock",
      `FLEETLOCK_URL=${t.url}`,
      "LOCK_GROUP=flagents",
    ]);
    const holders = async () =>
      (await t.api<{ name: string; holders: { id: string }[] }[]>("GET", "/api/fleetlock")).body
        .find((g) => g.name === "flagents")
        ?.holders.map((x) => x.id) ?? [];
    const h = makeAgent(host);
    await h.agent.start({ checkNow: true });
    await h.clock.advance(0);
    await until(() => h.reboots === 1, "the reboot", 20_000);
    const machine = readFileSync(join(host.root, "etc/machine-id"), "utf8").trim();
    assert.deepEqual(await holders(), [machine]);
    host.slotVersion.B = "1.1.0";
    host.reboot();
    const back = makeAgent(host);
    await back.agent.start();
    assert.deepEqual(await holders(), [], "steady-state after the health gate");
  } finally {
    host.cleanup();
  }
});
