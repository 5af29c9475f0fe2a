/**
 * Start `slipway serve`: open (and migrate) the database, make the first admin token on first
 * start, listen, and run the periodic jobs (update timeouts, retention).
 */
import { chmod, mkdir, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { buildApp } from "./app.ts";
import { createToken, hasTokens } from "./auth.ts";
import { type Db, openDatabase } from "./db/connect.ts";
import { expireTimedOut } from "./omaha-service.ts";
import { type Clock, systemClock } from "./policy.ts";
import { pruneOld, type RetentionPolicy } from "./retention.ts";

export interface ServeOptions {
  dataDir: string;
  /** postgres://… URL, or a SQLite file path (default <dataDir>/slipway.db). */
  database?: string;
  host: string;
  port: number;
  publicUrl?: string;
  secretPath?: string;
  pollIntervalS?: number;
  fleetLockSlots?: number;
  rateLimitPerMinute?: number;
  retention?: RetentionPolicy;
  logLevel?: string;
  clock?: Clock;
}

export interface RunningServer {
  url: string;
  port: number;
  db: Db;
  /** Set only on the first start: the initial admin token (also in <dataDir>/admin-token). */
  initialToken?: string;
  close(): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const clock = o.clock ?? systemClock;
  // Absolute: the package file server refuses a relative root (`--data data` failed).
  const dataDir = resolve(o.dataDir);
  await mkdir(join(dataDir, "packages"), { recursive: true });
  const db = await openDatabase(o.database ?? join(dataDir, "slipway.db"));
  let initialToken: string | undefined;
  if (!(await hasTokens(db.db))) {
    initialToken = (await createToken(db.db, "initial-admin", "admin", clock())).token;
    const file = join(dataDir, "admin-token");
    await writeFile(`${file}.tmp`, `${initialToken}\n`, { mode: 0o600 });
    await chmod(`${file}.tmp`, 0o600);
    await rename(`${file}.tmp`, file);
  }
  let boundUrl = "";
  const { app } = await buildApp({
    db,
    dataDir,
    publicUrl: o.publicUrl ?? (() => boundUrl),
    clock,
    secretPath: o.secretPath,
    pollIntervalS: o.pollIntervalS,
    fleetLockSlots: o.fleetLockSlots,
    rateLimitPerMinute: o.rateLimitPerMinute,
    logger: o.logLevel ? { level: o.logLevel } : false,
  });
  await app.listen({ host: o.host, port: o.port });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;
  const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;
  boundUrl = url;

  const sweepTimeouts = async () => {
    const groups = await db.db
      .selectFrom("groups")
      .selectAll()
      .where("update_timeout_s", ">", 0)
      .execute();
    for (const g of groups) await expireTimedOut(db.db, g, clock());
  };
  const retention = o.retention;
  const jobs = [
    setInterval(
      () => sweepTimeouts().catch((err) => app.log.error({ err }, "timeout sweep failed")),
      30_000,
    ),
    ...(retention
      ? [
          setInterval(
            () =>
              pruneOld(db.db, clock(), retention)
                .then((n) => app.log.info({ pruned: n }, "retention"))
                .catch((err) => app.log.error({ err }, "retention failed")),
            3_600_000,
          ),
        ]
      : []),
  ];
  for (const j of jobs) j.unref();

  return {
    url,
    port,
    db,
    initialToken,
    async close() {
      for (const j of jobs) clearInterval(j);
      await app.close();
      await db.close();
    },
  };
}
