/**
 * The update service end to end over HTTP, once on SQLite and once on a real PostgreSQL 15
 * started here on loopback: protocol shapes, rollout policy with a controlled clock, admin
 * API, FleetLock, metrics, hostile input.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ErrorCode, EventResult, EventType } from "../../src/omaha/index.ts";
import { pruneOld } from "../../src/server/retention.ts";
import { ev, MONDAY_10_UTC, startTestServer, type TestServer, uploadPackage } from "./helpers.ts";
import { createDatabase, type Postgres, startPostgres } from "./pg-harness.ts";

let pg: Postgres | undefined;
after(async () => {
  await pg?.stop();
});

interface Setup {
  versions: string[];
  channel: string;
  policy?: Record<string, unknown>;
  channelExtra?: Record<string, unknown>;
}

/** A fresh application with packages, a channel "stable" and a group with track "stable". */
async function setupApp(t: TestServer, appId: string, s: Setup): Promise<{ groupId: string }> {
  assert.equal((await t.api("POST", "/api/apps", { id: appId, name: appId })).status, 201);
  for (const v of s.versions) {
    assert.equal(
      (await uploadPackage(t, appId, v, Buffer.from(`payload ${appId} ${v}`))).status,
      201,
    );
  }
  const ch = await t.api("POST", `/api/apps/${appId}/channels`, {
    name: "stable",
    package: s.channel,
    ...s.channelExtra,
  });
  assert.equal(ch.status, 201, JSON.stringify(ch.body));
  const g = await t.api<{ id: string }>("POST", `/api/apps/${appId}/groups`, {
    name: "stable",
    channel: "stable",
    policy: { safeMode: false, maxUpdatesPerPeriod: 1000, ...s.policy },
  });
  assert.equal(g.status, 201, JSON.stringify(g.body));
  return { groupId: g.body.id };
}

const check = (t: TestServer, appId: string, machineId: string, version: string, extra = {}) =>
  t.omaha(appId, {
    machineId,
    version,
    track: "stable",
    ping: { active: 1 },
    updateCheck: {},
    ...extra,
  });

async function instanceStatus(t: TestServer, appId: string, machineId: string): Promise<string> {
  const r = await t.api<{ status: string }>("GET", `/api/apps/${appId}/instances/${machineId}`);
  return r.body.status;
}

/** Walk a granted host through download, install and reboot into `to`. */
async function completeUpdate(t: TestServer, appId: string, m: string, from: string, to: string) {
  await t.omaha(appId, {
    machineId: m,
    version: from,
    track: "stable",
    events: [ev(EventType.DownloadStarted, 1)],
  });
  await t.omaha(appId, {
    machineId: m,
    version: from,
    track: "stable",
    events: [ev(EventType.DownloadFinished, 1)],
  });
  await t.omaha(appId, {
    machineId: m,
    version: from,
    track: "stable",
    events: [ev(EventType.UpdateComplete, 1)],
  });
  return t.omaha(appId, {
    machineId: m,
    version: to,
    track: "stable",
    bootId: "boot-2",
    ping: { active: 1 },
    updateCheck: {},
    events: [ev(EventType.UpdateComplete, EventResult.SuccessReboot, { previousVersion: from })],
  });
}

for (const backend of ["sqlite", "postgres"] as const) {
  describe(`update service on ${backend}`, () => {
    let t: TestServer;
    before(async () => {
      let database: string | undefined;
      if (backend === "postgres") {
        pg ??= await startPostgres();
        database = await createDatabase(pg.url, `it_${Date.now()}`);
      }
      t = await startTestServer(database);
    });
    after(async () => {
      await t?.close();
    });

    test("unknown application → error-unknownApplication, nothing recorded", async () => {
      const { status, res } = await check(t, "no-such-app", "m1", "1.0.0");
      assert.equal(status, 200);
      assert.equal(res.apps[0]!.status, "error-unknownApplication");
      assert.equal(res.apps[0]!.updateCheck, undefined);
      const inst = await t.api<{ total: number }>("GET", "/api/apps/no-such-app/instances");
      assert.equal(inst.status, 404);
    });

    test("admin API needs a token; a viewer token may only read", async () => {
      assert.equal((await t.api("GET", "/api/apps", undefined, "")).status, 401);
      assert.equal((await t.api("GET", "/api/apps", undefined, "slw_wrong")).status, 401);
      const v = await t.api<{ token: string }>("POST", "/api/tokens", {
        name: "ro",
        scope: "viewer",
      });
      assert.equal(v.status, 201);
      assert.equal((await t.api("GET", "/api/apps", undefined, v.body.token)).status, 200);
      assert.equal((await t.api("POST", "/api/apps", { name: "x" }, v.body.token)).status, 403);
      const doc = await fetch(`${t.url}/api/openapi.json`);
      const spec = (await doc.json()) as { openapi: string; paths: Record<string, unknown> };
      assert.match(spec.openapi, /^3\./);
      assert.ok(spec.paths["/api/apps/{app}/groups/{group}"]);
    });

    test("update check offers the channel's package; the download matches and resumes with Range", async () => {
      await setupApp(t, "proto", { versions: ["2.0.0"], channel: "2.0.0" });
      const { status, res } = await check(t, "proto", "m1", "1.0.0");
      assert.equal(status, 200);
      const app = res.apps[0]!;
      assert.equal(app.status, "ok");
      assert.deepEqual(app.ping, { status: "ok" });
      const uc = app.updateCheck!;
      assert.equal(uc.status, "ok");
      assert.equal(uc.pollInterval, 1800);
      assert.equal(uc.manifest!.version, "2.0.0");
      const pkg = uc.manifest!.packages[0]!;
      assert.equal(pkg.required, true);
      const action = uc.manifest!.actions.find((a) => a.event === "postinstall")!;
      const body = Buffer.from(await (await fetch(uc.urls[0]! + pkg.name)).arrayBuffer());
      assert.equal(body.length, pkg.size);
      assert.equal(createHash("sha256").update(body).digest("base64"), action.sha256);
      const part = await fetch(uc.urls[0]! + pkg.name, { headers: { range: "bytes=3-" } });
      assert.equal(part.status, 206);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), body.subarray(3));
      assert.equal(await instanceStatus(t, "proto", "m1"), "update-granted");
      // Asking again while holding the grant gets the same answer.
      const again = await check(t, "proto", "m1", "1.0.0");
      assert.equal(again.res.apps[0]!.updateCheck!.manifest!.version, "2.0.0");
    });

    test("delta_okay: a host on a version with a delta payload gets the delta, others the full file", async () => {
      await setupApp(t, "deltas", { versions: ["2.0.0"], channel: "2.0.0" });
      const put = (from: string, filename: string, body: Buffer) =>
        fetch(`${t.url}/api/apps/deltas/packages/2.0.0/deltas/${from}?filename=${filename}`, {
          method: "PUT",
          headers: {
            authorization: `Bearer ${t.token}`,
            "content-type": "application/octet-stream",
          },
          body,
        });
      const delta = Buffer.from("delta 1.0.0 -> 2.0.0");
      assert.equal((await put("1.0.0", "from-1.0.0.payload", delta)).status, 201);
      assert.equal(
        (await put("1.0.0", "other.payload", delta)).status,
        409,
        "one delta per source",
      );
      assert.equal((await put("1.1.0", "update.gz", delta)).status, 409, "the full file's name");
      const ext = await t.api("POST", "/api/apps/deltas/packages/2.0.0/deltas", {
        from: "1.5.0",
        url: "https://cdn.example/deltas/",
        filename: "from-1.5.0.payload",
        size: 77,
        sha256: "ab".repeat(32),
      });
      assert.equal(ext.status, 201, JSON.stringify(ext.body));
      const list = await t.api<{ from: string }[]>("GET", "/api/apps/deltas/packages/2.0.0/deltas");
      assert.deepEqual(
        list.body.map((d) => d.from),
        ["1.0.0", "1.5.0"],
      );

      const offer = async (m: string, version: string, deltaOkay: boolean) => {
        const uc = (await check(t, "deltas", m, version, { deltaOkay })).res.apps[0]!.updateCheck!;
        assert.equal(uc.status, "ok");
        return {
          url: uc.urls[0]! + uc.manifest!.packages[0]!.name,
          size: uc.manifest!.packages[0]!.size,
          action: uc.manifest!.actions[0]!,
        };
      };
      const d = await offer("d1", "1.0.0", true);
      assert.match(d.url, /\/from-1\.0\.0\.payload$/);
      assert.equal(d.action.isDelta, true);
      assert.equal(d.size, delta.length);
      const got = Buffer.from(await (await fetch(d.url)).arrayBuffer());
      assert.deepEqual(got, delta);
      assert.equal(createHash("sha256").update(got).digest("base64"), d.action.sha256);
      // Asking again while holding the grant: the same delta.
      assert.equal((await offer("d1", "1.0.0", true)).url, d.url);
      // The delta fails on the host: no second delta; one try with the full file when the host
      // asks without delta_okay; after that fails too, nothing until an operator resets it.
      const fail = () =>
        t.omaha("deltas", {
          machineId: "d1",
          version: "1.0.0",
          track: "stable",
          events: [ev(EventType.UpdateComplete, EventResult.Error, { errorCode: 20 })],
        });
      await fail();
      const retry = async (deltaOkay: boolean) =>
        (await check(t, "deltas", "d1", "1.0.0", { deltaOkay })).res.apps[0]!.updateCheck!;
      assert.equal((await retry(true)).status, "noupdate");
      const fullRetry = await retry(false);
      assert.equal(fullRetry.status, "ok");
      assert.equal(fullRetry.manifest!.packages[0]!.name, "update.gz");
      await fail();
      assert.equal((await retry(false)).status, "noupdate");

      const full = await offer("d2", "1.0.0", false);
      assert.match(full.url, /\/update\.gz$/);
      assert.equal(full.action.isDelta, false);
      assert.match((await offer("d3", "0.9.0", true)).url, /\/update\.gz$/, "no delta from 0.9.0");
      assert.equal(
        (await offer("d4", "1.5.0", true)).url,
        "https://cdn.example/deltas/from-1.5.0.payload",
      );

      assert.equal(
        (await t.api("DELETE", "/api/apps/deltas/packages/2.0.0/deltas/1.0.0")).status,
        204,
      );
      assert.equal((await fetch(d.url)).status, 404, "the stored delta file is gone");
      assert.match((await offer("d5", "1.0.0", true)).url, /\/update\.gz$/);
    });

    test("session, rollout target, version timeline and the activity cursor", async () => {
      const me = await t.api<{ scope: string; name: string }>("GET", "/api/session");
      assert.deepEqual([me.status, me.body.scope], [200, "admin"]);
      const v = await t.api<{ token: string }>("POST", "/api/tokens", {
        name: "eyes",
        scope: "viewer",
      });
      const viewer = await t.api<{ scope: string; name: string }>(
        "GET",
        "/api/session",
        undefined,
        v.body.token,
      );
      assert.deepEqual(viewer.body, { ...viewer.body, scope: "viewer", name: "eyes" });
      assert.equal((await t.api("GET", "/api/session", undefined, "slw_nope")).status, 401);

      const { groupId } = await setupApp(t, "tl", {
        versions: ["1.0.0", "2.0.0"],
        channel: "2.0.0",
      });
      const start = t.clock.now;
      await check(t, "tl", "h1", "1.0.0");
      await check(t, "tl", "h2", "1.0.0");
      t.clock.now += 3_600_000;
      await completeUpdate(t, "tl", "h1", "1.0.0", "2.0.0");
      const r = await t.api<{ target: string; versions: Record<string, number> }>(
        "GET",
        `/api/apps/tl/groups/${groupId}/rollout`,
      );
      assert.equal(r.body.target, "2.0.0");
      assert.deepEqual(r.body.versions, { "1.0.0": 1, "2.0.0": 1 });
      const tl = await t.api<{
        versions: string[];
        points: { t: number; counts: Record<string, number> }[];
      }>("GET", `/api/apps/tl/groups/${groupId}/timeline?buckets=4`);
      assert.equal(tl.status, 200);
      assert.deepEqual(tl.body.versions, ["1.0.0", "2.0.0"]);
      assert.equal(tl.body.points.length, 5);
      assert.deepEqual(tl.body.points[0], { t: start, counts: { "1.0.0": 2 } });
      assert.deepEqual(tl.body.points.at(-1)!.counts, { "1.0.0": 1, "2.0.0": 1 });

      assert.equal((await t.api("POST", `/api/apps/tl/groups/${groupId}/pause`)).status, 200);
      // As `curl -H 'content-type: application/json' -X POST` sends it: a JSON type, no body.
      const resume = await fetch(`${t.url}/api/apps/tl/groups/${groupId}/resume`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
      });
      assert.equal(resume.status, 200, await resume.text());
      const all = await t.api<{ id: number }[]>("GET", "/api/activity?limit=1000");
      assert.ok(all.body.length >= 2, "pause and resume were logged");
      const oldest = all.body.at(-1)!.id;
      const newer = await t.api<{ id: number }[]>(
        "GET",
        `/api/activity?after=${oldest}&limit=1000`,
      );
      assert.deepEqual(
        newer.body.map((a) => a.id),
        all.body
          .slice(0, -1)
          .map((a) => a.id)
          .reverse(),
        "after= gives the newer entries, oldest first",
      );
      assert.deepEqual((await t.api("GET", `/api/activity?after=${all.body[0]!.id}`)).body, []);
      const spec = (await (await fetch(`${t.url}/api/openapi.json`)).json()) as {
        paths: Record<string, unknown>;
      };
      for (const path of [
        "/api/session",
        "/api/apps/{app}/groups/{group}/timeline",
        "/api/apps/{app}/packages/{version}/deltas/{from}",
      ])
        assert.ok(spec.paths[path], `OpenAPI has ${path}`);
    });

    test("hosts: an operator alias survives check-ins; filter by last check", async () => {
      const named = await t.api<{ alias: string }>("PATCH", "/api/apps/tl/instances/h2", {
        alias: "rack 4, slot 2",
      });
      assert.deepEqual([named.status, named.body.alias], [200, "rack 4, slot 2"]);
      assert.equal(
        (await t.api("PATCH", "/api/apps/tl/instances/nope", { alias: "x" })).status,
        404,
      );
      await check(t, "tl", "h2", "1.0.0");
      const h2 = await t.api<{ alias: string }>("GET", "/api/apps/tl/instances/h2");
      assert.equal(h2.body.alias, "rack 4, slot 2");
      t.clock.now += 7_200_000;
      await check(t, "tl", "h2", "1.0.0");
      const ids = async (q: string) =>
        (
          await t.api<{ instances: { machineId: string }[] }>("GET", `/api/apps/tl/instances?${q}`)
        ).body.instances.map((i) => i.machineId);
      assert.deepEqual(await ids("seenWithinS=3600"), ["h2"]);
      assert.deepEqual(await ids("notSeenForS=3600"), ["h1"]);
    });

    test("ping-only and event-only requests are acknowledged without an updatecheck", async () => {
      const ping = await t.omaha("proto", {
        machineId: "m2",
        version: "1.0.0",
        track: "stable",
        ping: { active: 1 },
      });
      assert.deepEqual(ping.res.apps[0]!.ping, { status: "ok" });
      assert.equal(ping.res.apps[0]!.updateCheck, undefined);
      assert.deepEqual(ping.res.apps[0]!.events, []);
      const evOnly = await t.omaha("proto", {
        machineId: "m1",
        version: "1.0.0",
        track: "stable",
        events: [ev(EventType.DownloadStarted, 1), ev(EventType.DownloadFinished, 1)],
      });
      assert.deepEqual(evOnly.res.apps[0]!.events, [{ status: "ok" }, { status: "ok" }]);
      assert.equal(evOnly.res.apps[0]!.ping, undefined);
      assert.equal(await instanceStatus(t, "proto", "m1"), "downloaded");
    });

    test("first check after reboot with previousversion completes the update", async () => {
      await t.omaha("proto", {
        machineId: "m1",
        version: "1.0.0",
        track: "stable",
        events: [ev(3, 1)],
      });
      assert.equal(await instanceStatus(t, "proto", "m1"), "installed");
      const after = await t.omaha("proto", {
        machineId: "m1",
        version: "2.0.0",
        track: "stable",
        bootId: "b2",
        ping: { active: 1 },
        updateCheck: {},
        events: [ev(3, 2, { previousVersion: "1.0.0" })],
      });
      assert.equal(after.res.apps[0]!.updateCheck!.status, "noupdate");
      assert.equal(await instanceStatus(t, "proto", "m1"), "complete");
      const detail = await t.api<{
        version: string;
        events: { type: number; previousVersion: string | null }[];
      }>("GET", "/api/apps/proto/instances/m1");
      assert.equal(detail.body.version, "2.0.0");
      assert.equal(detail.body.events[0]!.previousVersion, "1.0.0");
      assert.equal(detail.body.events.length, 4);
    });

    test("safe mode: one host at a time until the first completes", async () => {
      await setupApp(t, "safe", {
        versions: ["2.0.0"],
        channel: "2.0.0",
        policy: { safeMode: true },
      });
      assert.equal((await check(t, "safe", "a", "1.0.0")).res.apps[0]!.updateCheck!.status, "ok");
      assert.equal(
        (await check(t, "safe", "b", "1.0.0")).res.apps[0]!.updateCheck!.status,
        "noupdate",
      );
      assert.equal(await instanceStatus(t, "safe", "b"), "on-hold");
      const done = await completeUpdate(t, "safe", "a", "1.0.0", "2.0.0");
      assert.equal(done.res.apps[0]!.updateCheck!.status, "noupdate");
      assert.equal(await instanceStatus(t, "safe", "a"), "complete");
      assert.equal((await check(t, "safe", "b", "1.0.0")).res.apps[0]!.updateCheck!.status, "ok");
      assert.equal((await check(t, "safe", "c", "1.0.0")).res.apps[0]!.updateCheck!.status, "ok");
    });

    test("a rollback report (3/0 with the rollback code) halts a safe-mode group; resume continues", async () => {
      const { groupId } = await setupApp(t, "rb", {
        versions: ["2.0.0"],
        channel: "2.0.0",
        policy: { safeMode: true },
      });
      assert.equal((await check(t, "rb", "a", "1.0.0")).res.apps[0]!.updateCheck!.status, "ok");
      const r = await t.omaha("rb", {
        machineId: "a",
        version: "1.0.0",
        track: "stable",
        events: [
          ev(EventType.UpdateComplete, EventResult.Error, { errorCode: ErrorCode.Rollback }),
        ],
      });
      assert.deepEqual(r.res.apps[0]!.events, [{ status: "ok" }]);
      assert.equal(await instanceStatus(t, "rb", "a"), "error");
      const g = await t.api<{ haltedReason: string | null }>(
        "GET",
        `/api/apps/rb/groups/${groupId}`,
      );
      assert.match(g.body.haltedReason ?? "", /rolled back/);
      assert.equal(
        (await check(t, "rb", "b", "1.0.0")).res.apps[0]!.updateCheck!.status,
        "noupdate",
      );
      const act = await t.api<{ class: string; severity: string }[]>("GET", "/api/activity?app=rb");
      assert.ok(act.body.some((a) => a.class === "rollout-halted" && a.severity === "critical"));
      // The failed host is not offered the same version again.
      assert.equal((await t.api("POST", `/api/apps/rb/groups/${groupId}/resume`)).status, 200);
      assert.equal(
        (await check(t, "rb", "a", "1.0.0")).res.apps[0]!.updateCheck!.status,
        "noupdate",
      );
      assert.equal((await check(t, "rb", "b", "1.0.0")).res.apps[0]!.updateCheck!.status, "ok");
    });

    test("a host that comes back on the old version after installing counts as a rollback", async () => {
      const { groupId } = await setupApp(t, "rb2", {
        versions: ["2.0.0"],
        channel: "2.0.0",
        policy: { safeMode: true },
      });
      await check(t, "rb2", "a", "1.0.0", { bootId: "boot-1" });
      await t.omaha("rb2", {
        machineId: "a",
        version: "1.0.0",
        track: "stable",
        bootId: "boot-1",
        events: [ev(3, 1)],
      });
      await check(t, "rb2", "a", "1.0.0", { bootId: "boot-2" });
      assert.equal(await instanceStatus(t, "rb2", "a"), "error");
      const g = await t.api<{ haltedReason: string | null }>(
        "GET",
        `/api/apps/rb2/groups/${groupId}`,
      );
      assert.match(g.body.haltedReason ?? "", /old version/);
    });

    test("max updates per period follows the clock", async () => {
      await setupApp(t, "rate", {
        versions: ["2.0.0"],
        channel: "2.0.0",
        policy: { maxUpdatesPerPeriod: 2, periodIntervalS: 600 },
      });
      const status = async (m: string) =>
        (await check(t, "rate", m, "1.0.0")).res.apps[0]!.updateCheck!.status;
      assert.equal(await status("a"), "ok");
      assert.equal(await status("b"), "ok");
      assert.equal(await status("c"), "noupdate");
      t.clock.now += 601_000;
      assert.equal(await status("c"), "ok");
      assert.equal(await status("d"), "ok");
      assert.equal(await status("e"), "noupdate");
      t.clock.now = MONDAY_10_UTC;
    });

    test("an update that outlives the timeout fails the host and halts safe mode", async () => {
      const { groupId } = await setupApp(t, "tmo", {
        versions: ["2.0.0"],
        channel: "2.0.0",
        policy: { safeMode: true, updateTimeoutS: 300 },
      });
      assert.equal((await check(t, "tmo", "a", "1.0.0")).res.apps[0]!.updateCheck!.status, "ok");
      t.clock.now += 301_000;
      assert.equal(
        (await check(t, "tmo", "b", "1.0.0")).res.apps[0]!.updateCheck!.status,
        "noupdate",
      );
      assert.equal(await instanceStatus(t, "tmo", "a"), "error");
      const g = await t.api<{ haltedReason: string | null }>(
        "GET",
        `/api/apps/tmo/groups/${groupId}`,
      );
      assert.match(g.body.haltedReason ?? "", /timed out/);
      t.clock.now = MONDAY_10_UTC;
    });

    test("pause and resume", async () => {
      const { groupId } = await setupApp(t, "pause", { versions: ["2.0.0"], channel: "2.0.0" });
      assert.equal((await t.api("POST", `/api/apps/pause/groups/${groupId}/pause`)).status, 200);
      assert.equal(
        (await check(t, "pause", "a", "1.0.0")).res.apps[0]!.updateCheck!.status,
        "noupdate",
      );
      assert.equal((await t.api("POST", `/api/apps/pause/groups/stable/resume`)).status, 200);
      assert.equal((await check(t, "pause", "a", "1.0.0")).res.apps[0]!.updateCheck!.status, "ok");
    });

    test("office hours in the group's timezone", async () => {
      const { groupId } = await setupApp(t, "office", {
        versions: ["2.0.0"],
        channel: "2.0.0",
        policy: {
          officeHours: true,
          timezone: "America/New_York",
          officeStart: "09:00",
          officeEnd: "17:00",
        },
      });
      // Monday 10:00 UTC is 05:00 in New York.
      assert.equal(
        (await check(t, "office", "a", "1.0.0")).res.apps[0]!.updateCheck!.status,
        "noupdate",
      );
      t.clock.now = MONDAY_10_UTC + 5 * 3600_000; // 10:00 in New York
      assert.equal((await check(t, "office", "a", "1.0.0")).res.apps[0]!.updateCheck!.status, "ok");
      t.clock.now = MONDAY_10_UTC;
      const bad = await t.api("PATCH", `/api/apps/office/groups/${groupId}`, {
        policy: { timezone: "Mars/Olympus" },
      });
      assert.equal(bad.status, 400);
    });

    test("floors are passed through, blacklisted packages never served, downgrades only when allowed", async () => {
      await setupApp(t, "floors", {
        versions: ["1.5.0", "1.8.0", "2.0.0"],
        channel: "2.0.0",
        channelExtra: { floors: ["1.5.0", "1.8.0"], blacklist: ["1.8.0"] },
      });
      const offered = async (m: string, v: string) =>
        (await check(t, "floors", m, v)).res.apps[0]!.updateCheck!.manifest?.version;
      assert.equal(await offered("a", "1.0.0"), "1.5.0");
      assert.equal(await offered("b", "1.6.0"), "2.0.0");
      assert.equal(await offered("c", "3.0.0"), undefined);
      await t.api("PATCH", "/api/apps/floors/channels/stable", { allowDowngrade: true });
      assert.equal(await offered("d", "3.0.0"), "2.0.0");
      await t.api("PATCH", "/api/apps/floors/channels/stable", { blacklist: ["2.0.0"] });
      assert.equal(await offered("e", "1.9.0"), undefined);
    });

    test("FleetLock: one slot per group by default, JSON errors, admin frees a slot", async () => {
      const post = (path: string, id: string, group = "workers", header = true) =>
        fetch(`${t.url}${path}`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(header ? { "fleet-lock-protocol": "true" } : {}),
          },
          body: JSON.stringify({ client_params: { id, group } }),
        });
      const noHeader = await post("/v1/pre-reboot", "n1", "workers", false);
      assert.equal(noHeader.status, 400);
      assert.ok(((await noHeader.json()) as { kind: string }).kind);
      const badGroup = await post("/v1/pre-reboot", "n1", "bad group!");
      assert.equal(badGroup.status, 400);
      assert.equal((await post("/v1/pre-reboot", "n1")).status, 200);
      assert.equal((await post("/v1/pre-reboot", "n1")).status, 200);
      const busy = await post("/v1/pre-reboot", "n2");
      assert.equal(busy.status, 409);
      assert.deepEqual(Object.keys((await busy.json()) as object).sort(), ["kind", "value"]);
      const groups = await t.api<{ name: string; holders: { id: string }[] }[]>(
        "GET",
        "/api/fleetlock",
      );
      assert.deepEqual(
        groups.body.find((g) => g.name === "workers")!.holders.map((h) => h.id),
        ["n1"],
      );
      assert.equal((await t.api("DELETE", "/api/fleetlock/workers/holders/n1")).status, 204);
      assert.equal((await post("/v1/pre-reboot", "n2")).status, 200);
      assert.equal((await post("/v1/steady-state", "n2")).status, 200);
      assert.equal((await t.api("PUT", "/api/fleetlock/workers", { maxSlots: 2 })).status, 200);
      assert.equal((await post("/v1/pre-reboot", "n3")).status, 200);
      assert.equal((await post("/v1/pre-reboot", "n4")).status, 200);
      assert.equal((await post("/v1/pre-reboot", "n5")).status, 409);
      // The log has every change of holder, in commit order: re-takes and refused takes
      // change nothing and are not in it, nor is a release of a slot not held.
      assert.equal((await post("/v1/steady-state", "n9")).status, 200);
      const log = await t.api<{ seq: number; id: string; action: string; at: number }[]>(
        "GET",
        "/api/fleetlock/workers/log",
      );
      assert.equal(log.status, 200);
      assert.deepEqual(
        log.body.map((e) => `${e.action} ${e.id}`),
        ["acquired n1", "freed n1", "acquired n2", "released n2", "acquired n3", "acquired n4"],
      );
      assert.ok(log.body.every((e, i) => i === 0 || e.seq > log.body[i - 1]!.seq));
      assert.ok(log.body.every((e) => e.at > 0));
      const tail = await t.api<{ id: string }[]>(
        "GET",
        `/api/fleetlock/workers/log?after=${log.body[3]!.seq}&limit=1`,
      );
      assert.deepEqual(
        tail.body.map((e) => e.id),
        ["n3"],
      );
      assert.deepEqual((await t.api("GET", "/api/fleetlock/other/log")).body, []);
    });

    test("metrics count instances per version and channel; health answers", async () => {
      const m = await (await fetch(`${t.url}/metrics`)).text();
      assert.match(m, /slipway_instances\{app="proto",channel="stable",version="2.0.0"\} 1/);
      assert.match(m, /slipway_update_outcomes_total\{outcome="granted"\} \d+/);
      assert.match(m, /slipway_http_request_duration_seconds_bucket/);
      const h = await fetch(`${t.url}/health`);
      assert.equal(h.status, 200);
      assert.equal(((await h.json()) as { database: string }).database, backend);
    });

    test("hostile bodies: XXE, entity bombs, 10 MB, garbage → 4xx, no database write", async () => {
      const count = async () =>
        (await t.api<{ total: number }>("GET", "/api/apps/proto/instances")).body.total;
      const before = await count();
      const bodies = [
        `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><request protocol="3.0"><app appid="proto" machineid="&x;" version="1"><updatecheck/></app></request>`,
        `<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><request protocol="3.0"><app appid="proto" machineid="&b;" version="1"/></request>`,
        `<request protocol="3.0"><app appid="proto" machineid="x" version="1"><event eventtype="zz"/></app></request>`,
        "not xml at all",
        "",
      ];
      for (const body of bodies) {
        const r = await fetch(`${t.url}/v1/update/`, {
          method: "POST",
          headers: { "content-type": "text/xml" },
          body,
        });
        assert.equal(r.status, 400, body.slice(0, 60));
      }
      const big = await fetch(`${t.url}/v1/update/`, {
        method: "POST",
        headers: { "content-type": "text/xml" },
        body: `<request protocol="3.0"><app appid="proto" machineid="big" version="1">${" ".repeat(10 * 1024 * 1024)}</app></request>`,
      });
      assert.equal(big.status, 413);
      const json = await fetch(`${t.url}/v1/update/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      assert.ok(json.status >= 400 && json.status < 500);
      // A missing machine id is the client's mistake: an Omaha error, no row.
      const noMachine = await t.omaha("proto", { version: "1.0.0", updateCheck: {} });
      assert.equal(noMachine.res.apps[0]!.status, "error-invalidAppId");
      assert.equal(await count(), before);
    });

    test("retention prunes old instances and events", async () => {
      const now = MONDAY_10_UTC + 40 * 86_400_000;
      const n = await pruneOld(t.server.db.db, now, { instanceDays: 30, eventDays: 30 });
      assert.ok(n.instances > 0 && n.events > 0);
      assert.equal(
        (await t.api<{ total: number }>("GET", "/api/apps/proto/instances")).body.total,
        0,
      );
    });
  });
}
