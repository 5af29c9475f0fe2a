/**
 * Open the service database: a SQLite file by default, PostgreSQL when given a
 * postgres:// URL (several server replicas share it). Migrations run before use.
 */
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { migrate } from "./migrations.ts";
import type { Database } from "./schema.ts";
import { openSqlite } from "./sqlite-dialect.ts";

export type DbKind = "sqlite" | "postgres";

export interface Db {
  db: Kysely<Database>;
  kind: DbKind;
  close(): Promise<void>;
}

// int8 (count(*), bigint columns) as JS numbers: our values (ms timestamps, counts) fit.
pg.types.setTypeParser(20, (v) => Number(v));

export function isPostgresUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//.test(target);
}

export async function openDatabase(target: string, opts: { poolSize?: number } = {}): Promise<Db> {
  let db: Kysely<Database>;
  let kind: DbKind;
  if (isPostgresUrl(target)) {
    kind = "postgres";
    const pool = new pg.Pool({ connectionString: target, max: opts.poolSize ?? 10 });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  } else {
    kind = "sqlite";
    db = new Kysely<Database>({ dialect: openSqlite(target).dialect });
  }
  try {
    await migrate(db, kind);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return { db, kind, close: () => db.destroy() };
}
