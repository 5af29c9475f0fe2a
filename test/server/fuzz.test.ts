/**
 * 10,000 mutated Omaha bodies through the whole server (routing, body parser, codec,
 * service, database): never a 5xx, a 400 exactly when the codec refuses the body, and no
 * row from a refused request.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { decodeRequest, encodeRequest } from "../../src/omaha/index.ts";
import { buildApp } from "../../src/server/app.ts";
import { openDatabase } from "../../src/server/db/connect.ts";

test("10,000 fuzzed XML bodies: 4xx or an Omaha answer, never a crash or a stray write", async () => {
  const dir = mkdtempSync("/var/tmp/server-fuzz-");
  const db = await openDatabase(join(dir, "slipway.db"));
  const { app } = await buildApp({ db, dataDir: dir, publicUrl: "http://127.0.0.1:1" });
  try {
    const now = Date.now();
    await db.db
      .insertInto("applications")
      .values({ id: "fuzz", name: "fuzz", description: "", created_at: now })
      .execute();
    let seed = 4242;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = `<>/="'&;! ?x0-9\n[]#%`;
    const accepted = new Set<string>();
    const statuses = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const base = encodeRequest({
        protocol: "3.0",
        installSource: "scheduler",
        apps: [
          {
            appId: "fuzz",
            version: "1.0.0",
            track: "stable",
            machineId: `fz-${i}`,
            ping: { active: 1 },
            updateCheck: {},
            events: [{ type: 3, result: 2, previousVersion: "0.9.0" }],
          },
        ],
      });
      const chars = base.split("");
      for (let e = 1 + rand(4); e > 0; e--) {
        const pos = rand(chars.length);
        const op = rand(3);
        if (op === 0) chars.splice(pos, 1 + rand(8));
        else if (op === 1) chars.splice(pos, 0, alphabet[rand(alphabet.length)]!);
        else chars[pos] = alphabet[rand(alphabet.length)]!;
      }
      const body = chars.join("");
      let decodes = true;
      try {
        for (const a of decodeRequest(body).apps) if (a.machineId) accepted.add(a.machineId);
      } catch {
        decodes = false;
      }
      const res = await app.inject({
        method: "POST",
        url: "/v1/update/",
        headers: { "content-type": "text/xml" },
        payload: body,
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      assert.ok(res.statusCode < 500, `iteration ${i}: HTTP ${res.statusCode}`);
      assert.equal(res.statusCode, decodes ? 200 : 400, `iteration ${i}`);
    }
    assert.ok(
      (statuses.get(400) ?? 0) > 1000 && (statuses.get(200) ?? 0) > 100,
      JSON.stringify([...statuses]),
    );
    const instances = await db.db.selectFrom("instances").select("machine_id").execute();
    const events = await db.db.selectFrom("events").select("machine_id").execute();
    for (const r of [...instances, ...events])
      assert.ok(accepted.has(r.machine_id), `stray row for ${r.machine_id}`);
  } finally {
    await app.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
