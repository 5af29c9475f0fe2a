/**
 * One host, its whole update life (see scenario.yaml). Every step leaves `status-<step>.txt`
 * (`slipway update status` in the guest) and `gpt-<step>.txt` (`slipway gpt show` next to
 * `cgpt show`) in the output directory; the server's log is `server.log`.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestVm } from "../../../src/vm/harness/machine.ts";
import type { ScriptContext } from "../../../src/vm/harness/runner.ts";
import { dashboardShot } from "../../lifecycle/dashboard.ts";
import { CHANGED_FILE } from "../../lifecycle/images.ts";
import { APP_ID, GROUP } from "../../lifecycle/server.ts";
import type { LifecycleSetup } from "../../lifecycle/setup.ts";
import {
  agentStatus,
  eventList,
  group,
  lockHolders,
  slotAttributes,
  waitForInstance,
  waitForStatus,
} from "../../lifecycle/steps.ts";

/** One boot under TCG on a loaded 2-core host can take several minutes. */
const BOOT_MS = 10 * 60_000;
const ROLLBACK = 10000;

export async function run(vm: TestVm, ctx: ScriptContext): Promise<void> {
  const { server, builds } = ctx.setup as LifecycleSetup;
  const t0 = Date.now();
  const mark = (what: string) => ctx.log(`== ${what} (+${Math.round((Date.now() - t0) / 1000)} s)`);
  const machineId = (await vm.run("cat /etc/machine-id")).stdout.trim();

  // --- 1.0.0 is up and checks in -----------------------------------------------------------
  mark("1.0.0 up");
  let s = await agentStatus(vm, ctx, "1-v1-booted");
  assert.equal(s.currentVersion, "1.0.0");
  assert.equal(s.bootedSlot, "A");
  assert.equal(s.strategy, "fleetlock");
  const conf = (await vm.run("cat /etc/slipway/update.conf")).stdout;
  assert.match(conf, /SERVER="?http:\/\/10\.0\.2\.100\/v1\/update\//, conf);
  // A local /etc edit on 1.0.0 must survive the update (only /usr is replaced).
  await vm.run("echo 'lifecycle: edited on 1.0.0' >> /etc/motd; echo kept > /etc/lifecycle-local");
  const v1File = (await vm.run(`cat ${CHANGED_FILE}`)).stdout;
  let slots = await slotAttributes(vm, ctx, "1-v1-booted");
  assert.deepEqual(slots.A, { priority: 1, tries: 0, successful: 1 });
  await vm.run("slipway update check");
  await waitForInstance(server, machineId, (i) => i.version === "1.0.0", 120_000, "1.0.0 check-in");
  s = await waitForStatus(
    vm,
    (x) => x.state === "idle" && !!x.lastCheckResult,
    120_000,
    "first check",
  );
  assert.match(s.lastCheckResult ?? "", /no update/);

  // --- 2.0.0: delta into USR-B, FleetLock, reboot, marked good, lock released -----------------
  mark("publish 2.0.0");
  const p2 = await server.publish(builds["2.0.0"], [builds["1.0.0"]]);
  const usrBytes = builds["2.0.0"].meta.artifacts.usr?.size ?? 0;
  ctx.log(`2.0.0 delta payload ${p2.bytes} bytes for a ${usrBytes}-byte /usr`);
  assert.ok(p2.bytes < usrBytes / 4, "the 2.0.0 payload is a delta, not the whole /usr");
  let boots = vm.boots;
  await vm.run("slipway update check");
  // Staged: the status shows the new version before the agent takes the lock and reboots.
  const staged = await waitForStatus(
    vm,
    (x) => ["updated-need-reboot", "rebooting"].includes(x.state) || x.newVersion === "2.0.0",
    BOOT_MS,
    "2.0.0 staged",
    () => vm.boots > boots,
  ).catch(() => undefined);
  if (staged) {
    writeFileSync(join(ctx.outDir, "status-2-v2-staged.json"), JSON.stringify(staged, null, 2));
    ctx.log(`[2-v2-staged] ${staged.state}, new version ${staged.newVersion}`);
  }
  mark("waiting for the reboot into 2.0.0");
  await vm.awaitReboot(boots, BOOT_MS);
  mark("2.0.0 up");
  s = await waitForStatus(
    vm,
    (x) => x.state === "idle" && x.history.some((h) => h.event === "healthy"),
    BOOT_MS,
    "2.0.0 health gate",
  );
  s = await agentStatus(vm, ctx, "2-v2-booted");
  assert.equal(s.currentVersion, "2.0.0");
  assert.equal(s.bootedSlot, "B");
  slots = await slotAttributes(vm, ctx, "2-v2-booted");
  assert.deepEqual(slots.B, { priority: 2, tries: 0, successful: 1 }, "USR-B marked good");
  const inst = await waitForInstance(
    server,
    machineId,
    (i) => i.status === "complete" && i.version === "2.0.0",
    120_000,
    "2.0.0 complete",
  );
  const ev = eventList(inst);
  ctx.log(`server events: ${ev.join(" ")}`);
  for (const e of ["13/1", "14/1", "3/1", "3/2"]) assert.ok(ev.includes(e), `event ${e} reported`);
  const done = inst.events.find((e) => e.type === 3 && e.result === 2);
  assert.equal(done?.previousVersion, "1.0.0", "3/2 carries previousversion");
  assert.deepEqual(await lockHolders(server), [], "the FleetLock slot is released");
  const rollout = await server.api<{ statuses?: Record<string, number> }>(
    "GET",
    `/api/apps/${encodeURIComponent(APP_ID)}/groups/${GROUP}/rollout`,
  );
  writeFileSync(join(ctx.outDir, "rollout-2-v2.json"), JSON.stringify(rollout.body, null, 2));
  // The new package's service runs as the system user it created; /etc got its defaults.
  assert.equal((await vm.run("systemctl is-active chrony.service")).stdout.trim(), "active");
  assert.equal((await vm.run("ps -o user= -C chronyd | sort -u")).stdout.trim(), "_chrony");
  await vm.run("test -f /etc/chrony/chrony.conf && getent passwd _chrony");
  assert.match((await vm.run("cat /etc/motd")).stdout, /edited on 1\.0\.0/, "/etc edit kept");
  assert.equal((await vm.run("cat /etc/lifecycle-local")).stdout.trim(), "kept");
  assert.notEqual((await vm.run(`cat ${CHANGED_FILE}`)).stdout, v1File, `${CHANGED_FILE} changed`);

  // --- 3.0.0 fails its health check: back to 2.0.0 by itself, group halted -----------------
  mark("publish 3.0.0 (unhealthy)");
  await server.publish(builds["3.0.0"], [builds["2.0.0"]]);
  boots = vm.boots;
  await vm.run("slipway update check");
  mark("waiting for 3.0.0 and the way back");
  // Two boots: into 3.0.0 (health gate fails, slot marked bad, reboot), back into 2.0.0.
  await vm.awaitReboot(boots, 2 * BOOT_MS, 1);
  mark("back up after 3.0.0");
  s = await waitForStatus(vm, (x) => x.state === "idle", BOOT_MS, "agent settled after 3.0.0");
  s = await agentStatus(vm, ctx, "3-v3-rolled-back");
  assert.equal(s.currentVersion, "2.0.0");
  assert.equal(s.bootedSlot, "B");
  assert.ok(s.failedVersions.includes("3.0.0"), "3.0.0 is not taken again");
  slots = await slotAttributes(vm, ctx, "3-v3-rolled-back");
  assert.equal(slots.A.priority, 0, "USR-A (3.0.0) marked bad");
  assert.equal(slots.A.successful, 0);
  assert.equal(slots.B.successful, 1, "USR-B (2.0.0) still good");
  assert.ok(slots.B.priority > 0, "USR-B (2.0.0) bootable");
  const failed = await waitForInstance(
    server,
    machineId,
    (i) => i.events.some((e) => e.type === 3 && e.result === 0 && e.errorCode === ROLLBACK),
    120_000,
    "3.0.0 rollback report",
  );
  ctx.log(`server events: ${eventList(failed).join(" ")}; status ${failed.status}`);
  const halted = await group(server);
  ctx.log(`group: haltedReason ${halted.haltedReason}`);
  assert.ok(halted.haltedReason, "safe mode halted the group");
  assert.deepEqual(await lockHolders(server), [], "no host holds the reboot lock");
  const shot = await dashboardShot(server, ctx.outDir, "3-halted", "halted");
  ctx.log(`dashboard shows the group halted: ${shot}`);
  const journal3 = await vm.run("journalctl -b -1 -u slipway-agent --no-pager", { check: false });
  writeFileSync(join(ctx.outDir, "agent-3.0.0-boot.txt"), journal3.stdout);
  // The previous boot's journal is there when the journal is persistent.
  if (journal3.stdout.includes("slipway-agent"))
    assert.match(journal3.stdout, /health gate failed on 3\.0\.0/, "3.0.0's agent saw it fail");

  // --- 3.1.0 panics at boot: GRUB falls back to 2.0.0 --------------------------------------
  mark("resume the group, publish 3.1.0 (panics)");
  const resumed = await server.api(
    "POST",
    `/api/apps/${encodeURIComponent(APP_ID)}/groups/${GROUP}/resume`,
  );
  assert.ok(resumed.status < 300, `resume: ${JSON.stringify(resumed.body)}`);
  await server.publish(builds["3.1.0"], [builds["2.0.0"]]);
  boots = vm.boots;
  await vm.run("slipway update check");
  await vm.awaitReboot(boots, 2 * BOOT_MS, 1);
  mark("back up after 3.1.0");
  assert.ok(
    vm.console.some((l) => /Kernel panic - not syncing/.test(l)),
    "3.1.0 panicked (console)",
  );
  s = await waitForStatus(vm, (x) => x.state === "idle", BOOT_MS, "agent settled after 3.1.0");
  s = await agentStatus(vm, ctx, "4-v31-rolled-back");
  assert.equal(s.currentVersion, "2.0.0");
  assert.equal(s.bootedSlot, "B");
  assert.ok(s.failedVersions.includes("3.1.0"), "3.1.0 is not taken again");
  slots = await slotAttributes(vm, ctx, "4-v31-rolled-back");
  assert.equal(slots.A.priority, 0, "USR-A (3.1.0) marked bad");
  assert.equal(slots.B.successful, 1, "USR-B (2.0.0) still good");
  const failed31 = await waitForInstance(
    server,
    machineId,
    (i) =>
      i.events.filter((e) => e.type === 3 && e.result === 0 && e.errorCode === ROLLBACK).length >=
      2,
    120_000,
    "3.1.0 rollback report",
  );
  ctx.log(`server events: ${eventList(failed31).join(" ")}; status ${failed31.status}`);
  assert.ok((await group(server)).haltedReason, "safe mode halted the group again");
  mark("done");
}
