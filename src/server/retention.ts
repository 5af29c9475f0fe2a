/** Retention: forget instances not seen for N days and events/activity older than M days. */
import type { Kysely } from "kysely";
import type { Database } from "./db/schema.ts";

export interface RetentionPolicy {
  instanceDays: number;
  eventDays: number;
}

const DAY_MS = 86_400_000;

export async function pruneOld(
  db: Kysely<Database>,
  now: number,
  p: RetentionPolicy,
): Promise<{ instances: number; events: number; activity: number }> {
  const inst = await db
    .deleteFrom("instances")
    .where("last_check_at", "<", now - p.instanceDays * DAY_MS)
    .executeTakeFirst();
  const ev = await db
    .deleteFrom("events")
    .where("created_at", "<", now - p.eventDays * DAY_MS)
    .executeTakeFirst();
  const act = await db
    .deleteFrom("activity")
    .where("created_at", "<", now - p.eventDays * DAY_MS)
    .executeTakeFirst();
  return {
    instances: Number(inst.numDeletedRows),
    events: Number(ev.numDeletedRows),
    activity: Number(act.numDeletedRows),
  };
}
