/**
 * Admin routes for delta payloads of a package: a file that installs the package's version on
 * a host running one given older version, much smaller than the full payload. Uploaded (stored
 * next to the package's own file) or registered at an external URL.
 */
import type { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import type { PackageDeltaTable } from "../db/schema.ts";
import { HttpError, notFound } from "../http-error.ts";
import {
  ChecksumMismatch,
  FILENAME,
  removePackageFile,
  storePackageFile,
} from "../package-store.ts";
import type { AdminContext } from "./context.ts";
import { requireApp } from "./routes-apps.ts";
import { int, obj, str, VERSION } from "./schemas.ts";

export const deltaJson = (d: PackageDeltaTable) => ({
  from: d.from_version,
  filename: d.filename,
  url: d.base_url,
  size: Number(d.size),
  sha256: d.sha256,
  createdAt: Number(d.created_at),
});

const SHA256 = str({ pattern: "^[0-9a-fA-F]{64}$" });
const pkgParams = obj({ app: str({ minLength: 1, maxLength: 256 }), version: VERSION }, [
  "app",
  "version",
]);
const deltaParams = obj(
  { app: str({ minLength: 1, maxLength: 256 }), version: VERSION, from: VERSION },
  ["app", "version", "from"],
);

export function registerDeltaRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { db } = ctx;
  const tags = ["packages"];

  const requirePackage = async (appId: string, version: string) => {
    await requireApp(db, appId);
    const p = await db
      .selectFrom("packages")
      .select(["id", "filename", "version"])
      .where("app_id", "=", appId)
      .where("version", "=", version)
      .executeTakeFirst();
    if (!p) throw notFound(`package ${version}`);
    return p;
  };

  /** The names a client appends to the package's URL must stay unique within it. */
  const checkNew = async (
    pkg: { id: string; filename: string; version: string },
    from: string,
    filename: string,
  ) => {
    if (from === pkg.version) throw new HttpError(400, "a delta from a version to itself");
    const clash = await db
      .selectFrom("package_deltas")
      .select(["from_version", "filename"])
      .where("package_id", "=", pkg.id)
      .where((eb) => eb.or([eb("from_version", "=", from), eb("filename", "=", filename)]))
      .executeTakeFirst();
    if (clash?.from_version === from)
      throw new HttpError(409, `package ${pkg.version} has a delta from ${from} already`);
    if (clash || filename === pkg.filename)
      throw new HttpError(409, `file name ${filename} is taken in package ${pkg.version}`);
  };

  app.get<{ Params: { app: string; version: string } }>(
    "/api/apps/:app/packages/:version/deltas",
    { schema: { tags, summary: "List the delta payloads of a package", params: pkgParams } },
    async (req) => {
      const pkg = await requirePackage(req.params.app, req.params.version);
      const rows = await db
        .selectFrom("package_deltas")
        .selectAll()
        .where("package_id", "=", pkg.id)
        .orderBy("from_version")
        .execute();
      return rows.map(deltaJson);
    },
  );

  app.put<{
    Params: { app: string; version: string; from: string };
    Querystring: { filename: string; sha256?: string };
  }>(
    "/api/apps/:app/packages/:version/deltas/:from",
    {
      schema: {
        tags,
        summary:
          "Upload a delta payload (application/octet-stream) that installs :version on hosts running :from",
        params: deltaParams,
        querystring: obj({ filename: str({ pattern: FILENAME.source }), sha256: SHA256 }, [
          "filename",
        ]),
      },
    },
    async (req, reply) => {
      const pkg = await requirePackage(req.params.app, req.params.version);
      await checkNew(pkg, req.params.from, req.query.filename);
      let stored: Awaited<ReturnType<typeof storePackageFile>>;
      try {
        stored = await storePackageFile(
          ctx.dataDir,
          pkg.id,
          req.query.filename,
          req.body as Readable,
          req.query.sha256,
        );
      } catch (err) {
        if (err instanceof ChecksumMismatch) throw new HttpError(422, err.message);
        throw err;
      }
      const row: PackageDeltaTable = {
        package_id: pkg.id,
        from_version: req.params.from,
        filename: req.query.filename,
        base_url: null,
        size: stored.size,
        sha256: stored.sha256,
        sha1: stored.sha1,
        created_at: ctx.clock(),
      };
      await db.insertInto("package_deltas").values(row).execute();
      reply.status(201);
      return deltaJson(row);
    },
  );

  app.post<{
    Params: { app: string; version: string };
    Body: { from: string; url: string; filename: string; size: number; sha256: string };
  }>(
    "/api/apps/:app/packages/:version/deltas",
    {
      schema: {
        tags,
        summary: "Register a delta payload hosted elsewhere (external URL)",
        params: pkgParams,
        body: obj(
          {
            from: VERSION,
            url: str({ pattern: "^https?://", maxLength: 2048 }),
            filename: str({ pattern: FILENAME.source }),
            size: int({ minimum: 1 }),
            sha256: SHA256,
          },
          ["from", "url", "filename", "size", "sha256"],
        ),
      },
    },
    async (req, reply) => {
      const pkg = await requirePackage(req.params.app, req.params.version);
      const b = req.body;
      await checkNew(pkg, b.from, b.filename);
      const row: PackageDeltaTable = {
        package_id: pkg.id,
        from_version: b.from,
        filename: b.filename,
        base_url: b.url,
        size: b.size,
        sha256: b.sha256.toLowerCase(),
        sha1: "",
        created_at: ctx.clock(),
      };
      await db.insertInto("package_deltas").values(row).execute();
      reply.status(201);
      return deltaJson(row);
    },
  );

  app.delete<{ Params: { app: string; version: string; from: string } }>(
    "/api/apps/:app/packages/:version/deltas/:from",
    {
      schema: {
        tags,
        summary: "Delete a delta payload (and its stored file)",
        params: deltaParams,
      },
    },
    async (req, reply) => {
      const pkg = await requirePackage(req.params.app, req.params.version);
      const gone = await db
        .deleteFrom("package_deltas")
        .where("package_id", "=", pkg.id)
        .where("from_version", "=", req.params.from)
        .returning(["filename", "base_url"])
        .executeTakeFirst();
      if (!gone) throw notFound(`delta from ${req.params.from}`);
      if (gone.base_url === null) await removePackageFile(ctx.dataDir, pkg.id, gone.filename);
      reply.status(204);
    },
  );
}
