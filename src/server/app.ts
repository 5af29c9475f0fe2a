/**
 * The HTTP side of `slipway serve` (fastify): the Omaha endpoint, package downloads with
 * Range, FleetLock, the admin API with its OpenAPI document, /metrics and /health.
 */
import fastifyRateLimit from "@fastify/rate-limit";
import fastifyStatic from "@fastify/static";
import fastifySwagger from "@fastify/swagger";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { sql } from "kysely";
import { decodeRequest, encodeResponse, MAX_XML_BYTES, OmahaDecodeError } from "../omaha/index.ts";
import type { AdminContext } from "./admin/context.ts";
import { registerAppRoutes } from "./admin/routes-apps.ts";
import { registerDeltaRoutes } from "./admin/routes-deltas.ts";
import { registerGroupRoutes } from "./admin/routes-groups.ts";
import { registerSystemRoutes } from "./admin/routes-system.ts";
import { checkToken } from "./auth.ts";
import type { Db } from "./db/connect.ts";
import { FleetLock, parseClientParams } from "./fleetlock.ts";
import { HttpError, isForeignKeyViolation, isUniqueViolation } from "./http-error.ts";
import { Metrics } from "./metrics.ts";
import { OmahaService } from "./omaha-service.ts";
import { FILENAME, packagesDir } from "./package-store.ts";
import { type Clock, systemClock } from "./policy.ts";

export interface AppOptions {
  db: Db;
  dataDir: string;
  /** Base URL hosts reach this server on (for package URLs in Omaha responses). */
  publicUrl: string | (() => string);
  clock?: Clock;
  /** Serve Omaha under /<secretPath>/v1/update/ only. */
  secretPath?: string;
  pollIntervalS?: number;
  /** Reboot slots per FleetLock group unless set through the admin API. */
  fleetLockSlots?: number;
  /** Admin/FleetLock requests per minute per client. */
  rateLimitPerMinute?: number;
  /** Body limit for JSON requests (bytes). */
  jsonBodyLimit?: number;
  logger?: boolean | { level: string };
  trustProxy?: boolean;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The admin API token of the request (set by the admin scope's auth hook). */
    adminToken: { id: string; name: string; scope: "admin" | "viewer" } | null;
  }
}

export interface ServerApp {
  app: FastifyInstance;
  metrics: Metrics;
  omaha: OmahaService;
}

/**
 * How often batched last-check times are written: small batches keep each write short (on
 * SQLite it blocks the event loop while it runs); a killed process loses at most this much.
 */
const TOUCH_FLUSH_MS = 100;

const EMPTY_OMAHA_ERROR =
  '<?xml version="1.0" encoding="UTF-8"?>\n<response protocol="3.0" server="slipway"></response>\n';

export async function buildApp(o: AppOptions): Promise<ServerApp> {
  const clock = o.clock ?? systemClock;
  const { db, kind, hot } = o.db;
  const app = Fastify({
    logger: o.logger ?? false,
    // One log line per Omaha check would drown everything else; errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (it cost every update check); errors log without a reqId.
    childLoggerFactory: (logger) => logger,
    bodyLimit: o.jsonBodyLimit ?? 1024 * 1024,
    trustProxy: o.trustProxy ?? false,
    routerOptions: { ignoreTrailingSlash: true },
  });
  // `curl -H 'content-type: application/json' -X POST …/resume` sends no body: an empty JSON
  // body means "no fields" (Fastify's default refuses it), anything else parses as before.
  const defaultJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    if (body === "") done(null, undefined);
    else defaultJson(req, body as string, done);
  });
  const metrics = new Metrics(db);
  const omaha = new OmahaService({
    db,
    kind,
    hot,
    clock,
    publicUrl: o.publicUrl,
    pollIntervalS: o.pollIntervalS,
    metrics,
  });
  const fleetLock = new FleetLock(db, kind, o.fleetLockSlots ?? 1);
  const flushTimer = setInterval(() => {
    omaha.flushTouches().catch((err) => app.log.error({ err }, "writing last-check times failed"));
  }, TOUCH_FLUSH_MS);
  flushTimer.unref();
  app.addHook("onClose", async () => {
    clearInterval(flushTimer);
    // A flush already under way does not include the newest touches: flush until none are left.
    while (omaha.pendingTouches > 0 || omaha.flushing) await omaha.flushTouches();
  });

  // Callback style: an async hook costs every request a promise and its resolution.
  app.addHook("onResponse", (req, reply, done) => {
    metrics.observe(
      req.routeOptions.url ?? "unmatched",
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    let status = err.statusCode ?? 500;
    let message = err.message;
    if (isUniqueViolation(err)) {
      status = 409;
      message = "already exists";
    } else if (isForeignKeyViolation(err)) {
      status = 409;
      message = "refers to something that does not exist, or is still referred to";
    }
    if (status >= 500) {
      req.log.error({ err }, "request failed");
      message = "internal error";
    }
    reply.status(status).send({ error: message });
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: "Slipway update service admin API",
        version: "1",
        description:
          "Applications, channels, packages, groups with rollout policy, instances, activity, tokens, FleetLock.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(fastifyStatic, { root: packagesDir(o.dataDir), serve: false });

  // ---- Omaha
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      "*",
      { parseAs: "string", bodyLimit: MAX_XML_BYTES },
      (_req, body, done) => done(null, body),
    );
    // Not async: a steady-state answer is returned as a string and sent at once (fastify wraps
    // a returned promise, which the other checks get).
    const handler = (req: FastifyRequest, reply: FastifyReply): string | Promise<string> => {
      reply.type("text/xml; charset=utf-8");
      let decoded: ReturnType<typeof decodeRequest>;
      try {
        decoded = decodeRequest(typeof req.body === "string" ? req.body : "");
      } catch (err) {
        if (err instanceof OmahaDecodeError) {
          reply.status(400);
          return EMPTY_OMAHA_ERROR;
        }
        throw err;
      }
      const ctx = { ip: req.ip };
      // The steady state needs no waiting when its data is in memory (most checks).
      const steady = omaha.steadyAnswer(decoded, ctx);
      if (steady) return encodeResponse(steady);
      return omaha.handle(decoded, ctx).then(encodeResponse);
    };
    const prefix = o.secretPath ? `/${o.secretPath.replace(/^\/|\/$/g, "")}` : "";
    scope.post(`${prefix}/v1/update/`, { schema: { hide: true } }, handler);
    scope.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
      if (status >= 500) req.log.error({ err }, "omaha request failed");
      reply.status(status).type("text/xml; charset=utf-8").send(EMPTY_OMAHA_ERROR);
    });
  });

  // ---- package downloads (Range and HEAD from @fastify/static)
  app.get<{ Params: { id: string; file: string } }>(
    "/v1/packages/:id/:file",
    { schema: { hide: true } },
    async (req, reply) => {
      const { id, file } = req.params;
      if (!/^[0-9a-f-]{36}$/.test(id) || !FILENAME.test(file))
        throw new HttpError(404, "no such package file");
      const pkg = await db
        .selectFrom("packages")
        .select("filename")
        .where("id", "=", id)
        .executeTakeFirst();
      const known =
        pkg?.filename === file ||
        (pkg !== undefined &&
          (await db
            .selectFrom("package_deltas")
            .select("filename")
            .where("package_id", "=", id)
            .where("filename", "=", file)
            .where("base_url", "is", null)
            .executeTakeFirst()) !== undefined);
      if (!known) throw new HttpError(404, "no such package file");
      return reply.sendFile(`${id}/${file}`);
    },
  );

  // Admin API and FleetLock are rate limited per client; Omaha is not (clients behind one NAT
  // must not be throttled, and the hook would cost every update check).
  const rateLimit = (scope: FastifyInstance) =>
    scope.register(fastifyRateLimit, {
      global: true,
      max: o.rateLimitPerMinute ?? 600,
      timeWindow: 60_000,
    });

  // ---- FleetLock
  await app.register(async (scope) => {
    await rateLimit(scope);
    for (const [path, take] of [
      ["/v1/pre-reboot", true],
      ["/v1/steady-state", false],
    ] as const) {
      scope.post(path, { schema: { hide: true } }, async (req, reply) => {
        if (req.headers["fleet-lock-protocol"] !== "true") {
          reply.status(400);
          return { kind: "missing_header", value: "header fleet-lock-protocol: true is required" };
        }
        const params = parseClientParams(req.body);
        if ("status" in params) {
          reply.status(params.status);
          return { kind: params.kind, value: params.value };
        }
        if (take) {
          const err = await fleetLock.acquire(params, clock());
          if (err) {
            reply.status(err.status);
            return { kind: err.kind, value: err.value };
          }
        } else {
          await fleetLock.release(params, clock());
        }
        return {};
      });
    }
  });

  // ---- operations
  app.get("/health", { schema: { hide: true } }, async (_req, reply) => {
    try {
      await sql`select 1`.execute(db);
      return { status: "ok", database: kind };
    } catch (err) {
      reply.status(503);
      return { status: "unavailable", error: (err as Error).message };
    }
  });
  app.get("/metrics", { schema: { hide: true } }, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get("/api/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  // ---- admin API (bearer tokens: viewer reads, admin writes)
  app.decorateRequest("adminToken", null);
  await app.register(async (scope) => {
    await rateLimit(scope);
    scope.addContentTypeParser("application/octet-stream", (_req, payload, done) =>
      done(null, payload),
    );
    scope.addHook("onRequest", async (req) => {
      const header = req.headers.authorization ?? "";
      const m = /^Bearer (\S+)$/.exec(header);
      if (!m) throw new HttpError(401, "an Authorization: Bearer <token> header is required");
      const tok = await checkToken(db, m[1]!);
      if (!tok) throw new HttpError(401, "unknown token");
      req.adminToken = tok;
      if (req.method !== "GET" && req.method !== "HEAD" && tok.scope !== "admin") {
        throw new HttpError(403, "this token may only read (viewer scope)");
      }
    });
    // Any admin write may change what update checks see: drop the cached configuration.
    scope.addHook("onSend", async (req, _reply, payload) => {
      if (req.method !== "GET" && req.method !== "HEAD") omaha.config.clear();
      return payload;
    });
    const ctx: AdminContext = { db, kind, clock, dataDir: o.dataDir, fleetLock };
    registerAppRoutes(scope, ctx);
    registerDeltaRoutes(scope, ctx);
    registerGroupRoutes(scope, ctx);
    registerSystemRoutes(scope, ctx);
  });
  await (await import("./dashboard.ts")).registerDashboard(app); // web/dist at / (see dashboard.ts)

  return { app, metrics, omaha };
}
