/** Admin routes for applications, packages and channels. */
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Kysely, Transaction } from "kysely";
import type { Database } from "../db/schema.ts";
import { badRequest, HttpError, notFound } from "../http-error.ts";
import {
  ChecksumMismatch,
  FILENAME,
  removePackageFiles,
  storePackageFile,
} from "../package-store.ts";
import type { AdminContext } from "./context.ts";
import { bool, int, NAME, obj, params, str, VERSION } from "./schemas.ts";
import { appJson, packageJson } from "./serialize.ts";

export async function requireApp(db: Kysely<Database>, id: string) {
  const app = await db
    .selectFrom("applications")
    .selectAll()
    .where("id", "=", id)
    .executeTakeFirst();
  if (!app) throw notFound(`application ${id}`);
  return app;
}

export async function packageIdByVersion(
  db: Kysely<Database> | Transaction<Database>,
  appId: string,
  version: string,
) {
  const p = await db
    .selectFrom("packages")
    .select("id")
    .where("app_id", "=", appId)
    .where("version", "=", version)
    .executeTakeFirst();
  if (!p) throw badRequest(`application ${appId} has no package ${version}`);
  return p.id;
}

async function channelJson(db: Kysely<Database>, channelId: string) {
  const c = await db
    .selectFrom("channels")
    .leftJoin("packages", "packages.id", "channels.package_id")
    .select([
      "channels.id",
      "channels.app_id",
      "channels.name",
      "channels.allow_downgrade",
      "channels.created_at",
      "packages.version",
    ])
    .where("channels.id", "=", channelId)
    .executeTakeFirstOrThrow();
  const list = (table: "channel_floors" | "channel_blacklist") =>
    db
      .selectFrom(table)
      .innerJoin("packages", "packages.id", `${table}.package_id`)
      .select("packages.version")
      .where(`${table}.channel_id`, "=", channelId)
      .execute()
      .then((rows) => rows.map((r) => r.version));
  return {
    id: c.id,
    appId: c.app_id,
    name: c.name,
    package: c.version,
    allowDowngrade: c.allow_downgrade === 1,
    floors: await list("channel_floors"),
    blacklist: await list("channel_blacklist"),
    createdAt: Number(c.created_at),
  };
}

interface ChannelBody {
  name?: string;
  package?: string | null;
  allowDowngrade?: boolean;
  floors?: string[];
  blacklist?: string[];
}

const channelBody = (requireName: boolean) =>
  obj(
    {
      name: NAME,
      package: { type: ["string", "null"], maxLength: 128 },
      allowDowngrade: bool,
      floors: { type: "array", items: VERSION, maxItems: 100 },
      blacklist: { type: "array", items: VERSION, maxItems: 100 },
    },
    requireName ? ["name"] : [],
  );

export function registerAppRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { db } = ctx;
  const tags = ["applications"];

  app.get("/api/apps", { schema: { tags, summary: "List applications" } }, async () => {
    return (await db.selectFrom("applications").selectAll().orderBy("name").execute()).map(appJson);
  });

  app.post<{ Body: { id?: string; name: string; description?: string } }>(
    "/api/apps",
    {
      schema: {
        tags,
        summary: "Create an application (id = the Omaha appid hosts send)",
        body: obj(
          {
            id: str({ minLength: 1, maxLength: 128 }),
            name: NAME,
            description: str({ maxLength: 1024 }),
          },
          ["name"],
        ),
      },
    },
    async (req, reply) => {
      const row = {
        id: req.body.id ?? randomUUID(),
        name: req.body.name,
        description: req.body.description ?? "",
        created_at: ctx.clock(),
      };
      await db.insertInto("applications").values(row).execute();
      reply.status(201);
      return appJson(row);
    },
  );

  app.get<{ Params: { app: string } }>(
    "/api/apps/:app",
    { schema: { tags, summary: "Get an application", params: params("app") } },
    async (req) => appJson(await requireApp(db, req.params.app)),
  );

  app.patch<{ Params: { app: string }; Body: { name?: string; description?: string } }>(
    "/api/apps/:app",
    {
      schema: {
        tags,
        summary: "Rename or describe an application",
        params: params("app"),
        body: obj({ name: NAME, description: str({ maxLength: 1024 }) }),
      },
    },
    async (req) => {
      await requireApp(db, req.params.app);
      if (Object.keys(req.body).length > 0) {
        await db
          .updateTable("applications")
          .set(req.body)
          .where("id", "=", req.params.app)
          .execute();
      }
      return appJson(await requireApp(db, req.params.app));
    },
  );

  app.delete<{ Params: { app: string } }>(
    "/api/apps/:app",
    {
      schema: {
        tags,
        summary: "Delete an application with its channels, groups, packages and instances",
        params: params("app"),
      },
    },
    async (req, reply) => {
      await requireApp(db, req.params.app);
      const pkgs = await db
        .selectFrom("packages")
        .select("id")
        .where("app_id", "=", req.params.app)
        .execute();
      await db.transaction().execute(async (trx) => {
        // Delete children explicitly: SQLite and PostgreSQL then behave the same.
        await trx.deleteFrom("instances").where("app_id", "=", req.params.app).execute();
        await trx.deleteFrom("groups").where("app_id", "=", req.params.app).execute();
        await trx.deleteFrom("channels").where("app_id", "=", req.params.app).execute();
        await trx.deleteFrom("packages").where("app_id", "=", req.params.app).execute();
        await trx.deleteFrom("applications").where("id", "=", req.params.app).execute();
      });
      for (const p of pkgs) await removePackageFiles(ctx.dataDir, p.id);
      reply.status(204);
    },
  );

  // ---- packages
  const ptags = ["packages"];
  app.get<{ Params: { app: string } }>(
    "/api/apps/:app/packages",
    { schema: { tags: ptags, summary: "List packages", params: params("app") } },
    async (req) => {
      await requireApp(db, req.params.app);
      const rows = await db
        .selectFrom("packages")
        .selectAll()
        .where("app_id", "=", req.params.app)
        .orderBy("created_at", "desc")
        .execute();
      return rows.map(packageJson);
    },
  );

  app.post<{
    Params: { app: string };
    Body: {
      version: string;
      url: string;
      filename: string;
      size: number;
      sha256: string;
      sha1?: string;
      signature?: string;
      metadataSize?: number;
    };
  }>(
    "/api/apps/:app/packages",
    {
      schema: {
        tags: ptags,
        summary: "Register a package hosted elsewhere (external URL)",
        params: params("app"),
        body: obj(
          {
            version: VERSION,
            url: str({ pattern: "^https?://", maxLength: 2048 }),
            filename: str({ pattern: FILENAME.source }),
            size: int({ minimum: 1 }),
            sha256: str({ pattern: "^[0-9a-fA-F]{64}$" }),
            sha1: str({ maxLength: 64 }),
            signature: str({ maxLength: 8192 }),
            metadataSize: int({ minimum: 0 }),
          },
          ["version", "url", "filename", "size", "sha256"],
        ),
      },
    },
    async (req, reply) => {
      await requireApp(db, req.params.app);
      const b = req.body;
      const row = {
        id: randomUUID(),
        app_id: req.params.app,
        version: b.version,
        filename: b.filename,
        base_url: b.url,
        size: b.size,
        sha256: b.sha256.toLowerCase(),
        sha1: b.sha1 ?? "",
        signature: b.signature ?? null,
        metadata_size: b.metadataSize ?? null,
        created_at: ctx.clock(),
      };
      await db.insertInto("packages").values(row).execute();
      reply.status(201);
      return packageJson(row);
    },
  );

  app.put<{
    Params: { app: string; version: string };
    Querystring: { filename: string; sha256?: string; signature?: string; metadataSize?: number };
  }>(
    "/api/apps/:app/packages/:version",
    {
      schema: {
        tags: ptags,
        summary:
          "Upload a payload file (application/octet-stream body); the server stores and serves it",
        params: obj({ app: str({ minLength: 1 }), version: VERSION }, ["app", "version"]),
        querystring: obj(
          {
            filename: str({ pattern: FILENAME.source }),
            sha256: str({ pattern: "^[0-9a-fA-F]{64}$" }),
            signature: str({ maxLength: 8192 }),
            metadataSize: int({ minimum: 0 }),
          },
          ["filename"],
        ),
      },
    },
    async (req, reply) => {
      await requireApp(db, req.params.app);
      const existing = await db
        .selectFrom("packages")
        .select("id")
        .where("app_id", "=", req.params.app)
        .where("version", "=", req.params.version)
        .executeTakeFirst();
      if (existing) throw new HttpError(409, `package ${req.params.version} exists already`);
      const id = randomUUID();
      let stored: Awaited<ReturnType<typeof storePackageFile>>;
      try {
        stored = await storePackageFile(
          ctx.dataDir,
          id,
          req.query.filename,
          req.body as import("node:stream").Readable,
          req.query.sha256,
        );
      } catch (err) {
        if (err instanceof ChecksumMismatch) throw new HttpError(422, err.message);
        throw err;
      }
      const row = {
        id,
        app_id: req.params.app,
        version: req.params.version,
        filename: req.query.filename,
        base_url: null,
        size: stored.size,
        sha256: stored.sha256,
        sha1: stored.sha1,
        signature: req.query.signature ?? null,
        metadata_size: req.query.metadataSize ?? null,
        created_at: ctx.clock(),
      };
      try {
        await db.insertInto("packages").values(row).execute();
      } catch (err) {
        await removePackageFiles(ctx.dataDir, id);
        throw err;
      }
      reply.status(201);
      return packageJson(row);
    },
  );

  app.delete<{ Params: { app: string; version: string } }>(
    "/api/apps/:app/packages/:version",
    {
      schema: {
        tags: ptags,
        summary: "Delete a package (and its stored file)",
        params: params("app", "version"),
      },
    },
    async (req, reply) => {
      const id = await packageIdByVersion(db, req.params.app, req.params.version).catch(() => {
        throw notFound(`package ${req.params.version}`);
      });
      const inUse = await db
        .selectFrom("channels")
        .select("name")
        .where("package_id", "=", id)
        .executeTakeFirst();
      if (inUse)
        throw new HttpError(
          409,
          `package ${req.params.version} is the package of channel ${inUse.name}`,
        );
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom("channel_floors").where("package_id", "=", id).execute();
        await trx.deleteFrom("channel_blacklist").where("package_id", "=", id).execute();
        await trx.deleteFrom("packages").where("id", "=", id).execute();
      });
      await removePackageFiles(ctx.dataDir, id);
      reply.status(204);
    },
  );

  // ---- channels
  const ctags = ["channels"];
  app.get<{ Params: { app: string } }>(
    "/api/apps/:app/channels",
    { schema: { tags: ctags, summary: "List channels", params: params("app") } },
    async (req) => {
      await requireApp(db, req.params.app);
      const rows = await db
        .selectFrom("channels")
        .select("id")
        .where("app_id", "=", req.params.app)
        .orderBy("name")
        .execute();
      return Promise.all(rows.map((r) => channelJson(db, r.id)));
    },
  );

  const saveChannel = async (
    appId: string,
    channelId: string,
    b: ChannelBody,
    trx: Transaction<Database>,
  ) => {
    const set: { package_id?: string | null; allow_downgrade?: 0 | 1 } = {};
    if (b.package !== undefined)
      set.package_id = b.package === null ? null : await packageIdByVersion(trx, appId, b.package);
    if (b.allowDowngrade !== undefined) set.allow_downgrade = b.allowDowngrade ? 1 : 0;
    if (Object.keys(set).length > 0)
      await trx.updateTable("channels").set(set).where("id", "=", channelId).execute();
    for (const [key, table] of [
      ["floors", "channel_floors"],
      ["blacklist", "channel_blacklist"],
    ] as const) {
      const versions = b[key];
      if (versions === undefined) continue;
      await trx.deleteFrom(table).where("channel_id", "=", channelId).execute();
      for (const v of new Set(versions)) {
        await trx
          .insertInto(table)
          .values({ channel_id: channelId, package_id: await packageIdByVersion(trx, appId, v) })
          .execute();
      }
    }
  };

  app.post<{ Params: { app: string }; Body: ChannelBody & { name: string } }>(
    "/api/apps/:app/channels",
    {
      schema: {
        tags: ctags,
        summary: "Create a channel (alpha, beta, stable or your own) pointing at a package",
        params: params("app"),
        body: channelBody(true),
      },
    },
    async (req, reply) => {
      await requireApp(db, req.params.app);
      const id = randomUUID();
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto("channels")
          .values({
            id,
            app_id: req.params.app,
            name: req.body.name,
            package_id: null,
            allow_downgrade: 0,
            created_at: ctx.clock(),
          })
          .execute();
        await saveChannel(req.params.app, id, req.body, trx);
      });
      reply.status(201);
      return channelJson(db, id);
    },
  );

  const channelId = async (appId: string, name: string) => {
    const c = await db
      .selectFrom("channels")
      .select("id")
      .where("app_id", "=", appId)
      .where("name", "=", name)
      .executeTakeFirst();
    if (!c) throw notFound(`channel ${name}`);
    return c.id;
  };

  app.patch<{ Params: { app: string; channel: string }; Body: ChannelBody }>(
    "/api/apps/:app/channels/:channel",
    {
      schema: {
        tags: ctags,
        summary: "Point a channel at a package, set floors, blacklist, downgrades",
        params: params("app", "channel"),
        body: channelBody(false),
      },
    },
    async (req) => {
      const id = await channelId(req.params.app, req.params.channel);
      await db.transaction().execute(async (trx) => {
        if (req.body.name !== undefined)
          await trx
            .updateTable("channels")
            .set({ name: req.body.name })
            .where("id", "=", id)
            .execute();
        await saveChannel(req.params.app, id, req.body, trx);
      });
      return channelJson(db, id);
    },
  );

  app.delete<{ Params: { app: string; channel: string } }>(
    "/api/apps/:app/channels/:channel",
    {
      schema: {
        tags: ctags,
        summary: "Delete a channel (groups on it stop getting updates)",
        params: params("app", "channel"),
      },
    },
    async (req, reply) => {
      const id = await channelId(req.params.app, req.params.channel);
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable("groups")
          .set({ channel_id: null })
          .where("channel_id", "=", id)
          .execute();
        await trx.deleteFrom("channel_floors").where("channel_id", "=", id).execute();
        await trx.deleteFrom("channel_blacklist").where("channel_id", "=", id).execute();
        await trx.deleteFrom("channels").where("id", "=", id).execute();
      });
      reply.status(204);
    },
  );
}
