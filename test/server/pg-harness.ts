/**
 * A real PostgreSQL 15 (Debian's) for the integration suite: initdb in a temp dir, run as the
 * postgres user on a free loopback port, torn down by stop(). No shared server, no mocks.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

const BIN = "/usr/lib/postgresql/15/bin";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

export interface Postgres {
  url: string;
  /** The postmaster's pid (its backends are its children). */
  pid: number;
  stop(): Promise<void>;
}

function pgUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  return { uid, gid };
}

export async function startPostgres(): Promise<Postgres> {
  const dir = mkdtempSync(join("/var/tmp", "server-pg-"));
  const user = pgUser();
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, "data");
  const asPg = user ? { uid: user.uid, gid: user.gid } : {};
  execFileSync(
    `${BIN}/initdb`,
    ["-D", data, "-U", "slipway", "--auth=trust", "-E", "UTF8", "--no-sync"],
    {
      ...asPg,
      stdio: "ignore",
      cwd: dir,
    },
  );
  const port = await freePort();
  const child: ChildProcess = spawn(
    `${BIN}/postgres`,
    [
      "-D",
      data,
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "max_connections=50",
    ],
    { ...asPg, stdio: ["ignore", "ignore", "pipe"], cwd: dir },
  );
  let log = "";
  child.stderr?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited: ${log}`);
    try {
      execFileSync(`${BIN}/pg_isready`, ["-h", "127.0.0.1", "-p", String(port), "-U", "slipway"], {
        stdio: "ignore",
      });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  execFileSync(
    `${BIN}/createdb`,
    ["-h", "127.0.0.1", "-p", String(port), "-U", "slipway", "slipway"],
    { stdio: "ignore" },
  );
  return {
    url: `postgres://slipway@127.0.0.1:${port}/slipway`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGINT");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh database on a running server (each suite run gets its own). */
export async function createDatabase(pgUrl: string, name: string): Promise<string> {
  const u = new URL(pgUrl);
  execFileSync(`${BIN}/createdb`, ["-h", u.hostname, "-p", u.port, "-U", u.username, name], {
    stdio: "ignore",
  });
  u.pathname = `/${name}`;
  return u.toString();
}
