/** Test helpers: a real `slipway serve` app on loopback with a controllable clock, and small clients. */
import { mkdtempSync, rmSync } from "node:fs";
import {
  decodeResponse,
  encodeRequest,
  type OmahaResponse,
  type RequestApp,
  type RequestEvent,
} from "../../src/omaha/index.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";

/** Monday 2026-01-05 10:00 UTC. */
/** One admin API call with a bearer token; the body is parsed JSON (undefined when empty). */
export async function adminApi<T>(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export const MONDAY_10_UTC = Date.UTC(2026, 0, 5, 10, 0);

export interface TestServer {
  server: RunningServer;
  url: string;
  token: string;
  dataDir: string;
  clock: { now: number };
  api<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: T }>;
  omaha(appId: string, app: Partial<RequestApp>): Promise<{ status: number; res: OmahaResponse }>;
  close(): Promise<void>;
}

export async function startTestServer(
  database?: string,
  opts: { secretPath?: string } = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync("/var/tmp/server-test-");
  const clock = { now: MONDAY_10_UTC };
  const server = await startServer({
    dataDir,
    database,
    host: "127.0.0.1",
    port: 0,
    clock: () => clock.now,
    secretPath: opts.secretPath,
    pollIntervalS: 1800,
    rateLimitPerMinute: 100_000,
  });
  const token = server.initialToken!;
  const url = server.url;
  const prefix = opts.secretPath ? `/${opts.secretPath}` : "";
  return {
    server,
    url,
    token,
    dataDir,
    clock,
    api: (method, path, body, tok = token) => adminApi(url, tok, method, path, body),
    async omaha(appId, app) {
      const xml = encodeRequest({
        protocol: "3.0",
        version: "test-client",
        installSource: "scheduler",
        isMachine: true,
        apps: [{ appId, events: [], ...app } as RequestApp],
      });
      const res = await fetch(`${url}${prefix}/v1/update/`, {
        method: "POST",
        headers: { "content-type": "text/xml" },
        body: xml,
      });
      return { status: res.status, res: decodeResponse(await res.text()) };
    },
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const ev = (
  type: number,
  result: number,
  extra: Partial<RequestEvent> = {},
): RequestEvent => ({ type, result, ...extra });

export async function uploadPackage(
  t: TestServer,
  appId: string,
  version: string,
  content: Buffer,
) {
  const res = await fetch(`${t.url}/api/apps/${appId}/packages/${version}?filename=update.gz`, {
    method: "PUT",
    headers: { authorization: `Bearer ${t.token}`, "content-type": "application/octet-stream" },
    body: content,
  });
  return {
    status: res.status,
    body: (await res.json()) as { id: string; sha256: string; size: number },
  };
}
