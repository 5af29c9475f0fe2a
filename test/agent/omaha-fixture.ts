/**
 * A minimal Omaha server for agent tests, built on the shared codec: offers
 * one update to hosts running an older version, serves the payload with
 * Range support, records every event, and can inject faults (5xx answers,
 * a connection cut mid-download).
 */
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { compareVersions } from "../../src/agent/version.ts";
import { decodeRequest, encodeResponse, type RequestEvent } from "../../src/omaha/index.ts";

export interface OmahaFixture {
  url: string;
  events: (RequestEvent & { version: string | undefined })[];
  checks: number;
  /** delta_okay of each update check, in order. */
  deltaOkay: (boolean | undefined)[];
  /** Answer the next N Omaha requests with HTTP 503. */
  failNext: number;
  /** Cut the next payload download after this many bytes. */
  truncateNextDownloadAt: number | undefined;
  rangeRequests: string[];
  offer(version: string, payload: Buffer): void;
  stop(): Promise<void>;
}

export async function startOmaha(): Promise<OmahaFixture> {
  let offered: { version: string; payload: Buffer } | undefined;
  const fx: OmahaFixture = {
    url: "",
    events: [],
    checks: 0,
    deltaOkay: [],
    failNext: 0,
    truncateNextDownloadAt: undefined,
    rangeRequests: [],
    offer(version, payload) {
      offered = { version, payload };
    },
    stop: () => new Promise((r) => server.close(() => r())),
  };
  const server: Server = createServer((req, res) => {
    if (req.method === "GET" && req.url?.startsWith("/payloads/") && offered) {
      const data = offered.payload;
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
      const start = range ? Number(range[1]) : 0;
      if (range) fx.rangeRequests.push(req.headers.range!);
      res.writeHead(range ? 206 : 200, {
        "content-length": data.length - start,
        ...(range ? { "content-range": `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
      });
      const cut = fx.truncateNextDownloadAt;
      if (cut !== undefined) {
        fx.truncateNextDownloadAt = undefined;
        res.write(data.subarray(start, start + cut), () => res.destroy());
        return;
      }
      res.end(data.subarray(start));
      return;
    }
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      if (fx.failNext > 0) {
        fx.failNext--;
        res.writeHead(503).end("try later");
        return;
      }
      const omaha = decodeRequest(body);
      const app = omaha.apps[0]!;
      for (const ev of app.events) fx.events.push({ ...ev, version: app.version });
      let updateCheck: Parameters<typeof encodeResponse>[0]["apps"][number]["updateCheck"];
      if (app.updateCheck) {
        fx.checks++;
        fx.deltaOkay.push(app.deltaOkay);
        if (offered && compareVersions(offered.version, app.version ?? "0") > 0) {
          const sha = createHash("sha256").update(offered.payload).digest("base64");
          updateCheck = {
            status: "ok",
            urls: [`${fx.url}/payloads/`],
            manifest: {
              version: offered.version,
              packages: [
                {
                  name: `slipway-${offered.version}.payload`,
                  size: offered.payload.length,
                  required: true,
                },
              ],
              actions: [{ event: "postinstall", sha256: sha }],
            },
          };
        } else {
          updateCheck = { status: "noupdate", urls: [] };
        }
      }
      res.writeHead(200, { "content-type": "text/xml" });
      res.end(
        encodeResponse({
          protocol: "3.0",
          apps: [
            {
              appId: app.appId,
              status: "ok",
              ping: app.ping ? { status: "ok" } : undefined,
              events: app.events.map(() => ({ status: "ok" as const })),
              updateCheck,
            },
          ],
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  fx.url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  return fx;
}
