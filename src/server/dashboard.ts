/**
 * The web dashboard of `slipway serve`: the Vite build in web/dist served at `/`, with the
 * single-page-app fallback (a browser opening /apps/x/groups/y gets index.html and the app
 * routes itself). The admin API it talks to lives under /api and is not touched here.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

/** web/dist of this checkout (or of the installed package). */
export const DEFAULT_DIST_DIR = fileURLToPath(new URL("../../web/dist/", import.meta.url));

export const NOT_BUILT_MESSAGE =
  "the dashboard is not built (web/dist/index.html is missing): run npm run build:web";

/** Paths that belong to the server, never to the dashboard's client-side routes. */
const SERVER_PATHS = /^\/(api|v1|metrics|health)(\/|$)|^\/[^/]+\/v1\/update\//;

// The bundle loads nothing from elsewhere; React sets styles through the DOM (allowed).
const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export interface DashboardOptions {
  distDir?: string;
  /** Where the "not built" notice goes; stderr by default so `slipway serve` shows it. */
  warn?: (message: string) => void;
}

/** Serve the dashboard; returns false (and serves a notice at `/`) when it is not built. */
export async function registerDashboard(
  app: FastifyInstance,
  opts: DashboardOptions = {},
): Promise<boolean> {
  const distDir = opts.distDir ?? DEFAULT_DIST_DIR;
  const indexFile = join(distDir, "index.html");
  if (!existsSync(indexFile)) {
    (opts.warn ?? ((m) => process.stderr.write(`slipway serve: ${m}\n`)))(NOT_BUILT_MESSAGE);
    app.get("/", { schema: { hide: true } }, async (_req, reply) => {
      reply.status(503).type("text/html; charset=utf-8");
      return `<!doctype html><title>Slipway</title><h1>Dashboard not built</h1><p>${NOT_BUILT_MESSAGE}.</p><p>The admin API is at <a href="/api/openapi.json">/api/openapi.json</a>.</p>`;
    });
    return false;
  }

  const sendIndex = async (reply: FastifyReply) => {
    // Read per request: a rebuilt dashboard is picked up without restarting the server.
    const html = await readFile(indexFile, "utf8");
    return reply
      .header("cache-control", "no-cache")
      .header("content-security-policy", CSP)
      .header("x-content-type-options", "nosniff")
      .type("text/html; charset=utf-8")
      .send(html);
  };

  await app.register(async (scope) => {
    await scope.register(fastifyStatic, {
      root: distDir,
      prefix: "/",
      // The server already decorates reply.sendFile for package downloads.
      decorateReply: false,
      wildcard: true,
      index: false,
      serveDotFiles: false,
      schemaHide: true,
      // Vite puts a content hash in every file name it emits (index.html is routed below).
      maxAge: "365d",
      immutable: true,
      setHeaders(res) {
        res.setHeader("x-content-type-options", "nosniff");
      },
    });
    scope.get("/", { schema: { hide: true } }, (_req, reply) => sendIndex(reply));
    scope.get("/index.html", { schema: { hide: true } }, (_req, reply) => sendIndex(reply));
    // Client-side routes (and only those) fall back to index.html.
    scope.setNotFoundHandler(async (req: FastifyRequest, reply: FastifyReply) => {
      const path = req.url.split("?")[0] ?? "/";
      const wantsPage =
        (req.method === "GET" || req.method === "HEAD") &&
        !SERVER_PATHS.test(path) &&
        !/\.[a-z0-9]+$/i.test(path) &&
        (req.headers.accept ?? "").includes("text/html");
      if (wantsPage) return sendIndex(reply);
      return reply.status(404).send({ error: `no route for ${req.method} ${path}` });
    });
  });
  return true;
}
