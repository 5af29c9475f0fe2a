/** Admin routes for the activity log, API tokens and FleetLock slots. */
import type { FastifyInstance } from "fastify";
import { logActivity } from "../activity.ts";
import { createToken } from "../auth.ts";
import { FLEETLOCK_GROUP } from "../fleetlock.ts";
import { notFound } from "../http-error.ts";
import type { AdminContext } from "./context.ts";
import { int, NAME, obj, params, str } from "./schemas.ts";
import { activityJson } from "./serialize.ts";

export function registerSystemRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { db } = ctx;

  app.get<{
    Querystring: {
      app?: string;
      group?: string;
      severity?: string;
      limit: number;
      before?: number;
      after?: number;
    };
  }>(
    "/api/activity",
    {
      schema: {
        tags: ["activity"],
        summary:
          "The activity log, newest first; older pages with ?before=<id>. With ?after=<id>: only entries newer than that id, oldest first (poll with the last id seen)",
        querystring: obj({
          app: str({ maxLength: 128 }),
          group: str({ maxLength: 128 }),
          severity: str({ enum: ["info", "success", "warning", "error", "critical"] }),
          limit: int({ minimum: 1, maximum: 1000, default: 100 }),
          before: int({ minimum: 1 }),
          after: int({ minimum: 0 }),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      let sel = db.selectFrom("activity").selectAll();
      if (q.app) sel = sel.where("app_id", "=", q.app);
      if (q.group) sel = sel.where("group_id", "=", q.group);
      if (q.severity) sel = sel.where("severity", "=", q.severity as "info");
      if (q.before) sel = sel.where("id", "<", q.before);
      if (q.after !== undefined) sel = sel.where("id", ">", q.after);
      const order = q.after !== undefined ? "asc" : "desc";
      const rows = await sel.orderBy("id", order).limit(q.limit).execute();
      return rows.map(activityJson);
    },
  );

  app.get(
    "/api/session",
    {
      schema: {
        tags: ["tokens"],
        summary: "Who am I: the presented token's id, name and scope (admin or viewer)",
      },
    },
    async (req) => {
      const t = req.adminToken!;
      return { tokenId: t.id, name: t.name, scope: t.scope };
    },
  );

  const ttags = ["tokens"];
  app.get(
    "/api/tokens",
    { schema: { tags: ttags, summary: "List API tokens (never the secrets)" } },
    async () => {
      const rows = await db
        .selectFrom("tokens")
        .select(["id", "name", "scope", "created_at"])
        .orderBy("created_at")
        .execute();
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        scope: r.scope,
        createdAt: Number(r.created_at),
      }));
    },
  );

  app.post<{ Body: { name: string; scope: "admin" | "viewer" } }>(
    "/api/tokens",
    {
      schema: {
        tags: ttags,
        summary: "Create a token; the secret is in this response only",
        body: obj({ name: NAME, scope: str({ enum: ["admin", "viewer"] }) }, ["name", "scope"]),
      },
    },
    async (req, reply) => {
      const t = await createToken(db, req.body.name, req.body.scope, ctx.clock());
      reply.status(201);
      return { id: t.id, name: req.body.name, scope: req.body.scope, token: t.token };
    },
  );

  app.delete<{ Params: { id: string } }>(
    "/api/tokens/:id",
    { schema: { tags: ttags, summary: "Revoke a token", params: params("id") } },
    async (req, reply) => {
      const r = await db.deleteFrom("tokens").where("id", "=", req.params.id).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw notFound(`token ${req.params.id}`);
      reply.status(204);
    },
  );

  const ftags = ["fleetlock"];
  const groupParam = str({ pattern: FLEETLOCK_GROUP.source, maxLength: 256 });
  app.get(
    "/api/fleetlock",
    { schema: { tags: ftags, summary: "Reboot-lock groups, slots and holders" } },
    async () => ctx.fleetLock.groups(),
  );

  app.put<{ Params: { group: string }; Body: { maxSlots: number } }>(
    "/api/fleetlock/:group",
    {
      schema: {
        tags: ftags,
        summary: "Set how many hosts of a group may reboot at once",
        params: obj({ group: groupParam }, ["group"]),
        body: obj({ maxSlots: int({ minimum: 0, maximum: 100000 }) }, ["maxSlots"]),
      },
    },
    async (req) => {
      await ctx.fleetLock.setMaxSlots(req.params.group, req.body.maxSlots);
      return (await ctx.fleetLock.groups()).find((g) => g.name === req.params.group);
    },
  );

  app.get<{ Params: { group: string }; Querystring: { after?: number; limit?: number } }>(
    "/api/fleetlock/:group/log",
    {
      schema: {
        tags: ftags,
        summary: "Every take and release of the group's reboot slots, oldest first",
        params: obj({ group: groupParam }, ["group"]),
        querystring: obj({
          after: int({ minimum: 0 }),
          limit: int({ minimum: 1, maximum: 10000 }),
        }),
      },
    },
    async (req) => ctx.fleetLock.log(req.params.group, req.query.after ?? 0, req.query.limit),
  );

  app.delete<{ Params: { group: string; id: string } }>(
    "/api/fleetlock/:group/holders/:id",
    {
      schema: {
        tags: ftags,
        summary: "Free a slot a host never released",
        params: obj({ group: groupParam, id: str({ minLength: 1, maxLength: 256 }) }, [
          "group",
          "id",
        ]),
      },
    },
    async (req, reply) => {
      if (!(await ctx.fleetLock.free(req.params.group, req.params.id, ctx.clock())))
        throw notFound(`holder ${req.params.id}`);
      await logActivity(db, ctx.clock(), {
        severity: "warning",
        class: "fleetlock-freed",
        message: `reboot slot of ${req.params.id} in ${req.params.group} freed by an admin`,
      });
      reply.status(204);
    },
  );
}
