/**
 * Kysely over node:sqlite (built into Node 24): no native addon to install. Kysely's own
 * SQLite driver only needs prepare/all/run/iterate, which StatementSync has with spread
 * parameters; this adapter bridges the calling convention and caches prepared statements.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { type SqliteDatabase, SqliteDialect, type SqliteStatement } from "kysely";

const STATEMENT_CACHE = 256;

function bind(params: ReadonlyArray<unknown>): (null | number | bigint | string | Uint8Array)[] {
  return params.map((p) => {
    if (p === undefined) return null;
    if (typeof p === "boolean") return p ? 1 : 0;
    return p as null | number | bigint | string | Uint8Array;
  });
}

/**
 * Settings of every connection: the database is read through a memory map and a large page
 * cache, because a check reads one row of a possibly large instance table at random.
 */
function tune(raw: DatabaseSync): void {
  raw.exec("PRAGMA busy_timeout = 5000");
  raw.exec("PRAGMA mmap_size = 1073741824");
  raw.exec("PRAGMA cache_size = -65536");
}

/** A second connection that only reads (the update checks' hot path). */
export function openSqliteReader(path: string): DatabaseSync {
  const raw = new DatabaseSync(path);
  tune(raw);
  raw.exec("PRAGMA query_only = ON");
  return raw;
}

/** Statements that never change a row (their `changes` figure is a previous statement's). */
const NO_WRITE = /^\s*(select|begin|commit|rollback|savepoint|release|pragma)\b/i;

/**
 * `onWrite` runs after every statement of this connection that may have changed a row (an
 * INSERT/UPDATE/DELETE that changed at least one, or returned rows, or anything not known to be
 * a pure read): what is cached from the database (hot-queries.ts) is dropped then.
 */
export function openSqlite(
  path: string,
  opts: { onWrite?: () => void } = {},
): { dialect: SqliteDialect; raw: DatabaseSync } {
  const onWrite = opts.onWrite ?? (() => {});
  const raw = new DatabaseSync(path);
  // WAL + NORMAL survives a killed process (not a power cut) without fsync per commit.
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec("PRAGMA synchronous = NORMAL");
  raw.exec("PRAGMA foreign_keys = ON");
  // Checkpoints run on a worker thread (sqlite-background.ts), never in a commit here.
  raw.exec("PRAGMA wal_autocheckpoint = 0");
  tune(raw);
  const cache = new Map<string, { stmt: StatementSync; reader: boolean; writes: boolean }>();
  const database: SqliteDatabase = {
    close: () => raw.close(),
    prepare(query: string): SqliteStatement {
      // Transactions take the write lock at BEGIN: a deferred one that read first could not
      // upgrade (SQLITE_BUSY at once, no waiting) after the background writer committed.
      const sql = query === "begin" ? "begin immediate" : query;
      let entry = cache.get(sql);
      if (!entry) {
        const stmt = raw.prepare(sql);
        entry = { stmt, reader: stmt.columns().length > 0, writes: !NO_WRITE.test(sql) };
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
        cache.set(sql, entry);
      }
      const { stmt: s, reader, writes } = entry;
      return {
        reader,
        all: (params) => {
          const rows = s.all(...bind(params));
          // UPDATE/DELETE … RETURNING: a row back is a row changed.
          if (writes && rows.length > 0) onWrite();
          return rows;
        },
        run: (params) => {
          const r = s.run(...bind(params));
          if (writes && r.changes !== 0) onWrite();
          return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
        },
        iterate: (params) => {
          if (writes) onWrite();
          return s.iterate(...bind(params)) as IterableIterator<unknown>;
        },
      };
    },
  };
  return { dialect: new SqliteDialect({ database }), raw };
}
