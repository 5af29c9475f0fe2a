/**
 * What the dashboard tests need: a built dashboard (vite build when web/dist is missing or
 * older than its sources), a real `slipway serve` child process on a free loopback port, and
 * Debian's Chromium driven by playwright-core.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type BrowserContext, chromium } from "playwright-core";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WEB = join(ROOT, "web");
const DIST_INDEX = join(WEB, "dist", "index.html");
export const ARTIFACTS = join(ROOT, "test-artifacts", "web");

async function newestMtime(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = s.mtimeMs;
  for (const e of await readdir(path)) newest = Math.max(newest, await newestMtime(join(path, e)));
  return newest;
}

/** Build web/dist unless it is newer than everything it is built from. */
export async function ensureDashboardBuilt(): Promise<void> {
  const sources = Math.max(
    await newestMtime(join(WEB, "src")),
    await newestMtime(join(WEB, "index.html")),
    await newestMtime(join(WEB, "vite.config.ts")),
  );
  const built = await stat(DIST_INDEX).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  if (built > sources) return;
  await promisify(execFile)(
    join(ROOT, "node_modules", ".bin", "vite"),
    ["build", "--config", join(WEB, "vite.config.ts")],
    { cwd: ROOT, timeout: 60_000 },
  );
}

export interface Serve {
  url: string;
  adminToken: string;
  dataDir: string;
  stderr(): string;
  stop(): Promise<void>;
}

/** `slipway serve` with SQLite in a temp dir on 127.0.0.1 and a port the kernel picks. */
export async function startServe(): Promise<Serve> {
  const dataDir = await mkdtemp("/var/tmp/web-test-");
  const child = spawn(
    join(ROOT, "bin", "slipway"),
    ["serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--log-level", "warn"],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (b) => {
    out += b;
  });
  child.stderr.on("data", (b) => {
    err += b;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  // Never leave a server behind, even when the test runner is stopped mid-test.
  const orphanGuard = () => child.kill("SIGKILL");
  process.once("exit", orphanGuard);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`slipway serve did not start:\n${out}${err}`)),
      20_000,
    );
    const look = () => {
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out + err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout.on("data", look);
    child.stderr.on("data", look);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`slipway serve exited with ${code}:\n${out}${err}`));
    });
  });
  const adminToken = (await readFile(join(dataDir, "admin-token"), "utf8")).trim();
  return {
    url,
    adminToken,
    dataDir,
    stderr: () => err,
    async stop() {
      process.off("exit", orphanGuard);
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Headless Debian Chromium with a fresh profile; nothing is downloaded. */
export async function launchChromium(): Promise<{ ctx: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp("/var/tmp/web-chromium-");
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    ctx,
    async close() {
      await ctx.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** A small JSON client for the admin API (what an operator's script would do). */
export function adminApi(url: string, token: string) {
  return async <T = unknown>(method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
}
