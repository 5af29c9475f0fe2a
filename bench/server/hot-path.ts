/**
 * CPU per steady-state update check without HTTP: decode the request, run the Omaha service,
 * encode the answer, for random known hosts, with the last-check writes and checkpoints that
 * follow (SQLite's worker thread included: process.cpuUsage covers every thread). This is the
 * part of a check the no-op server does not do, and CPU time is much less disturbed by other
 * load on the machine than throughput.
 *
 *   node bench/server/hot-path.ts [--instances 100000] [--checks 200000] [--concurrency 32]
 *        [--backend sqlite|postgres]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { decodeRequest, encodeResponse } from "../../src/omaha/index.ts";
import { buildApp } from "../../src/server/app.ts";
import { openDatabase } from "../../src/server/db/connect.ts";
import { createDatabase, startPostgres } from "../../test/server/pg-harness.ts";
import { seedInstances, seedStableChannel, steadyCheckBody } from "./fleet.ts";

const { values: args } = parseArgs({
  options: {
    instances: { type: "string", default: "100000" },
    checks: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "32" },
    backend: { type: "string", default: "sqlite" },
  },
});
const INSTANCES = Number(args.instances);
const CHECKS = Number(args.checks);
const CONCURRENCY = Number(args.concurrency);
const APP = "bench-app";
const VERSION = "2.0.0";
const machine = (i: number) => `bench-${String(i).padStart(7, "0")}`;

const dir = mkdtempSync("/var/tmp/server-hotpath-");
const pg = args.backend === "postgres" ? await startPostgres() : undefined;
try {
  const database = pg ? await createDatabase(pg.url, "hot") : join(dir, "slipway.db");
  const db = await openDatabase(database);
  const { app, omaha } = await buildApp({ db, dataDir: dir, publicUrl: "http://127.0.0.1:1" });
  const now = Date.now();
  const groupId = await seedStableChannel(db.db, { app: APP, version: VERSION, now });
  await seedInstances(db.db, {
    app: APP,
    groupId,
    version: VERSION,
    count: INSTANCES,
    machine: machine,
    now: now,
  });
  const bodies = Array.from({ length: INSTANCES }, (_, i) =>
    steadyCheckBody(APP, VERSION, machine(i)),
  )
    // Flat strings, as a body decoded from a socket is (a concatenated one is a rope).
    .map((s) => Buffer.from(s).toString())
    .sort(() => Math.random() - 0.5);
  let next = 0;
  let noupdate = 0;
  const run = async (n: number) => {
    const worker = async () => {
      while (next < n) {
        const body = bodies[next++ % bodies.length]!;
        const req = decodeRequest(body);
        const ctx = { ip: "127.0.0.1" };
        // As the HTTP handler does (app.ts).
        const xml = encodeResponse(omaha.steadyAnswer(req, ctx) ?? (await omaha.handle(req, ctx)));
        if (xml.includes('status="noupdate"')) noupdate++;
        // Let timers (the last-check flush) run, as between requests of a real server.
        await new Promise((r) => setImmediate(r));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };
  await run(Math.min(20_000, CHECKS)); // warm-up: JIT, page cache
  next = 0;
  noupdate = 0;
  const cpu0 = process.cpuUsage();
  const main0 = process.threadCpuUsage();
  const t0 = performance.now();
  await run(CHECKS);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const main = process.threadCpuUsage(main0);
  if (noupdate !== CHECKS) throw new Error(`${CHECKS - noupdate} checks did not answer noupdate`);
  process.stdout.write(
    `${args.backend}: ${CHECKS} checks, ${INSTANCES} instances: ${((cpu.user + cpu.system) / CHECKS) | 0} µs CPU per check (serving thread ${((main.user + main.system) / CHECKS) | 0}, other threads ${((cpu.user + cpu.system - main.user - main.system) / CHECKS) | 0}), ${Math.round((CHECKS / wall) * 1000)} checks/s in one thread\n`,
  );
  await app.close(); // hands the last batch of last-check times over
  await db.close(); // SQLite: the background worker writes what it still holds
  const check = await openDatabase(database);
  const touched = await check.db
    .selectFrom("instances")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("last_check_at", ">", now)
    .executeTakeFirstOrThrow();
  await check.close();
  const expected = Math.min(INSTANCES, CHECKS + Math.min(20_000, CHECKS));
  if (Number(touched.n) < Math.min(INSTANCES, CHECKS))
    throw new Error(`last-check time written for ${touched.n} hosts, expected ~${expected}`);
} finally {
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
}
