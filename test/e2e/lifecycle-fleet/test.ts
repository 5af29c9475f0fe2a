/**
 * Two hosts, FleetLock with one slot: both stage 2.0.0, and the lock lets only one reboot at a
 * time. Checked from the server's lock log (every take and release, kept as
 * `fleetlock-log.json`): the holding periods never overlap, and each host's reboot (its boot
 * count going up, sampled every second into `boot-history.json`) falls inside its own one.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestVm } from "../../../src/vm/harness/machine.ts";
import type { ScriptContext } from "../../../src/vm/harness/runner.ts";
import type { LifecycleSetup } from "../../lifecycle/setup.ts";
import {
  agentStatus,
  eventList,
  type LockLogEntry,
  lockHolders,
  lockLog,
  sleep,
  waitForInstance,
  waitForStatus,
} from "../../lifecycle/steps.ts";

const BOOT_MS = 12 * 60_000;

export async function run(first: TestVm, ctx: ScriptContext): Promise<void> {
  const { server, builds } = ctx.setup as LifecycleSetup;
  const second = await ctx.startVm("host2");
  await second.waitUntilUp(BOOT_MS);
  const hosts = [first, second];
  const ids: string[] = [];
  for (const [i, vm] of hosts.entries()) {
    ids.push((await vm.run("cat /etc/machine-id")).stdout.trim());
    const s = await agentStatus(vm, ctx, `host${i + 1}-v1`);
    assert.equal(s.currentVersion, "1.0.0");
  }
  assert.notEqual(ids[0], ids[1], "two hosts, two machine ids");

  await server.publish(builds["2.0.0"], [builds["1.0.0"]]);
  const bootsBefore = hosts.map((vm) => vm.boots);

  const logBefore = await lockLog(server);
  const seqBefore = logBefore.at(-1)?.seq ?? 0;
  let log: LockLogEntry[] = [];
  // The hosts' boot counts, once a second, to place each reboot in time.
  const history: { t: number; boots: number[] }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      history.push({ t: Date.now(), boots: hosts.map((vm) => vm.boots) });
      await sleep(1_000);
    }
  })();
  try {
    await Promise.all(hosts.map((vm) => vm.run("slipway update check")));
    await Promise.all(
      hosts.map(async (vm, i) => {
        await vm.awaitReboot(bootsBefore[i]!, 2 * BOOT_MS);
        await waitForStatus(
          vm,
          (x) => x.currentVersion === "2.0.0" && x.state === "idle",
          BOOT_MS,
          `host${i + 1} on 2.0.0`,
        );
      }),
    );
    for (const id of ids) {
      await waitForInstance(
        server,
        id,
        (x) => x.status === "complete" && x.version === "2.0.0",
        120_000,
        `${id} complete`,
      );
    }
    // Both released: wait for the last steady-state.
    const deadline = Date.now() + 120_000;
    while ((await lockHolders(server)).length > 0 && Date.now() < deadline) await sleep(2_000);
  } finally {
    sampling = false;
    await sampler;
    writeFileSync(join(ctx.outDir, "boot-history.json"), JSON.stringify(history, null, 1));
    log = (await lockLog(server).catch(() => [])).filter((e) => e.seq > seqBefore);
    writeFileSync(join(ctx.outDir, "fleetlock-log.json"), JSON.stringify(log, null, 1));
  }
  for (const [i, vm] of hosts.entries()) {
    await agentStatus(vm, ctx, `host${i + 1}-v2`);
    const inst = await waitForInstance(server, ids[i]!, () => true, 10_000, "host");
    ctx.log(`host${i + 1} events: ${eventList(inst).join(" ")}`);
  }
  mkdirSync(join(ctx.outDir, "host2"), { recursive: true });
  await second.saveJournal(join(ctx.outDir, "host2")).catch(() => undefined);

  // One slot: in the log, every take is followed by that holder's release before the next take.
  const periods: { id: string; from: number; to: number }[] = [];
  let holder: LockLogEntry | undefined;
  for (const e of log) {
    if (e.action === "acquired") {
      assert.equal(holder, undefined, `${e.id} took the lock while ${holder?.id} held it`);
      holder = e;
    } else {
      assert.equal(e.action, "released", `slot ${e.action} by an admin, not released by the host`);
      assert.equal(e.id, holder?.id, `${e.id} released a slot it did not hold`);
      periods.push({ id: e.id, from: holder!.at, to: e.at });
      holder = undefined;
    }
  }
  assert.equal(holder, undefined, "every slot released");
  assert.deepEqual(await lockHolders(server), [], "no holder left");
  for (const [i, id] of ids.entries()) {
    const mine = periods.filter((p) => p.id === id);
    assert.equal(
      mine.length,
      1,
      `host${i + 1} took and released the lock once (${JSON.stringify(log)})`,
    );
    const { from, to } = mine[0]!;
    // The boot count is sampled once a second, so a reboot is seen up to a second late.
    const rebootAt = history.find((h) => h.boots[i]! > bootsBefore[i]!)?.t;
    assert.ok(rebootAt !== undefined, `host${i + 1} rebooted`);
    assert.ok(
      rebootAt >= from && rebootAt <= to + 1_000,
      `host${i + 1} rebooted at ${rebootAt} outside its holding period ${from}..${to}`,
    );
    ctx.log(`host${i + 1}: held ${from}..${to}, rebooted at ${rebootAt}`);
  }
}
