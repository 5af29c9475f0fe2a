/** The activity log: what happened to rollouts, with a severity, for people and the dashboard. */
import type { Kysely } from "kysely";
import type { ActivityTable, Database } from "./db/schema.ts";

export type Severity = ActivityTable["severity"];

export async function logActivity(
  db: Kysely<Database>,
  now: number,
  a: {
    severity: Severity;
    class: string;
    message: string;
    appId?: string | null;
    groupId?: string | null;
    channelId?: string | null;
    version?: string;
  },
): Promise<void> {
  await db
    .insertInto("activity")
    .values({
      app_id: a.appId ?? null,
      group_id: a.groupId ?? null,
      channel_id: a.channelId ?? null,
      severity: a.severity,
      class: a.class,
      version: a.version ?? "",
      message: a.message,
      created_at: now,
    })
    .execute();
}
