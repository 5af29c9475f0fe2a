/**
 * Two hosts, FleetLock with one slot: both stage 2.0.0, and the lock lets only one reboot at a
 * time. The holder history (the server's /api/fleetlock polled every second) is kept as
 * `fleetlock-history.json`; each host's reboot must fall inside its own holding period, and
 * no sample ever shows two holders.
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
  lockHolders,
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

  // Holder history: one sample per second, with the hosts' boot counts at that moment.
  const history: { t: number; holders: string[]; boots: number[] }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      history.push({
        t: Date.now(),
        holders: await lockHolders(server).catch(() => ["?"]),
        boots: hosts.map((vm) => vm.boots),
      });
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
    writeFileSync(join(ctx.outDir, "fleetlock-history.json"), JSON.stringify(history, null, 1));
  }
  for (const [i, vm] of hosts.entries()) {
    await agentStatus(vm, ctx, `host${i + 1}-v2`);
    const inst = await waitForInstance(server, ids[i]!, () => true, 10_000, "host");
    ctx.log(`host${i + 1} events: ${eventList(inst).join(" ")}`);
  }
  mkdirSync(join(ctx.outDir, "host2"), { recursive: true });
  await second.saveJournal(join(ctx.outDir, "host2")).catch(() => undefined);

  const most = Math.max(...history.map((h) => h.holders.length));
  assert.ok(most <= 1, `at most one reboot holder at a time (saw ${most})`);
  assert.deepEqual(await lockHolders(server), [], "every slot released");
  // Each host rebooted (its boot count went up) only while it held the lock.
  for (const [i, id] of ids.entries()) {
    const held = history.filter((h) => h.holders.includes(id));
    assert.ok(held.length > 0, `host${i + 1} held the lock at some point`);
    const from = held[0]!.t;
    const to = held.at(-1)!.t;
    const rebootAt = history.find((h) => h.boots[i]! > bootsBefore[i]!)?.t;
    assert.ok(rebootAt !== undefined, `host${i + 1} rebooted`);
    assert.ok(
      rebootAt >= from && rebootAt <= to + 1_000,
      `host${i + 1} rebooted at ${rebootAt} outside its holding period ${from}..${to}`,
    );
    ctx.log(`host${i + 1}: held ${from}..${to}, rebooted at ${rebootAt}`);
  }
}
