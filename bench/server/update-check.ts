/**
 * Update-check throughput and latency of `slipway serve` with many known instances, on
 * SQLite and on PostgreSQL, against a no-op fastify handler in the same run.
 *
 *   node bench/server/update-check.ts [--instances 100000] [--seconds 10] [--rate 1000]
 *        [--rounds 3] [--backend sqlite|postgres|both] [--smoke] [--json] [--profile DIR]
 *
 * Each server runs as its own process; autocannon drives it from this one. No-op and server
 * alternate for --rounds rounds and the medians are reported, with the load average of each
 * round (the machine is shared), and each process's CPU time per request. Every request is an
 * update_engine-style ping + updatecheck from a known host (each once per cycle, in random
 * order) in the steady state (the host is on the channel's version), so each check reads its
 * instance row and has its last-check time written.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { openDatabase } from "../../src/server/db/connect.ts";
import { createDatabase, freePort, startPostgres } from "../../test/server/pg-harness.ts";
import { seedInstances, steadyCheckBody } from "./fleet.ts";

const root = new URL("../..", import.meta.url).pathname;
const node = process.execPath;
const bin = join(root, "bin/slipway");

const { values: args } = parseArgs({
  options: {
    instances: { type: "string", default: "100000" },
    seconds: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    connections: { type: "string", default: "32" },
    /** Alternating no-op/server pairs; medians are reported (the box is shared and noisy). */
    rounds: { type: "string", default: "3" },
    backend: { type: "string", default: "both" },
    smoke: { type: "boolean", default: false },
    /** Write a V8 CPU profile of each measured server process into this directory. */
    profile: { type: "string" },
    json: { type: "boolean", default: false },
    /** "auto": servers (and PostgreSQL) on CPU 0, this load generator on CPU 1; "off": unpinned. */
    pin: { type: "string", default: "auto" },
  },
});
const INSTANCES = args.smoke ? 500 : Number(args.instances);
const SECONDS = args.smoke ? 1 : Number(args.seconds);
const RATE = args.smoke ? 200 : Number(args.rate);
const CONNECTIONS = Number(args.connections);
const ROUNDS = args.smoke ? 1 : Number(args.rounds);
const APP = "bench-app";
const VERSION = "2.0.0";

const log = (s: string) => process.stderr.write(`${s}\n`);

// The no-op and the real server get the same share of the machine: one core each (the server's
// worker thread and PostgreSQL's processes included), the load generator the other one. Without
// this the faster side's ratio partly measured how much of the box the generator could take.
const PIN = args.pin !== "off" && availableParallelism() >= 2 && existsSync("/usr/bin/taskset");
const SERVER_CPU = "0";
const GENERATOR_CPU = "1";
const pinTo = (cpu: string, pid: number) =>
  execFileSync("taskset", ["-a", "-p", "-c", cpu, String(pid)], { stdio: "ignore" });
/** Pin a process and its current children (PostgreSQL's postmaster and its workers). */
function pinTree(cpu: string, pid: number): void {
  pinTo(cpu, pid);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]!.split(" ")[1];
      if (Number(ppid) === pid) pinTo(cpu, Number(entry));
    } catch {} // gone meanwhile
  }
}
if (PIN) pinTo(GENERATOR_CPU, process.pid);

async function waitHealthy(url: string, p: ChildProcess, err: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`server exited: ${err()}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`server did not start: ${err()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Served {
  url: string;
  /** CPU time the process used so far, all threads (bin/slipway execs node: same pid). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function cpuSecondsOf(pid: number): number {
  // /proc/<pid>/stat: utime and stime (fields 14 and 15) in clock ticks, after "(comm)".
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function spawnServer(
  cmd: string,
  argv: string[],
  port: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Served> {
  // taskset execs the command: the pid stays the server's (for its CPU time).
  const p = PIN
    ? spawn("taskset", ["-c", SERVER_CPU, cmd, ...argv], {
        stdio: ["ignore", "ignore", "pipe"],
        env,
      })
    : spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"], env });
  let err = "";
  p.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url, p, () => err);
  return {
    url,
    cpuSeconds: () => cpuSecondsOf(p.pid!),
    async stop() {
      if (p.exitCode === null) {
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        await exited;
      }
    },
  };
}

function requestFor(i: number): string {
  return steadyCheckBody(APP, VERSION, `bench-${String(i).padStart(7, "0")}`);
}

// Bodies are encoded up front: encoding one per request in the load generator's own thread
// cost it throughput and added its pauses to the measured latencies. One per host, in random
// order: every host checks once per cycle, as a real fleet does within its poll interval.
const BODIES = Array.from({ length: INSTANCES }, (_, i) => i)
  .map((i) => ({ i, key: Math.random() }))
  .sort((a, b) => a.key - b.key)
  .map(({ i }) => requestFor(i));
let bodyIndex = 0;
const nextBody = () => BODIES[bodyIndex++ % BODIES.length]!;

/**
 * Drive one server; also returns its CPU microseconds per answered request, a figure the
 * machine's other load disturbs much less than throughput.
 */
async function load(target: Served, opts: { rate?: number }) {
  const cpuBefore = target.cpuSeconds();
  const r = await autocannon({
    url: `${target.url}/v1/update/`,
    method: "POST",
    connections: opts.rate ? Math.min(CONNECTIONS, 16) : CONNECTIONS,
    duration: SECONDS,
    overallRate: opts.rate,
    headers: { "content-type": "text/xml" },
    requests: [
      {
        setupRequest: (req) => ({ ...req, body: nextBody() }),
      },
    ],
  });
  const cpu = target.cpuSeconds() - cpuBefore;
  return {
    // Total over the run, not autocannon's mean of per-second buckets (a 1 s smoke run has one).
    rps: Math.round(r.requests.total / Math.max(1e-3, r.duration)),
    cpuUsPerRequest: Math.round((cpu * 1e6) / Math.max(1, r.requests.total)),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
  };
}

/**
 * Latency at a fixed arrival rate, open loop: request i is due at start + i/rate whatever
 * happened to earlier ones, and its latency counts from when it was due (a stall delays every
 * request due meanwhile, and they all count). autocannon's `overallRate` is a per-second quota
 * per connection instead: each connection sends back to back until its quota is used, then
 * waits for the next second, so "1,000/s" was a burst at full speed every second, and its
 * coordinated-omission correction (expected interval rounded up to 1 ms) added synthetic
 * samples for every slow answer.
 */
async function fixedRate(target: Served, rate: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Math.min(CONNECTIONS, 16) });
  const url = new URL(`${target.url}/v1/update/`);
  const total = Math.round(rate * SECONDS);
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  let done = 0;
  const cpuBefore = target.cpuSeconds();
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const send = (due: number) => {
      const body = nextBody();
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          agent,
          headers: { "content-type": "text/xml", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) latencies.push(performance.now() - due);
            else errors++;
            if (++done === total) resolve();
          });
        },
      );
      req.on("error", () => {
        errors++;
        if (++done === total) resolve();
      });
      req.end(body);
    };
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      while (sent < due) send(start + (sent++ * 1000) / rate);
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  const cpu = target.cpuSeconds() - cpuBefore;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(
      (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 10,
    ) / 10;
  return {
    p50: at(0.5),
    p99: at(0.99),
    max: at(1),
    errors,
    cpuUsPerRequest: Math.round((cpu * 1e6) / Math.max(1, total)),
  };
}

/** Seed the app, package, channel, group and INSTANCES hosts straight into the database. */
async function seed(url: string, token: string, database: string): Promise<void> {
  const api = async (method: string, path: string, body: unknown) => {
    const r = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (r.status >= 300) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  };
  await api("POST", "/api/apps", { id: APP, name: "bench" });
  await api("POST", `/api/apps/${APP}/packages`, {
    version: VERSION,
    url: "https://updates.example/bench/",
    filename: "update.payload",
    size: 1000,
    sha256: "0".repeat(64),
  });
  await api("POST", `/api/apps/${APP}/channels`, { name: "stable", package: VERSION });
  const g = await fetch(`${url}/api/apps/${APP}/groups`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "stable", channel: "stable" }),
  });
  const groupId = ((await g.json()) as { id: string }).id;
  const { db, close } = await openDatabase(database);
  const now = Date.now();
  await seedInstances(db, {
    app: APP,
    groupId: groupId,
    version: VERSION,
    count: INSTANCES,
    machine: (i) => `bench-${String(i).padStart(7, "0")}`,
    now: now,
  });
  await close();
}

interface Round {
  /** 1-minute load average when the round started. */
  load1: number;
  noopRps: number;
  serverRps: number;
  ratio: number;
  /** CPU µs per request at max throughput (all threads of the process). */
  noopCpuUs: number;
  serverCpuUs: number;
  /** Open-loop latency at RATE checks/s (ms from when each request was due). */
  noopP99AtRate: number;
  serverP99AtRate: number;
  serverP50AtRate: number;
  serverMaxAtRate: number;
  /** CPU µs per check at RATE checks/s (includes idle-time work such as timers). */
  serverCpuUsAtRate: number;
}

interface Row {
  backend: string;
  /** Medians over the rounds. */
  noop: { rps: number; p99: number };
  server: { rps: number; p99: number; errors: number };
  ratio: number;
  cpuUsPerRequest: { noop: number; server: number };
  atRate: { rate: number; p50: number; p99: number; noopP99: number; errors: number };
  rounds: Round[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round2 = (x: number) => Math.round(x * 100) / 100;

async function benchBackend(backend: "sqlite" | "postgres"): Promise<Row> {
  const dir = mkdtempSync("/var/tmp/server-bench-");
  const pg = backend === "postgres" ? await startPostgres() : undefined;
  if (pg && PIN) pinTree(SERVER_CPU, pg.pid);
  try {
    const database = pg ? await createDatabase(pg.url, "bench") : join(dir, "data", "slipway.db");
    const port = await freePort();
    const serveArgs = [
      "serve",
      "--data",
      join(dir, "data"),
      "--listen",
      `127.0.0.1:${port}`,
      "--log-level",
      "error",
    ];
    if (pg) serveArgs.push("--database", database);
    let server = await spawnServer(bin, serveArgs, port);
    const token = readFileSync(join(dir, "data", "admin-token"), "utf8").trim();
    log(`${backend}: seeding ${INSTANCES} instances`);
    await seed(server.url, token, database);
    // Restart so the measured process starts clean (as after a deploy).
    await server.stop();
    const profileEnv = args.profile
      ? { ...process.env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${args.profile}` }
      : process.env;
    server = await spawnServer(bin, serveArgs, port, profileEnv);
    const noopPort = await freePort();
    const noop = await spawnServer(
      node,
      [join(root, "bench/server/noop-server.ts"), String(noopPort)],
      noopPort,
    );
    try {
      await load(server, {}); // warm-up (JIT, caches)
      await load(noop, {});
      // No-op and server back to back in each round, same connections and duration: load from
      // other work on the machine hits both sides of a ratio about equally.
      const rounds: Round[] = [];
      const maxP99: number[] = [];
      let errors = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const load1 = Math.round(loadavg()[0]! * 100) / 100;
        log(
          `${backend}: round ${i + 1}/${ROUNDS} (load ${load1}), ${CONNECTIONS} connections, ${SECONDS}s each, then ${RATE}/s`,
        );
        const nMax = await load(noop, {});
        const sMax = await load(server, {});
        const nRate = await fixedRate(noop, RATE);
        const sRate = await fixedRate(server, RATE);
        errors += sMax.errors + sRate.errors;
        maxP99.push(sMax.p99);
        rounds.push({
          load1,
          noopRps: nMax.rps,
          serverRps: sMax.rps,
          ratio: round2(sMax.rps / Math.max(1, nMax.rps)),
          noopCpuUs: nMax.cpuUsPerRequest,
          serverCpuUs: sMax.cpuUsPerRequest,
          noopP99AtRate: nRate.p99,
          serverP99AtRate: sRate.p99,
          serverP50AtRate: sRate.p50,
          serverMaxAtRate: sRate.max,
          serverCpuUsAtRate: sRate.cpuUsPerRequest,
        });
      }
      return {
        backend,
        noop: { rps: median(rounds.map((r) => r.noopRps)), p99: 0 },
        server: { rps: median(rounds.map((r) => r.serverRps)), p99: median(maxP99), errors },
        ratio: round2(median(rounds.map((r) => r.ratio))),
        cpuUsPerRequest: {
          noop: median(rounds.map((r) => r.noopCpuUs)),
          server: median(rounds.map((r) => r.serverCpuUs)),
        },
        atRate: {
          rate: RATE,
          p50: median(rounds.map((r) => r.serverP50AtRate)),
          p99: median(rounds.map((r) => r.serverP99AtRate)),
          noopP99: median(rounds.map((r) => r.noopP99AtRate)),
          errors,
        },
        rounds,
      };
    } finally {
      await noop.stop();
      await server.stop();
    }
  } finally {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const backends =
  args.backend === "both"
    ? (["sqlite", "postgres"] as const)
    : [args.backend as "sqlite" | "postgres"];
const rows: Row[] = [];
for (const b of backends) rows.push(await benchBackend(b));
if (args.json) {
  const meta = {
    date: new Date().toISOString(),
    loadavgAtEnd: loadavg().map((x) => round2(x)),
    instances: INSTANCES,
    seconds: SECONDS,
    connections: CONNECTIONS,
    rounds: ROUNDS,
    pinning: PIN
      ? `server process (and PostgreSQL) on CPU ${SERVER_CPU}, load generator on CPU ${GENERATOR_CPU}, for the no-op and the server alike`
      : "none",
  };
  process.stdout.write(`${JSON.stringify({ ...meta, rows }, null, 2)}\n`);
} else {
  process.stdout.write(
    `update checks, ${INSTANCES} instances, ${SECONDS}s per run, ${CONNECTIONS} connections, ${PIN ? `servers on CPU ${SERVER_CPU}, generator on CPU ${GENERATOR_CPU}` : "unpinned"}\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${r.backend.padEnd(9)} server ${r.server.rps} req/s (p99 ${r.server.p99} ms, ${r.server.errors} errors) | no-op ${r.noop.rps} req/s | ratio ${r.ratio}× | CPU/request ${r.cpuUsPerRequest.server} µs (no-op ${r.cpuUsPerRequest.noop}) (rounds ${r.rounds.map((x) => x.ratio).join(", ")}; load ${r.rounds.map((x) => x.load1).join(", ")}) | at ${r.atRate.rate}/s: p99 ${r.atRate.p99} ms (no-op ${r.atRate.noopP99} ms)\n`,
    );
  }
}
