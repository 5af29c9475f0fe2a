/**
 * The two statements every steady-state update check needs, outside the query builder: read a
 * host's row and (batched) write its last-check times. They run on every check, so each is
 * prepared once — on SQLite as statements of the open connections, on PostgreSQL as named
 * statements, parsed and planned once per pooled connection.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type pg from "pg";
import type { SqliteBackground } from "./sqlite-background.ts";

/** The columns a steady-state check compares with what the host says. */
export interface InstanceSnapshot {
  /** The database's own copy (a string of the request would keep the whole body alive). */
  machine_id: string;
  version: string;
  track: string;
  group_id: string | null;
  boot_id: string;
  ip: string;
  alias: string;
  oem: string;
  oem_version: string;
  status: string;
}

export interface HotQueries {
  instance(appId: string, machineId: string): Promise<Readonly<InstanceSnapshot> | undefined>;
  /** The host's row if it is at hand in memory (SQLite only), without a query. */
  cached?(appId: string, machineId: string): Readonly<InstanceSnapshot> | undefined;
  /** Set last_check_at = at for these hosts of one app (never moves it backwards). */
  touch(appId: string, machineIds: string[], at: number): Promise<void>;
}

/** At most this many hosts' rows are kept (~150 bytes each); past it the cache starts over. */
const MAX_SNAPSHOTS = 500_000;

/**
 * The steady-state rows of the hosts that checked, in memory: on SQLite this process is the
 * only writer, and every statement of its connection that may change a row empties the cache
 * (sqlite-dialect.ts `onWrite`), so a cached row is always the committed one. The background
 * worker writes only last_check_at, which is not cached. A check in the steady state then costs
 * a map lookup instead of a B-tree read (~11 µs). Values repeated across hosts (version, track,
 * group, IP, OEM, status) are shared, so 100,000 hosts take ~15 MB.
 */
class SnapshotCache {
  #byApp = new Map<string, Map<string, Readonly<InstanceSnapshot>>>();
  #size = 0;
  #shared = new Map<string, string>();

  get(appId: string, machineId: string): Readonly<InstanceSnapshot> | undefined {
    return this.#byApp.get(appId)?.get(machineId);
  }

  add(appId: string, row: InstanceSnapshot): Readonly<InstanceSnapshot> {
    if (this.#size >= MAX_SNAPSHOTS) this.clear();
    let byMachine = this.#byApp.get(appId);
    if (!byMachine) {
      byMachine = new Map();
      this.#byApp.set(appId, byMachine);
    }
    const snapshot: Readonly<InstanceSnapshot> = {
      machine_id: row.machine_id,
      version: this.#share(row.version),
      track: this.#share(row.track),
      group_id: row.group_id === null ? null : this.#share(row.group_id),
      boot_id: row.boot_id,
      ip: this.#share(row.ip),
      alias: this.#share(row.alias),
      oem: this.#share(row.oem),
      oem_version: this.#share(row.oem_version),
      status: this.#share(row.status),
    };
    byMachine.set(row.machine_id, snapshot);
    this.#size++;
    return snapshot;
  }

  #share(value: string): string {
    const known = this.#shared.get(value);
    if (known !== undefined) return known;
    if (this.#shared.size >= 10_000) this.#shared.clear();
    this.#shared.set(value, value);
    return value;
  }

  clear(): void {
    if (this.#size === 0) return;
    this.#byApp = new Map();
    this.#size = 0;
  }
}

/**
 * Reads go to the writer's own connection when it has no transaction open (node:sqlite is
 * synchronous, so nothing can start one mid-read): its page cache stays valid across its own
 * writes, where a second connection drops its cache after every write of the other (measured:
 * 11 µs per read vs 21 µs with a write every 100 reads). While the query builder holds a
 * transaction open across awaits, reads go to the read-only connection, which sees only
 * committed rows, and are not cached (the transaction's writes empty the cache only as they
 * run). Last-check writes go to the background worker (sqlite-background.ts).
 * `forget` must run after every write of the writer connection that may change a row.
 */
export function sqliteHotQueries(
  reader: DatabaseSync,
  writer: DatabaseSync,
  background: Pick<SqliteBackground, "touch">,
): HotQueries & { forget(): void } {
  const SELECT = `SELECT machine_id, version, track, group_id, boot_id, ip, alias, oem, oem_version, status
       FROM instances WHERE app_id = ? AND machine_id = ?`;
  const selectCommitted: StatementSync = reader.prepare(SELECT);
  const selectOwn: StatementSync = writer.prepare(SELECT);
  const cache = new SnapshotCache();
  return {
    async instance(appId, machineId) {
      const cached = cache.get(appId, machineId);
      if (cached) return cached;
      if (writer.isTransaction)
        return selectCommitted.get(appId, machineId) as InstanceSnapshot | undefined;
      const row = selectOwn.get(appId, machineId) as InstanceSnapshot | undefined;
      return row && cache.add(appId, row);
    },
    cached: (appId, machineId) => cache.get(appId, machineId),
    touch: (appId, machineIds, at) => background.touch(appId, machineIds, at),
    forget: () => cache.clear(),
  };
}

/**
 * On PostgreSQL a check's cost is mostly the round trip (two socket writes and a wake-up of
 * the backend), so the lookups of all checks that arrive in the same event-loop turn go to the
 * server as one `= ANY($2)` query. A lone check waits for nothing but that turn.
 */
export function postgresHotQueries(pool: pg.Pool): HotQueries {
  type Waiter = { resolve(row: InstanceSnapshot | undefined): void; reject(err: unknown): void };
  let pending = new Map<string, Map<string, Waiter[]>>();
  let scheduled = false;

  const lookup = async (appId: string, byMachine: Map<string, Waiter[]>) => {
    const machines = [...byMachine.keys()];
    try {
      const r = await pool.query<InstanceSnapshot & { machine_id: string }>({
        name: "slipway_instance_snapshots",
        text: `SELECT machine_id, version, track, group_id, boot_id, ip, alias, oem, oem_version, status
                 FROM instances WHERE app_id = $1 AND machine_id = ANY($2::text[])`,
        values: [appId, machines],
      });
      const found = new Map(r.rows.map((row) => [row.machine_id, row]));
      for (const [machine, waiters] of byMachine)
        for (const w of waiters) w.resolve(found.get(machine));
    } catch (err) {
      for (const waiters of byMachine.values()) for (const w of waiters) w.reject(err);
    }
  };
  const run = () => {
    const batch = pending;
    pending = new Map();
    scheduled = false;
    for (const [appId, byMachine] of batch) void lookup(appId, byMachine);
  };

  return {
    instance(appId, machineId) {
      return new Promise((resolve, reject) => {
        let byMachine = pending.get(appId);
        if (!byMachine) {
          byMachine = new Map();
          pending.set(appId, byMachine);
        }
        const waiters = byMachine.get(machineId);
        if (waiters) waiters.push({ resolve, reject });
        else byMachine.set(machineId, [{ resolve, reject }]);
        if (!scheduled) {
          scheduled = true;
          setImmediate(run);
        }
      });
    },
    async touch(appId, machineIds, at) {
      await pool.query({
        name: "slipway_instance_touch",
        text: `UPDATE instances SET last_check_at = $1
                 WHERE app_id = $2 AND machine_id = ANY($3::text[]) AND last_check_at < $1`,
        values: [at, appId, machineIds],
      });
    },
  };
}
