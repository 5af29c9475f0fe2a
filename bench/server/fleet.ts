/** The benches' fleet: steady-state hosts already complete on the channel's version, and what they send. */
import type { Kysely } from "kysely";
import { encodeRequest } from "../../src/omaha/index.ts";
import type { Database } from "../../src/server/db/schema.ts";
import { InstanceStatus } from "../../src/server/instance-status.ts";

/**
 * One app whose "stable" group follows a "stable" channel on `version` (a package with a
 * placeholder payload); returns the group's id. Plain inserts: configuring it through the
 * admin routes would need a token, and the rows are few.
 */
export async function seedStableChannel(
  db: Kysely<Database>,
  o: { app: string; version: string; now: number },
): Promise<string> {
  const packageId = crypto.randomUUID();
  const channelId = crypto.randomUUID();
  const groupId = crypto.randomUUID();
  await db
    .insertInto("applications")
    .values({ id: o.app, name: o.app, description: "", created_at: o.now })
    .execute();
  await db
    .insertInto("packages")
    .values({
      id: packageId,
      app_id: o.app,
      version: o.version,
      base_url: `https://updates.example/${o.app}/`,
      filename: "update.payload",
      size: 1000,
      sha256: "0".repeat(64),
      sha1: "",
      created_at: o.now,
    } as never)
    .execute();
  await db
    .insertInto("channels")
    .values({
      id: channelId,
      app_id: o.app,
      name: "stable",
      package_id: packageId,
      created_at: o.now,
    } as never)
    .execute();
  await db
    .insertInto("groups")
    .values({
      id: groupId,
      app_id: o.app,
      name: "stable",
      track: "stable",
      channel_id: channelId,
      created_at: o.now,
    } as never)
    .execute();
  return groupId;
}

/** Insert `count` hosts of `app` in `groupId`, on `version` and complete, 1,000 per statement. */
export async function seedInstances(
  db: Kysely<Database>,
  o: {
    app: string;
    groupId: string;
    version: string;
    count: number;
    machine: (i: number) => string;
    now: number;
  },
): Promise<void> {
  for (let start = 0; start < o.count; start += 1000) {
    const rows = [];
    for (let i = start; i < Math.min(o.count, start + 1000); i++) {
      rows.push({
        app_id: o.app,
        machine_id: o.machine(i),
        alias: "",
        ip: "127.0.0.1",
        oem: "qemu",
        oem_version: "",
        version: o.version,
        track: "stable",
        group_id: o.groupId,
        status: InstanceStatus.Complete,
        boot_id: "b",
        version_before_update: null,
        update_version: null,
        update_is_delta: 0 as const,
        update_granted_at: null,
        error_code: null,
        last_check_at: o.now,
        created_at: o.now,
      });
    }
    await db.insertInto("instances").values(rows).execute();
  }
}

/** The Omaha body a steady-state host sends: an update check and a ping, no events. */
export function steadyCheckBody(app: string, version: string, machineId: string): string {
  return encodeRequest({
    protocol: "3.0",
    version: "update_engine-0.4.10",
    installSource: "scheduler",
    isMachine: true,
    os: { platform: "Slipway", version: "trixie" },
    apps: [
      {
        appId: app,
        version,
        track: "stable",
        machineId,
        bootId: "b",
        oem: "qemu",
        ping: { active: 1 },
        updateCheck: {},
        events: [],
      },
    ],
  });
}
