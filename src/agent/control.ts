/**
 * The agent's local control socket (a Unix socket, root-only): one JSON
 * request line in, one JSON answer line out. `slipway update` is its client.
 */
import { chmod, mkdir, rm } from "node:fs/promises";
import { createConnection, createServer, type Server } from "node:net";
import { dirname } from "node:path";
import { SlipwayError } from "../errors.ts";
import type { Agent } from "./agent.ts";

export type ControlRequest =
  | { cmd: "status" }
  | { cmd: "check"; wait?: boolean }
  | { cmd: "reset" };

export type ControlAnswer = { ok: true; status?: unknown } | { ok: false; error: string };

export async function serveControl(agent: Agent, socketPath: string): Promise<Server> {
  await mkdir(dirname(socketPath), { recursive: true });
  await rm(socketPath, { force: true });
  const server = createServer((sock) => {
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("error", () => {});
    sock.on("data", (chunk: string) => {
      buf += chunk;
      if (buf.length > 4096) sock.destroy();
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      void answer(agent, line).then((a) => sock.end(`${JSON.stringify(a)}\n`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, resolve);
  });
  await chmod(socketPath, 0o600);
  return server;
}

async function answer(agent: Agent, line: string): Promise<ControlAnswer> {
  try {
    const req = JSON.parse(line) as ControlRequest;
    switch (req.cmd) {
      case "status":
        return { ok: true, status: agent.status() };
      case "check": {
        const run = agent.checkNow("ondemandupdate");
        if (req.wait) await run;
        return { ok: true, status: agent.status() };
      }
      case "reset":
        await agent.reset();
        return { ok: true, status: agent.status() };
      default:
        return {
          ok: false,
          error: `unknown command ${JSON.stringify((req as { cmd?: unknown }).cmd)}`,
        };
    }
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

export function control(
  socketPath: string,
  req: ControlRequest,
  timeoutMs = 30 * 60_000,
): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = "";
    sock.setEncoding("utf8");
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error("timed out")));
    sock.on("connect", () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on("data", (c: string) => {
      buf += c;
    });
    sock.on("end", () => {
      try {
        resolve(JSON.parse(buf) as ControlAnswer);
      } catch {
        reject(new SlipwayError("the agent sent an unreadable answer", { where: socketPath }));
      }
    });
    sock.on("error", (err) =>
      reject(
        new SlipwayError(`cannot reach the agent (is slipway-agent running?): ${err.message}`, {
          where: socketPath,
        }),
      ),
    );
  });
}
