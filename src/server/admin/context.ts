/** What admin routes share: the database, the clock, the data dir, the FleetLock store. */
import type {} from "@fastify/swagger";
import type { Kysely } from "kysely";
import type { DbKind } from "../db/connect.ts";
import type { Database } from "../db/schema.ts";
import type { FleetLock } from "../fleetlock.ts";
import type { Clock } from "../policy.ts";

export interface AdminContext {
  db: Kysely<Database>;
  kind: DbKind;
  clock: Clock;
  dataDir: string;
  fleetLock: FleetLock;
}
