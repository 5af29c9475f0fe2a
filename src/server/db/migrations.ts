/**
 * Schema migrations, run on every start (idempotent). Kysely's Migrator records applied
 * steps and takes a lock, so several replicas starting at once on PostgreSQL are safe.
 * Add new steps at the end; never edit a step that has shipped.
 */
import type { ColumnDefinitionBuilder, Kysely } from "kysely";
import { type Migration, Migrator } from "kysely/migration";
import type { DbKind } from "./connect.ts";

function steps(kind: DbKind): Record<string, Migration> {
  const serialId = kind === "postgres" ? "bigserial" : "integer";
  const idColumn = (c: ColumnDefinitionBuilder) =>
    kind === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement();
  return {
    "0001-initial": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("applications")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("description", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("packages")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("app_id", "text", (c) =>
            c.notNull().references("applications.id").onDelete("cascade"),
          )
          .addColumn("version", "text", (c) => c.notNull())
          .addColumn("filename", "text", (c) => c.notNull())
          .addColumn("base_url", "text")
          .addColumn("size", "bigint", (c) => c.notNull())
          .addColumn("sha256", "text", (c) => c.notNull())
          .addColumn("sha1", "text", (c) => c.notNull())
          .addColumn("signature", "text")
          .addColumn("metadata_size", "bigint")
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addUniqueConstraint("packages_app_version", ["app_id", "version"])
          .execute();
        await db.schema
          .createTable("channels")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("app_id", "text", (c) =>
            c.notNull().references("applications.id").onDelete("cascade"),
          )
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("package_id", "text", (c) => c.references("packages.id").onDelete("set null"))
          .addColumn("allow_downgrade", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addUniqueConstraint("channels_app_name", ["app_id", "name"])
          .execute();
        for (const table of ["channel_floors", "channel_blacklist"]) {
          await db.schema
            .createTable(table)
            .addColumn("channel_id", "text", (c) =>
              c.notNull().references("channels.id").onDelete("cascade"),
            )
            .addColumn("package_id", "text", (c) =>
              c.notNull().references("packages.id").onDelete("cascade"),
            )
            .addPrimaryKeyConstraint(`${table}_pk`, ["channel_id", "package_id"])
            .execute();
        }
        await db.schema
          .createTable("groups")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("app_id", "text", (c) =>
            c.notNull().references("applications.id").onDelete("cascade"),
          )
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("track", "text", (c) => c.notNull())
          .addColumn("channel_id", "text", (c) => c.references("channels.id").onDelete("set null"))
          .addColumn("updates_enabled", "integer", (c) => c.notNull().defaultTo(1))
          .addColumn("safe_mode", "integer", (c) => c.notNull().defaultTo(1))
          .addColumn("max_updates_per_period", "integer", (c) => c.notNull().defaultTo(1))
          .addColumn("period_interval_s", "integer", (c) => c.notNull().defaultTo(3600))
          .addColumn("update_timeout_s", "integer", (c) => c.notNull().defaultTo(3600))
          .addColumn("office_hours", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("timezone", "text", (c) => c.notNull().defaultTo("UTC"))
          .addColumn("office_start_min", "integer", (c) => c.notNull().defaultTo(540))
          .addColumn("office_end_min", "integer", (c) => c.notNull().defaultTo(1020))
          .addColumn("halted_reason", "text")
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addUniqueConstraint("groups_app_track", ["app_id", "track"])
          .execute();
        await db.schema
          .createTable("instances")
          .addColumn("app_id", "text", (c) =>
            c.notNull().references("applications.id").onDelete("cascade"),
          )
          .addColumn("machine_id", "text", (c) => c.notNull())
          .addColumn("alias", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("ip", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("oem", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("oem_version", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("version", "text", (c) => c.notNull())
          .addColumn("track", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("group_id", "text", (c) => c.references("groups.id").onDelete("set null"))
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("boot_id", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("version_before_update", "text")
          .addColumn("update_version", "text")
          .addColumn("update_granted_at", "bigint")
          .addColumn("error_code", "bigint")
          .addColumn("last_check_at", "bigint", (c) => c.notNull())
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addPrimaryKeyConstraint("instances_pk", ["app_id", "machine_id"])
          .execute();
        await db.schema
          .createIndex("instances_group_status")
          .on("instances")
          .columns(["group_id", "status"])
          .execute();
        await db.schema
          .createIndex("instances_group_granted")
          .on("instances")
          .columns(["group_id", "update_granted_at"])
          .execute();
        await db.schema
          .createIndex("instances_last_check")
          .on("instances")
          .column("last_check_at")
          .execute();
        await db.schema
          .createTable("events")
          .addColumn("id", serialId, idColumn)
          .addColumn("app_id", "text", (c) => c.notNull())
          .addColumn("machine_id", "text", (c) => c.notNull())
          .addColumn("group_id", "text")
          .addColumn("type", "integer", (c) => c.notNull())
          .addColumn("result", "integer", (c) => c.notNull())
          .addColumn("error_code", "bigint")
          .addColumn("version", "text", (c) => c.notNull())
          .addColumn("previous_version", "text")
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .execute();
        await db.schema.createIndex("events_created").on("events").column("created_at").execute();
        await db.schema
          .createIndex("events_instance")
          .on("events")
          .columns(["app_id", "machine_id", "created_at"])
          .execute();
        await db.schema
          .createTable("activity")
          .addColumn("id", serialId, idColumn)
          .addColumn("app_id", "text")
          .addColumn("group_id", "text")
          .addColumn("channel_id", "text")
          .addColumn("severity", "text", (c) => c.notNull())
          .addColumn("class", "text", (c) => c.notNull())
          .addColumn("version", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("message", "text", (c) => c.notNull())
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("activity_created")
          .on("activity")
          .column("created_at")
          .execute();
        await db.schema
          .createTable("tokens")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("scope", "text", (c) => c.notNull())
          .addColumn("token_hash", "text", (c) => c.notNull().unique())
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addColumn("last_used_at", "bigint")
          .execute();
        await db.schema
          .createTable("lock_groups")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("max_slots", "integer", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("lock_holders")
          .addColumn("group_name", "text", (c) => c.notNull())
          .addColumn("holder_id", "text", (c) => c.notNull())
          .addColumn("acquired_at", "bigint", (c) => c.notNull())
          .addPrimaryKeyConstraint("lock_holders_pk", ["group_name", "holder_id"])
          .execute();
      },
    },
    "0002-no-last-check-index": {
      // Every update check moves last_check_at; an index on it made each of those writes an
      // index update too. Only retention filters on it, rarely, and a scan is fine there.
      async up(db: Kysely<unknown>) {
        await db.schema.dropIndex("instances_last_check").execute();
      },
    },
    "0003-package-deltas": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("package_deltas")
          .addColumn("package_id", "text", (c) =>
            c.notNull().references("packages.id").onDelete("cascade"),
          )
          .addColumn("from_version", "text", (c) => c.notNull())
          .addColumn("filename", "text", (c) => c.notNull())
          .addColumn("base_url", "text")
          .addColumn("size", "bigint", (c) => c.notNull())
          .addColumn("sha256", "text", (c) => c.notNull())
          .addColumn("sha1", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addPrimaryKeyConstraint("package_deltas_pk", ["package_id", "from_version"])
          .execute();
      },
    },
    "0004-grant-is-delta": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable("instances")
          .addColumn("update_is_delta", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    "0005-lock-log": {
      // Every take and release of a reboot slot, so that "never two reboots at once" can be
      // checked afterwards (lock_holders only knows who holds a slot now).
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("lock_log")
          .addColumn("id", serialId, idColumn)
          .addColumn("group_name", "text", (c) => c.notNull())
          .addColumn("holder_id", "text", (c) => c.notNull())
          .addColumn("action", "text", (c) => c.notNull())
          .addColumn("at", "bigint", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("lock_log_group")
          .on("lock_log")
          .columns(["group_name", "id"])
          .execute();
      },
    },
  };
}

export async function migrate<T>(db: Kysely<T>, kind: DbKind): Promise<void> {
  const all = steps(kind);
  const migrator = new Migrator({
    db: db as Kysely<unknown>,
    provider: { getMigrations: async () => all },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "?";
    throw new Error(`database migration ${failed} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
