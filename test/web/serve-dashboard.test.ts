/** How the server serves the dashboard: SPA fallback only for pages, and a notice when unbuilt. */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { NOT_BUILT_MESSAGE, registerDashboard } from "../../src/server/dashboard.ts";

describe("registerDashboard", () => {
  let dir: string;
  let app: FastifyInstance;

  before(async () => {
    dir = await mkdtemp("/var/tmp/web-dist-");
    await writeFile(join(dir, "index.html"), "<!doctype html><title>dash</title>");
    await writeFile(join(dir, "app.js"), "console.log(1)");
    app = Fastify();
    app.get("/api/apps", async () => []);
    assert.equal(await registerDashboard(app, { distDir: dir }), true);
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (url: string, accept = "text/html,*/*") =>
    app.inject({ method: "GET", url, headers: { accept } });

  it("serves index.html at / with a strict content security policy", async () => {
    const r = await get("/");
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /<title>dash<\/title>/);
    assert.match(String(r.headers["content-security-policy"]), /default-src 'self'/);
    assert.equal(r.headers["cache-control"], "no-cache");
  });

  it("serves built files with a long cache", async () => {
    const r = await get("/app.js", "*/*");
    assert.equal(r.statusCode, 200);
    assert.equal(r.body, "console.log(1)");
    assert.match(String(r.headers["cache-control"]), /immutable/);
  });

  it("falls back to index.html for client-side routes a browser opens", async () => {
    const r = await get("/apps/x/groups/y?tab=1");
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /<title>dash<\/title>/);
  });

  it("keeps 404 for server paths, missing files, non-page requests and other methods", async () => {
    for (const [url, accept] of [
      ["/api/nope", "text/html"],
      ["/v1/nope", "text/html"],
      ["/missing.js", "text/html"],
      ["/apps/x", "application/json"],
    ] as const) {
      const r = await get(url, accept);
      assert.equal(r.statusCode, 404, url);
      assert.match(r.body, /"error"/, url);
    }
    assert.equal((await app.inject({ method: "POST", url: "/apps/x" })).statusCode, 404);
    assert.equal((await get("/api/apps", "*/*")).body, "[]");
  });

  it("says how to build it when web/dist is missing", async () => {
    const bare = Fastify();
    const warnings: string[] = [];
    const ok = await registerDashboard(bare, {
      distDir: join(dir, "nope"),
      warn: (m) => warnings.push(m),
    });
    assert.equal(ok, false);
    assert.deepEqual(warnings, [NOT_BUILT_MESSAGE]);
    assert.match(NOT_BUILT_MESSAGE, /npm run build:web/);
    const r = await bare.inject({ method: "GET", url: "/" });
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /npm run build:web/);
    await bare.close();
  });
});
