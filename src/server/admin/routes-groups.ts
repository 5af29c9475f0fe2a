/** Admin routes for groups (rollout policy), instances and their events. */
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Kysely } from "kysely";
import { logActivity } from "../activity.ts";
import type { Database, GroupTable } from "../db/schema.ts";
import { badRequest, notFound } from "../http-error.ts";
import { InstanceStatus } from "../instance-status.ts";
import { validateTimezone } from "../policy.ts";
import { type HostHistory, versionTimeline } from "../timeline.ts";
import type { AdminContext } from "./context.ts";
import { requireApp } from "./routes-apps.ts";
import { groupPolicySchema, int, NAME, obj, params, str } from "./schemas.ts";
import { eventJson, groupJson, instanceJson, parseHhmm } from "./serialize.ts";

interface PolicyBody {
  updatesEnabled?: boolean;
  safeMode?: boolean;
  maxUpdatesPerPeriod?: number;
  periodIntervalS?: number;
  updateTimeoutS?: number;
  officeHours?: boolean;
  timezone?: string;
  officeStart?: string;
  officeEnd?: string;
}

interface GroupBody {
  name?: string;
  track?: string;
  channel?: string | null;
  policy?: PolicyBody;
}

function policyColumns(p: PolicyBody): Partial<GroupTable> {
  const set: Partial<GroupTable> = {};
  if (p.updatesEnabled !== undefined) set.updates_enabled = p.updatesEnabled ? 1 : 0;
  if (p.safeMode !== undefined) set.safe_mode = p.safeMode ? 1 : 0;
  if (p.maxUpdatesPerPeriod !== undefined) set.max_updates_per_period = p.maxUpdatesPerPeriod;
  if (p.periodIntervalS !== undefined) set.period_interval_s = p.periodIntervalS;
  if (p.updateTimeoutS !== undefined) set.update_timeout_s = p.updateTimeoutS;
  if (p.officeHours !== undefined) set.office_hours = p.officeHours ? 1 : 0;
  if (p.timezone !== undefined) {
    try {
      validateTimezone(p.timezone);
    } catch {
      throw badRequest(`policy.timezone: unknown timezone "${p.timezone}"`);
    }
    set.timezone = p.timezone;
  }
  if (p.officeStart !== undefined) set.office_start_min = parseHhmm(p.officeStart);
  if (p.officeEnd !== undefined) set.office_end_min = parseHhmm(p.officeEnd);
  return set;
}

async function channelIdByName(
  db: Kysely<Database>,
  appId: string,
  name: string | null | undefined,
) {
  if (name === undefined) return undefined;
  if (name === null) return null;
  const c = await db
    .selectFrom("channels")
    .select("id")
    .where("app_id", "=", appId)
    .where("name", "=", name)
    .executeTakeFirst();
  if (!c) throw badRequest(`application ${appId} has no channel ${name}`);
  return c.id;
}

/** Bounds of one timeline request (an admin view, not an export). */
const TIMELINE_MAX_HOSTS = 100_000;
const TIMELINE_MAX_EVENTS = 500_000;

export async function loadGroup(db: Kysely<Database>, appId: string, groupId: string) {
  const g = await db
    .selectFrom("groups")
    .leftJoin("channels", "channels.id", "groups.channel_id")
    .selectAll("groups")
    .select("channels.name as channel_name")
    .where("groups.app_id", "=", appId)
    .where((eb) => eb.or([eb("groups.id", "=", groupId), eb("groups.track", "=", groupId)]))
    .executeTakeFirst();
  if (!g) throw notFound(`group ${groupId}`);
  return g;
}

const groupBody = (create: boolean) =>
  obj(
    {
      name: NAME,
      track: str({ minLength: 1, maxLength: 128 }),
      channel: { type: ["string", "null"], maxLength: 128 },
      policy: groupPolicySchema,
    },
    create ? ["name"] : [],
  );

export function registerGroupRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { db } = ctx;
  const tags = ["groups"];
  const gp = params("app", "group");

  app.get<{ Params: { app: string } }>(
    "/api/apps/:app/groups",
    { schema: { tags, summary: "List groups with their rollout policy", params: params("app") } },
    async (req) => {
      await requireApp(db, req.params.app);
      const rows = await db
        .selectFrom("groups")
        .leftJoin("channels", "channels.id", "groups.channel_id")
        .selectAll("groups")
        .select("channels.name as channel_name")
        .where("groups.app_id", "=", req.params.app)
        .orderBy("groups.name")
        .execute();
      return rows.map((g) => groupJson(g, g.channel_name));
    },
  );

  app.post<{ Params: { app: string }; Body: GroupBody & { name: string } }>(
    "/api/apps/:app/groups",
    {
      schema: {
        tags,
        summary: "Create a group; hosts join it by sending its track",
        params: params("app"),
        body: groupBody(true),
      },
    },
    async (req, reply) => {
      await requireApp(db, req.params.app);
      const b = req.body;
      const id = randomUUID();
      const row: GroupTable = {
        id,
        app_id: req.params.app,
        name: b.name,
        track: b.track ?? b.name,
        channel_id: (await channelIdByName(db, req.params.app, b.channel)) ?? null,
        updates_enabled: 1,
        safe_mode: 1,
        max_updates_per_period: 1,
        period_interval_s: 3600,
        update_timeout_s: 3600,
        office_hours: 0,
        timezone: "UTC",
        office_start_min: 540,
        office_end_min: 1020,
        halted_reason: null,
        created_at: ctx.clock(),
        ...policyColumns(b.policy ?? {}),
      };
      await db.insertInto("groups").values(row).execute();
      reply.status(201);
      const g = await loadGroup(db, req.params.app, id);
      return groupJson(g, g.channel_name);
    },
  );

  app.get<{ Params: { app: string; group: string } }>(
    "/api/apps/:app/groups/:group",
    { schema: { tags, summary: "Get a group (by id or track)", params: gp } },
    async (req) => {
      const g = await loadGroup(db, req.params.app, req.params.group);
      return groupJson(g, g.channel_name);
    },
  );

  app.patch<{ Params: { app: string; group: string }; Body: GroupBody }>(
    "/api/apps/:app/groups/:group",
    {
      schema: {
        tags,
        summary: "Change a group: name, track, channel, rollout policy",
        params: gp,
        body: groupBody(false),
      },
    },
    async (req) => {
      const g = await loadGroup(db, req.params.app, req.params.group);
      const b = req.body;
      const set: Partial<GroupTable> = { ...policyColumns(b.policy ?? {}) };
      if (b.name !== undefined) set.name = b.name;
      if (b.track !== undefined) set.track = b.track;
      const channel = await channelIdByName(db, req.params.app, b.channel);
      if (channel !== undefined) set.channel_id = channel;
      if (Object.keys(set).length > 0)
        await db.updateTable("groups").set(set).where("id", "=", g.id).execute();
      const after = await loadGroup(db, req.params.app, g.id);
      return groupJson(after, after.channel_name);
    },
  );

  app.delete<{ Params: { app: string; group: string } }>(
    "/api/apps/:app/groups/:group",
    { schema: { tags, summary: "Delete a group (its hosts stay, without a group)", params: gp } },
    async (req, reply) => {
      const g = await loadGroup(db, req.params.app, req.params.group);
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable("instances")
          .set({ group_id: null })
          .where("group_id", "=", g.id)
          .execute();
        await trx.deleteFrom("groups").where("id", "=", g.id).execute();
      });
      reply.status(204);
    },
  );

  for (const [verb, enabled] of [
    ["pause", false],
    ["resume", true],
  ] as const) {
    app.post<{ Params: { app: string; group: string } }>(
      `/api/apps/:app/groups/:group/${verb}`,
      {
        schema: {
          tags,
          summary: enabled
            ? "Resume updates (also clears a safe-mode halt)"
            : "Pause updates for the group",
          params: gp,
        },
      },
      async (req) => {
        const g = await loadGroup(db, req.params.app, req.params.group);
        await db
          .updateTable("groups")
          .set(enabled ? { updates_enabled: 1, halted_reason: null } : { updates_enabled: 0 })
          .where("id", "=", g.id)
          .execute();
        await logActivity(db, ctx.clock(), {
          severity: "info",
          class: enabled ? "rollout-resumed" : "rollout-paused",
          message: `updates ${enabled ? "resumed" : "paused"} for group ${g.name}`,
          appId: g.app_id,
          groupId: g.id,
          channelId: g.channel_id,
        });
        const after = await loadGroup(db, req.params.app, g.id);
        return groupJson(after, after.channel_name);
      },
    );
  }

  app.get<{ Params: { app: string; group: string } }>(
    "/api/apps/:app/groups/:group/rollout",
    { schema: { tags, summary: "Rollout status: hosts per version and per state", params: gp } },
    async (req) => {
      const g = await loadGroup(db, req.params.app, req.params.group);
      const byVersion = await db
        .selectFrom("instances")
        .select((eb) => ["version", eb.fn.countAll<number>().as("n")])
        .where("group_id", "=", g.id)
        .groupBy("version")
        .execute();
      const byStatus = await db
        .selectFrom("instances")
        .select((eb) => ["status", eb.fn.countAll<number>().as("n")])
        .where("group_id", "=", g.id)
        .groupBy("status")
        .execute();
      const target = g.channel_id
        ? ((
            await db
              .selectFrom("channels")
              .innerJoin("packages", "packages.id", "channels.package_id")
              .select("packages.version")
              .where("channels.id", "=", g.channel_id)
              .executeTakeFirst()
          )?.version ?? null)
        : null;
      return {
        group: groupJson(g, g.channel_name),
        /** The version the group's channel points at (null: no channel or no package). */
        target,
        versions: Object.fromEntries(byVersion.map((r) => [r.version, Number(r.n)])),
        statuses: Object.fromEntries(byStatus.map((r) => [r.status, Number(r.n)])),
      };
    },
  );

  app.get<{ Params: { app: string; group: string }; Querystring: { buckets: number } }>(
    "/api/apps/:app/groups/:group/timeline",
    {
      schema: {
        tags,
        summary:
          "Hosts per version over time (from first host to now, in equal steps), from the hosts' event histories",
        params: gp,
        querystring: obj({ buckets: int({ minimum: 1, maximum: 500, default: 48 }) }),
      },
    },
    async (req) => {
      const g = await loadGroup(db, req.params.app, req.params.group);
      const hosts = await db
        .selectFrom("instances")
        .select(["machine_id", "version", "created_at", "last_check_at"])
        .where("group_id", "=", g.id)
        .limit(TIMELINE_MAX_HOSTS)
        .execute();
      const events = await db
        .selectFrom("events")
        .select(["machine_id", "version", "previous_version", "created_at"])
        .where("app_id", "=", req.params.app)
        .where("group_id", "=", g.id)
        .orderBy("id")
        .limit(TIMELINE_MAX_EVENTS)
        .execute();
      const byHost = new Map<string, HostHistory["events"]>();
      for (const e of events) {
        let list = byHost.get(e.machine_id);
        if (!list) {
          list = [];
          byHost.set(e.machine_id, list);
        }
        list.push({
          createdAt: Number(e.created_at),
          version: e.version,
          previousVersion: e.previous_version,
        });
      }
      return versionTimeline(
        hosts.map((h) => ({
          createdAt: Number(h.created_at),
          lastCheckAt: Number(h.last_check_at),
          version: h.version,
          events: byHost.get(h.machine_id) ?? [],
        })),
        ctx.clock(),
        req.query.buckets,
      );
    },
  );

  // ---- instances
  const itags = ["instances"];
  app.get<{
    Params: { app: string };
    Querystring: {
      group?: string;
      status?: string;
      version?: string;
      seenWithinS?: number;
      notSeenForS?: number;
      limit: number;
      offset: number;
    };
  }>(
    "/api/apps/:app/instances",
    {
      schema: {
        tags: itags,
        summary:
          "List hosts (filter by group id, status, version; active with seenWithinS, gone quiet with notSeenForS)",
        params: params("app"),
        querystring: obj({
          group: str({ maxLength: 128 }),
          status: str({ enum: Object.values(InstanceStatus) }),
          version: str({ maxLength: 128 }),
          seenWithinS: int({ minimum: 1 }),
          notSeenForS: int({ minimum: 1 }),
          limit: int({ minimum: 1, maximum: 1000, default: 100 }),
          offset: int({ minimum: 0, default: 0 }),
        }),
      },
    },
    async (req) => {
      await requireApp(db, req.params.app);
      const q = req.query;
      const now = ctx.clock();
      let base = db.selectFrom("instances").where("app_id", "=", req.params.app);
      if (q.group) base = base.where("group_id", "=", q.group);
      if (q.status) base = base.where("status", "=", q.status);
      if (q.version) base = base.where("version", "=", q.version);
      if (q.seenWithinS) base = base.where("last_check_at", ">=", now - q.seenWithinS * 1000);
      if (q.notSeenForS) base = base.where("last_check_at", "<", now - q.notSeenForS * 1000);
      const total = await base
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow();
      const rows = await base
        .selectAll()
        .orderBy("machine_id")
        .limit(q.limit)
        .offset(q.offset)
        .execute();
      return { total: Number(total.n), instances: rows.map(instanceJson) };
    },
  );

  app.patch<{ Params: { app: string; machine: string }; Body: { alias: string } }>(
    "/api/apps/:app/instances/:machine",
    {
      schema: {
        tags: itags,
        summary:
          "Name a host (alias); a host that sends its own machinealias overrides it on its next check",
        params: params("app", "machine"),
        body: obj({ alias: str({ maxLength: 256 }) }, ["alias"]),
      },
    },
    async (req) => {
      const done = await db
        .updateTable("instances")
        .set({ alias: req.body.alias })
        .where("app_id", "=", req.params.app)
        .where("machine_id", "=", req.params.machine)
        .returningAll()
        .executeTakeFirst();
      if (!done) throw notFound(`instance ${req.params.machine}`);
      return instanceJson(done);
    },
  );

  app.get<{ Params: { app: string; machine: string } }>(
    "/api/apps/:app/instances/:machine",
    {
      schema: {
        tags: itags,
        summary: "One host with its latest events",
        params: params("app", "machine"),
      },
    },
    async (req) => {
      const inst = await db
        .selectFrom("instances")
        .selectAll()
        .where("app_id", "=", req.params.app)
        .where("machine_id", "=", req.params.machine)
        .executeTakeFirst();
      if (!inst) throw notFound(`instance ${req.params.machine}`);
      const events = await db
        .selectFrom("events")
        .selectAll()
        .where("app_id", "=", req.params.app)
        .where("machine_id", "=", req.params.machine)
        .orderBy("id", "desc")
        .limit(100)
        .execute();
      return { ...instanceJson(inst), events: events.map(eventJson) };
    },
  );

  app.post<{ Params: { app: string; machine: string } }>(
    "/api/apps/:app/instances/:machine/reset",
    {
      schema: {
        tags: itags,
        summary: "Forget a host's failed/granted update so it may be offered again",
        params: params("app", "machine"),
      },
    },
    async (req) => {
      const r = await db
        .updateTable("instances")
        .set({
          status: InstanceStatus.Undefined,
          update_version: null,
          update_granted_at: null,
          error_code: null,
        })
        .where("app_id", "=", req.params.app)
        .where("machine_id", "=", req.params.machine)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw notFound(`instance ${req.params.machine}`);
      return { ok: true };
    },
  );
}
