import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { EtcdClient, EtcdUnavailableError } from "../../src/lock/etcd.ts";
import { EtcdSemaphore, semaphoreKey } from "../../src/lock/etcd-semaphore.ts";
import { parseSemaphore } from "../../src/lock/semaphore.ts";
import { type EtcdFixture, freePort, startEtcd } from "./etcd-fixture.ts";
import { watchKey } from "./etcd-watch.ts";

const repo = join(import.meta.dirname, "../..");
let etcd: EtcdFixture;
/**
 * The host-side `slipway` (agent, update, lock: what the image bundle runs),
 * on Node 24 from source; the full bin/slipway loads every command group and
 * starts ~5x slower.
 */
const slipwayLock = [process.execPath, join(repo, "src/agent/bundle-main.ts")];

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("50 concurrent clients with max 2: never more than 2 holders, everyone gets a turn", async () => {
  const group = "fifty";
  const admin = new EtcdSemaphore({ client: new EtcdClient({ endpoints: [etcd.url] }), group });
  assert.equal(await admin.setMax(2), 1, "a new semaphore starts with the default max 1");
  const watch = watchKey(etcd.url, semaphoreKey(group));
  await watch.ready;

  const served: string[] = [];
  const worker = async (i: number) => {
    // Each client has its own HTTP client, like separate hosts.
    const sem = new EtcdSemaphore({ client: new EtcdClient({ endpoints: [etcd.url] }), group });
    const id = `host-${i}`;
    while (!(await sem.lock(id))) await sleep(5 + Math.random() * 20);
    served.push(id);
    await sleep(10);
    assert.equal(await sem.unlock(id), true);
  };
  await Promise.all(Array.from({ length: 50 }, (_, i) => worker(i)));
  await sleep(200); // let the watch deliver the last events
  watch.stop();

  assert.equal(new Set(served).size, 50);
  const counts = watch.values.map((v) => parseSemaphore(v, "watch").holders.length);
  assert.ok(counts.length >= 100, `saw ${counts.length} changes`);
  assert.ok(Math.max(...counts) <= 2, `at most 2 holders, saw ${Math.max(...counts)}`);
  assert.equal(Math.max(...counts), 2, "the two places were used in parallel");
  assert.deepEqual((await admin.status()).holders, []);
});

test("a holder that dies keeps its place until `slipway lock unlock` frees it", async () => {
  const group = "dead";
  const script = `
    import { EtcdClient } from "${repo}/src/lock/etcd.ts";
    import { EtcdSemaphore } from "${repo}/src/lock/etcd-semaphore.ts";
    const sem = new EtcdSemaphore({ client: new EtcdClient({ endpoints: ["${etcd.url}"] }), group: "${group}" });
    if (!(await sem.lock("dead-host"))) process.exit(3);
    process.stdout.write("locked\\n");
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [first] = (await once(child.stdout, "data")) as [Buffer];
  assert.equal(first.toString().trim(), "locked");
  child.kill("SIGKILL");
  await once(child, "exit");

  const other = new EtcdSemaphore({ client: new EtcdClient({ endpoints: [etcd.url] }), group });
  assert.equal(await other.lock("live-host"), false, "the dead host still holds the only place");
  const cli = (...args: string[]) =>
    spawnSync(
      slipwayLock[0]!,
      [...slipwayLock.slice(1), "lock", ...args, "--group", group, "--endpoints", etcd.url],
      {
        encoding: "utf8",
      },
    );
  const status = cli("status", "--json");
  assert.equal(status.status, 0, status.stderr);
  assert.deepEqual(JSON.parse(status.stdout).holders, ["dead-host"]);

  const unlock = cli("unlock", "dead-host");
  assert.equal(unlock.status, 0, unlock.stderr);
  assert.match(unlock.stdout, /dead-host released/);
  assert.equal(await other.lock("live-host"), true);
  const again = cli("unlock", "dead-host");
  assert.equal(again.status, 1, "unlocking a non-holder fails loudly");
});

test("set-max and lock/unlock through the CLI; bad input exits 2", async () => {
  const run = (...args: string[]) =>
    spawnSync(
      slipwayLock[0]!,
      [...slipwayLock.slice(1), "lock", ...args, "--group", "cli", "--endpoints", etcd.url],
      {
        encoding: "utf8",
      },
    );
  assert.equal(run("set-max", "3").status, 0);
  assert.equal(run("lock", "a").status, 0);
  const st = JSON.parse(run("status", "--json").stdout);
  assert.deepEqual({ total: st.total_slots, holders: st.holders }, { total: 3, holders: ["a"] });
  assert.equal(run("set-max", "many").status, 2);
});

test("etcd unreachable is an error, never a silent success", async () => {
  const port = await freePort();
  const sem = new EtcdSemaphore({
    client: new EtcdClient({ endpoints: [`http://127.0.0.1:${port}`], timeoutMs: 1000 }),
    group: "down",
  });
  await assert.rejects(sem.lock("h"), EtcdUnavailableError);
});

test("a second endpoint is used when the first is down", async () => {
  const port = await freePort();
  const sem = new EtcdSemaphore({
    client: new EtcdClient({ endpoints: [`http://127.0.0.1:${port}`, etcd.url] }),
    group: "failover",
  });
  assert.equal(await sem.lock("h"), true);
});
