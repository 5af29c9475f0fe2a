/**
 * Open the service database: a SQLite file by default, PostgreSQL when given a
 * postgres:// URL (several server replicas share it). Migrations run before use.
 */
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { type HotQueries, postgresHotQueries, sqliteHotQueries } from "./hot-queries.ts";
import { migrate } from "./migrations.ts";
import type { Database } from "./schema.ts";
import { startSqliteBackground } from "./sqlite-background.ts";
import { openSqlite, openSqliteReader } from "./sqlite-dialect.ts";

export type DbKind = "sqlite" | "postgres";

export interface Db {
  db: Kysely<Database>;
  kind: DbKind;
  /** Prepared statements of the update check's steady state. */
  hot: HotQueries;
  close(): Promise<void>;
}

// int8 (count(*), bigint columns) as JS numbers: our values (ms timestamps, counts) fit.
pg.types.setTypeParser(20, (v) => Number(v));

export function isPostgresUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//.test(target);
}

export async function openDatabase(target: string, opts: { poolSize?: number } = {}): Promise<Db> {
  if (isPostgresUrl(target)) {
    const pool = new pg.Pool({ connectionString: target, max: opts.poolSize ?? 10 });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    await migrateOrClose(db, "postgres");
    return { db, kind: "postgres", hot: postgresHotQueries(pool), close: () => db.destroy() };
  }
  // Every write of the serving connection drops the cached steady-state rows (hot-queries.ts).
  let forget = () => {};
  const { dialect, raw } = openSqlite(target, { onWrite: () => forget() });
  const db = new Kysely<Database>({ dialect });
  await migrateOrClose(db, "sqlite");
  const reader = openSqliteReader(target);
  const background = startSqliteBackground(target, {
    onError: (message) => process.emitWarning(`SQLite background writer of ${target}: ${message}`),
  });
  const hot = sqliteHotQueries(reader, raw, background);
  forget = hot.forget;
  return {
    db,
    kind: "sqlite",
    hot,
    close: async () => {
      await background.stop();
      reader.close();
      await db.destroy();
    },
  };
}

async function migrateOrClose(db: Kysely<Database>, kind: DbKind): Promise<void> {
  try {
    await migrate(db, kind);
  } catch (err) {
    await db.destroy();
    throw err;
  }
}
