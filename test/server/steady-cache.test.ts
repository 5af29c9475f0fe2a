/**
 * On SQLite the steady-state rows of hosts are cached in memory (db/hot-queries.ts): every
 * write of the serving connection must drop them, whichever way it is written (plain UPDATE,
 * UPDATE … RETURNING, DELETE, a transaction), or a check would answer from a stale row.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { seedInstances, seedStableChannel, steadyCheckBody } from "../../bench/server/fleet.ts";
import { decodeResponse } from "../../src/omaha/index.ts";
import { buildApp } from "../../src/server/app.ts";
import { openDatabase } from "../../src/server/db/connect.ts";
import { InstanceStatus } from "../../src/server/instance-status.ts";

test("SQLite: a cached steady-state row never outlives a write to it", async () => {
  const dir = mkdtempSync("/var/tmp/server-steady-cache-");
  const db = await openDatabase(join(dir, "slipway.db"));
  const { app } = await buildApp({ db, dataDir: dir, publicUrl: "http://127.0.0.1:1" });
  try {
    const now = Date.now();
    const groupId = await seedStableChannel(db.db, { app: "a", version: "2.0.0", now });
    await seedInstances(db.db, {
      app: "a",
      groupId,
      version: "2.0.0",
      count: 2,
      machine: (i) => `m${i}`,
      now,
    });
    const status = async (m: string) => (await db.hot.instance("a", m))?.status;
    const host = db.db.updateTable("instances").where("app_id", "=", "a");

    assert.equal(await status("m0"), InstanceStatus.Complete);
    await host.set({ status: InstanceStatus.OnHold }).where("machine_id", "=", "m0").execute();
    assert.equal(await status("m0"), InstanceStatus.OnHold, "plain UPDATE");
    await host
      .set({ status: InstanceStatus.Error })
      .where("machine_id", "=", "m0")
      .returning("machine_id")
      .execute();
    assert.equal(await status("m0"), InstanceStatus.Error, "UPDATE … RETURNING");
    await db.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("instances")
        .set({ status: InstanceStatus.Complete })
        .where("machine_id", "=", "m0")
        .execute();
      // Inside the transaction a check sees the committed row, as before the cache.
      assert.equal(await status("m0"), InstanceStatus.Error, "uncommitted row seen");
    });
    assert.equal(await status("m0"), InstanceStatus.Complete, "after COMMIT");
    await db.db.deleteFrom("instances").where("machine_id", "=", "m0").execute();
    assert.equal(await status("m0"), undefined, "DELETE");

    // Through HTTP: a steady host is cached; its row changed behind the check's back (as an
    // admin route or another code path would) makes its next check take the full path, which
    // writes what the host says.
    const check = async () => {
      const res = await app.inject({
        method: "POST",
        url: "/v1/update/",
        headers: { "content-type": "text/xml" },
        payload: steadyCheckBody("a", "2.0.0", "m1"),
      });
      assert.equal(res.statusCode, 200);
      assert.equal(decodeResponse(res.body).apps[0]?.updateCheck?.status, "noupdate");
    };
    const version = async () =>
      (
        await db.db
          .selectFrom("instances")
          .select("version")
          .where("machine_id", "=", "m1")
          .executeTakeFirstOrThrow()
      ).version;
    await check();
    await check();
    await host.set({ version: "1.0.0" }).where("machine_id", "=", "m1").execute();
    await check();
    assert.equal(await version(), "2.0.0", "the check saw the changed row");
  } finally {
    await app.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
