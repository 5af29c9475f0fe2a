/**
 * FleetLock (Zincati's reboot-lock protocol) on the service database: per group a
 * semaphore with a configurable number of slots. Holders are recorded and stay until they
 * release (steady-state) or an admin frees the slot; nothing expires silently. Every take and
 * release also goes into the lock log, in the same transaction, so an operator (or a test) can
 * check afterwards that no more hosts than slots rebooted at once.
 */
import type { Kysely } from "kysely";
import type { DbKind } from "./db/connect.ts";
import type { Database } from "./db/schema.ts";

export const FLEETLOCK_GROUP = /^[a-zA-Z0-9.-]+$/;
const MAX_ID = 256;

export interface FleetLockError {
  status: number;
  kind: string;
  value: string;
}

export interface ClientParams {
  id: string;
  group: string;
}

/** Validate the `{"client_params":{"id","group"}}` body; returns an error for bad input. */
export function parseClientParams(body: unknown): ClientParams | FleetLockError {
  const params = (body as { client_params?: unknown } | null)?.client_params as
    | { id?: unknown; group?: unknown }
    | undefined;
  if (!params || typeof params !== "object") {
    return {
      status: 400,
      kind: "bad_request",
      value: 'body must be {"client_params":{"id":…,"group":…}}',
    };
  }
  const { id, group } = params;
  if (typeof id !== "string" || id === "" || id.length > MAX_ID) {
    return {
      status: 400,
      kind: "bad_request",
      value: "client_params.id must be a non-empty string",
    };
  }
  if (typeof group !== "string" || !FLEETLOCK_GROUP.test(group) || group.length > MAX_ID) {
    return {
      status: 400,
      kind: "bad_request",
      value: `client_params.group must match ${FLEETLOCK_GROUP.source}`,
    };
  }
  return { id, group };
}

export type LockAction = "acquired" | "released" | "freed";

export interface LockLogEntry {
  /** Increasing in the order the database committed the changes. */
  seq: number;
  group: string;
  id: string;
  action: LockAction;
  at: number;
}

export class FleetLock {
  readonly #db: Kysely<Database>;
  readonly #kind: DbKind;
  readonly #defaultSlots: number;

  constructor(db: Kysely<Database>, kind: DbKind, defaultSlots = 1) {
    this.#db = db;
    this.#kind = kind;
    this.#defaultSlots = defaultSlots;
  }

  /** Take a slot for `id` in `group`; taking it again while holding it succeeds. */
  async acquire(p: ClientParams, now: number): Promise<FleetLockError | null> {
    return this.#db.transaction().execute(async (trx) => {
      await trx
        .insertInto("lock_groups")
        .values({ name: p.group, max_slots: this.#defaultSlots })
        .onConflict((oc) => oc.column("name").doNothing())
        .execute();
      let q = trx.selectFrom("lock_groups").select("max_slots").where("name", "=", p.group);
      if (this.#kind === "postgres") q = q.forUpdate();
      const { max_slots } = await q.executeTakeFirstOrThrow();
      const holders = await trx
        .selectFrom("lock_holders")
        .select("holder_id")
        .where("group_name", "=", p.group)
        .execute();
      if (holders.some((h) => h.holder_id === p.id)) return null;
      if (holders.length >= max_slots) {
        return {
          status: 409,
          kind: "failed_lock",
          value: `all ${max_slots} slot(s) of group ${p.group} are held (by ${holders.map((h) => h.holder_id).join(", ")})`,
        };
      }
      await trx
        .insertInto("lock_holders")
        .values({ group_name: p.group, holder_id: p.id, acquired_at: now })
        .execute();
      await trx
        .insertInto("lock_log")
        .values({ group_name: p.group, holder_id: p.id, action: "acquired", at: now })
        .execute();
      return null;
    });
  }

  /** Release the slot of `id`; releasing a slot one does not hold succeeds too. */
  async release(p: ClientParams, now: number): Promise<void> {
    await this.#remove(p.group, p.id, "released", now);
  }

  /** Delete a holder and log it, atomically; returns whether it held a slot. */
  async #remove(group: string, id: string, action: LockAction, now: number): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const r = await trx
        .deleteFrom("lock_holders")
        .where("group_name", "=", group)
        .where("holder_id", "=", id)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await trx
        .insertInto("lock_log")
        .values({ group_name: group, holder_id: id, action, at: now })
        .execute();
      return true;
    });
  }

  /** The takes and releases of `group`, oldest first, after sequence number `after`. */
  async log(group: string, after = 0, limit = 1000): Promise<LockLogEntry[]> {
    const rows = await this.#db
      .selectFrom("lock_log")
      .selectAll()
      .where("group_name", "=", group)
      .where("id", ">", after)
      .orderBy("id")
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      seq: Number(r.id),
      group: r.group_name,
      id: r.holder_id,
      action: r.action,
      at: Number(r.at),
    }));
  }

  async groups(): Promise<
    { name: string; maxSlots: number; holders: { id: string; acquiredAt: number }[] }[]
  > {
    const groups = await this.#db.selectFrom("lock_groups").selectAll().orderBy("name").execute();
    const holders = await this.#db
      .selectFrom("lock_holders")
      .selectAll()
      .orderBy("acquired_at")
      .execute();
    return groups.map((g) => ({
      name: g.name,
      maxSlots: g.max_slots,
      holders: holders
        .filter((h) => h.group_name === g.name)
        .map((h) => ({ id: h.holder_id, acquiredAt: Number(h.acquired_at) })),
    }));
  }

  async setMaxSlots(group: string, max: number): Promise<void> {
    await this.#db
      .insertInto("lock_groups")
      .values({ name: group, max_slots: max })
      .onConflict((oc) => oc.column("name").doUpdateSet({ max_slots: max }))
      .execute();
  }

  /** Admin action: free a slot a host never released. Returns whether it was held. */
  async free(group: string, id: string, now: number): Promise<boolean> {
    return this.#remove(group, id, "freed", now);
  }
}
