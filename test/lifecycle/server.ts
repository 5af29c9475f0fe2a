/**
 * The update service of the lifecycle scenarios: a real `slipway serve` on a free loopback port
 * (its log kept as an artifact), the guest reaching it at http://10.0.2.100/ through a QEMU
 * guest forward, and releases published the way an operator does it: `slipway payload create`
 * (a signed delta from the version the hosts run) then `slipway publish`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../src/vm/harness/ssh.ts";
import type { GuestForward } from "../../src/vm/qemu.ts";
import { type ExampleBuild, SLIPWAY, slipway } from "../build/fixture.ts";
import { adminApi } from "../server/helpers.ts";
import { SIGNING_KEY } from "./images.ts";

/** Where the guest finds the server (QEMU user networking forwards it to 127.0.0.1). */
export const GUEST_SERVER_ADDR = "10.0.2.100";
export const GUEST_SERVER_URL = `http://${GUEST_SERVER_ADDR}`;
/**
 * The Omaha app id the hosts send: `slipway build` writes APPID=<image name> into
 * /usr/share/slipway/update.conf, and the example's name is "minimal".
 */
export const APP_ID = "minimal";
export const GROUP = "stable";

export interface LifecycleServer {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  dataDir: string;
  tokenFile: string;
  /** The admin token (also in tokenFile). */
  token: string;
  logFile: string;
  guestForward: GuestForward;
  api<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }>;
  /** Payload for `to` (delta from each `from`; no full image unless asked), then publish it. */
  publish(to: ExampleBuild, from: ExampleBuild[], opts?: { full?: boolean }): Promise<PublishInfo>;
  close(): Promise<void>;
}

export interface PublishInfo {
  version: string;
  payload: string;
  bytes: number;
  createSeconds: number;
}

function run(args: string[], what: string): { stdout: string; seconds: number } {
  const r = slipway(args);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return { stdout: r.stdout, seconds: r.seconds };
}

export async function startLifecycleServer(
  outDir: string,
  log: (line: string) => void,
  opts: { fleetlockSlots?: number } = {},
): Promise<LifecycleServer> {
  const dataDir = join(outDir, "server-data");
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(outDir, "server.log");
  const logStream = createWriteStream(logFile);
  const child: ChildProcess = spawn(
    SLIPWAY,
    [
      "serve",
      "--data",
      dataDir,
      "--listen",
      `127.0.0.1:${port}`,
      "--public-url",
      GUEST_SERVER_URL,
      "--fleetlock-slots",
      String(opts.fleetlockSlots ?? 1),
      "--rate-limit",
      "100000",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.pipe(logStream, { end: false });
  child.stderr?.pipe(logStream, { end: false });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
    await new Promise<void>((r) => logStream.end(r));
  };
  const tokenFile = join(dataDir, "admin-token");
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`slipway serve exited; see ${logFile}`);
      const ok = await fetch(`${url}/health`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok && existsSync(tokenFile)) break;
      if (Date.now() > deadline)
        throw new Error(`slipway serve not up within 60 s; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (e) {
    await close();
    throw e;
  }
  const token = readFileSync(tokenFile, "utf8").trim();
  const api = <T>(method: string, path: string, body?: unknown) =>
    adminApi<T>(url, token, method, path, body);
  log(`slipway serve on ${url} (guests: ${GUEST_SERVER_URL})`);
  return {
    url,
    port,
    dataDir,
    tokenFile,
    token,
    logFile,
    guestForward: { guestAddr: GUEST_SERVER_ADDR, guestPort: 80, hostPort: port },
    api,
    async publish(to, from, o = {}) {
      const version = to.meta.version;
      const payload = join(outDir, `${version}.payload`);
      const created = run(
        [
          "payload",
          "create",
          "--to",
          to.buildDir,
          ...from.flatMap((f) => ["--from", f.buildDir]),
          ...(o.full || from.length === 0 ? [] : ["--no-full"]),
          "--key",
          SIGNING_KEY,
          "--version",
          version,
          "-o",
          payload,
        ],
        `payload create ${version}`,
      );
      run(
        [
          "publish",
          payload,
          "--version",
          version,
          "--server",
          url,
          "--app",
          APP_ID,
          "--channel",
          GROUP,
          "--token-file",
          tokenFile,
        ],
        `publish ${version}`,
      );
      const bytes = statSync(payload).size;
      log(`published ${version}: ${bytes} bytes (payload made in ${created.seconds.toFixed(1)} s)`);
      return { version, payload, bytes, createSeconds: created.seconds };
    },
    close,
  };
}

/** The application the hosts report as. */
export async function createApp(s: LifecycleServer): Promise<void> {
  const app = await s.api("POST", "/api/apps", { id: APP_ID, name: "Slipway lifecycle" });
  if (app.status !== 201)
    throw new Error(`creating the app: ${app.status} ${JSON.stringify(app.body)}`);
}

/** The hosts' group, following the channel of the same name (publish creates the channel). */
export async function createGroup(s: LifecycleServer, policy: object): Promise<void> {
  const g = await s.api("POST", `/api/apps/${encodeURIComponent(APP_ID)}/groups`, {
    name: GROUP,
    channel: GROUP,
    policy,
  });
  if (g.status !== 201)
    throw new Error(`creating the group: ${g.status} ${JSON.stringify(g.body)}`);
}
