/**
 * `kill -9` of a real `slipway serve` process in the middle of a simulated rollout: after a
 * restart no acknowledged event is missing and the rollout goes on to the end. Also drives
 * `slipway publish` and `slipway simulate` as a user would.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import type { RequestEvent } from "../../src/omaha/index.ts";
import { Fleet } from "../../src/server/fleet-sim.ts";
import { freePort } from "./pg-harness.ts";

const bin = new URL("../../bin/slipway", import.meta.url).pathname;
const dir = mkdtempSync("/var/tmp/server-crash-");
let child: ChildProcess | undefined;

after(() => {
  child?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function serve(port: number): Promise<ChildProcess> {
  const p = spawn(
    bin,
    ["serve", "--data", join(dir, "data"), "--listen", `127.0.0.1:${port}`, "--log-level", "error"],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let err = "";
  p.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`serve exited ${p.exitCode}: ${err}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return p;
    } catch {}
    if (Date.now() > deadline) throw new Error(`serve did not come up: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("kill -9 during a rollout loses no acknowledged event; the rollout completes after restart", async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  child = await serve(port);
  const tokenFile = join(dir, "data", "admin-token");
  const token = readFileSync(tokenFile, "utf8").trim();
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(base + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  assert.equal((await api("POST", "/api/apps", { id: "fleet", name: "Fleet" })).status, 201);
  const payload = join(dir, "update.payload");
  writeFileSync(payload, Buffer.alloc(4096, 7));
  const pub = spawnSync(
    bin,
    [
      "publish",
      payload,
      "--server",
      base,
      "--app",
      "fleet",
      "--channel",
      "stable",
      "--version",
      "2.0.0",
      "--token-file",
      tokenFile,
      "--json",
    ],
    { encoding: "utf8" },
  );
  assert.equal(pub.status, 0, pub.stderr);
  assert.equal(JSON.parse(pub.stdout).size, 4096);
  const group = await api("POST", "/api/apps/fleet/groups", {
    name: "stable",
    channel: "stable",
    policy: { safeMode: false, maxUpdatesPerPeriod: 100000 },
  });
  assert.equal(group.status, 201);

  const acked = new Map<string, RequestEvent[]>();
  let acks = 0;
  let killed = false;
  const fleet = new Fleet({
    endpoint: `${base}/v1/update/`,
    appId: "fleet",
    track: "stable",
    hosts: 150,
    startVersion: "1.0.0",
    concurrency: 8,
    onAck: (m, ev) => {
      acked.set(m, [...(acked.get(m) ?? []), ev]);
      // Kill in the middle of the download-finished round, with requests in flight.
      if (++acks === 220 && !killed) {
        killed = true;
        child?.kill("SIGKILL");
      }
    },
  });
  let rounds = 0;
  while (!killed && rounds < 10) {
    await fleet.round();
    rounds++;
  }
  assert.ok(killed, "the server was killed mid-rollout");
  const dead = child!;
  if (dead.exitCode === null && dead.signalCode === null)
    await new Promise((r) => dead.once("exit", r));
  child = await serve(port);
  for (let i = 0; i < 12 && fleet.versions()["2.0.0"] !== 150; i++) await fleet.round();
  assert.deepEqual(fleet.versions(), { "2.0.0": 150 });

  // Every acknowledged event is in the database (stored ≥ acked per host and kind).
  for (const [machine, events] of acked) {
    const r = await api("GET", `/api/apps/fleet/instances/${machine}`);
    const stored = r.body.events as { type: number; result: number }[];
    for (const kind of new Set(events.map((e) => `${e.type}/${e.result}`))) {
      const want = events.filter((e) => `${e.type}/${e.result}` === kind).length;
      const have = stored.filter((e) => `${e.type}/${e.result}` === kind).length;
      assert.ok(have >= want, `${machine}: ${kind} acked ${want}×, stored ${have}×`);
    }
    assert.equal(r.body.status, "complete");
  }

  // `slipway simulate` against the same server: new hosts go straight to 2.0.0.
  const sim = spawnSync(
    bin,
    [
      "simulate",
      "--server",
      base,
      "--app",
      "fleet",
      "--hosts",
      "20",
      "--version",
      "1.0.0",
      "--until",
      "2.0.0",
      "--rounds",
      "8",
      "--json",
    ],
    { encoding: "utf8" },
  );
  assert.equal(sim.status, 0, sim.stderr);
  assert.deepEqual(JSON.parse(sim.stdout).versions, { "2.0.0": 20 });
});
