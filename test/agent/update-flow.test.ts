import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { bootStateStore } from "../../src/agent/bootstate.ts";
import { openEsp } from "../../src/agent/esp.ts";
import { loadState, saveState } from "../../src/agent/store.ts";
import { markBad, selectBootSlot } from "../../src/boot/slots.ts";
import { ErrorCode } from "../../src/omaha/index.ts";
import { generateKeyPair } from "../../src/payload/index.ts";
import { fileEquals, installKey, makeAgent, until } from "./helpers.ts";
import { type HostFixture, makeHost } from "./host-fixture.ts";
import { startOmaha } from "./omaha-fixture.ts";
import { keys, makeRelease } from "./payloads.ts";

const MIN = 60_000;
const omaha = await startOmaha();
after(() => omaha.stop());

const evs = (from = 0) =>
  omaha.events
    .slice(from)
    .map((e) => `${e.type}/${e.result}${e.errorCode ? `/${e.errorCode}` : ""}`);

/** A host offered 1.1.0 under `strategy`, its agent started with a check at once. */
async function offeredAndChecking(host: HostFixture, strategy: "reboot" | "off") {
  installKey(host);
  host.writeConf([`SERVER=${omaha.url}/v1/update/`, `REBOOT_STRATEGY=${strategy}`]);
  omaha.offer("1.1.0", (await makeRelease("1.1.0")).payload);
  const h = makeAgent(host);
  await h.agent.start({ checkNow: true });
  await h.clock.advance(0);
  return h;
}

for (const espKind of ["dir", "fat"] as const) {
  test(`update end to end (ESP ${espKind}): 13/1 14/1 3/1, reboot, health gate, 3/2`, async () => {
    const host = makeHost({ espKind });
    try {
      installKey(host);
      host.writeConf([`SERVER=${omaha.url}/v1/update/`, "REBOOT_STRATEGY=reboot"]);
      const rel = await makeRelease("1.1.0", { base: readFileSync(host.slotPath("A")) });
      omaha.offer("1.1.0", rel.payload);
      const first = omaha.events.length;
      const h = makeAgent(host);
      await h.agent.start();
      assert.equal(h.agent.currentState, "idle");
      // First check at 7 min (jitter pinned to the middle).
      await h.clock.advance(7 * MIN - 1000);
      assert.equal(omaha.checks > 0 && h.agent.status().lastCheck !== undefined, false);
      await h.clock.advance(1000);
      await until(() => h.reboots === 1, "the reboot");
      assert.deepEqual(evs(first), ["13/1", "14/1", "3/1"]);
      assert.ok(fileEquals(host.slotPath("B"), rel.image), "passive slot holds the new image");
      assert.deepEqual(host.readEsp("/slipway/usr-b/vmlinuz"), rel.kernel);
      assert.deepEqual(host.readEsp("/slipway/usr-b/initrd"), rel.initrd);
      assert.match(host.readEsp("/slipway/usr-b/slot.cfg")!.toString(), /mount\.usr=PARTUUID=/);
      const staged = host.bootState();
      assert.deepEqual(staged.B, { priority: 2, tries: 1, successful: 0 });
      assert.deepEqual(staged.A, { priority: 1, tries: 0, successful: 1 });
      const store = bootStateStore(
        openEsp(`${host.root}/dev/disk/by-partlabel/EFI-SYSTEM`, host.root),
        `${host.root}/disk.img`,
      );
      assert.deepEqual(store.readMirror(), staged, "GPT mirror follows grubenv");
      const states = h.agent.status().history.map((t) => t.to);
      assert.deepEqual(states, [
        "health-check",
        "idle",
        "checking",
        "update-available",
        "downloading",
        "verifying",
        "finalizing",
        "updated-need-reboot",
        "rebooting",
      ]);

      // GRUB boots B on its one try; the new agent runs the health gate.
      host.slotVersion.B = "1.1.0";
      assert.equal(host.reboot(), "B");
      const after = makeAgent(host);
      await after.agent.start();
      assert.equal(after.agent.currentState, "idle");
      const done = omaha.events.at(-1)!;
      assert.deepEqual(
        { type: done.type, result: done.result, prev: done.previousVersion, version: done.version },
        { type: 3, result: 2, prev: "1.0.0", version: "1.1.0" },
      );
      assert.deepEqual(host.bootState().B, { priority: 2, tries: 0, successful: 1 });
      assert.deepEqual(store.readMirror(), host.bootState());
    } finally {
      host.cleanup();
    }
  });
}

test("the new slot fails to boot: GRUB falls back, 3/0 with the rollback code, version not retried", async () => {
  const host = makeHost();
  try {
    const h = await offeredAndChecking(host, "reboot");
    await until(() => h.reboots === 1, "the reboot");
    host.slotVersion.B = "1.1.0";
    assert.equal(host.reboot(), "B"); // the kernel panics here: no agent ever runs
    assert.equal(host.reboot(), "A", "tries used up: GRUB falls back by itself");
    const mark = omaha.events.length;
    const back = makeAgent(host);
    await back.agent.start();
    assert.deepEqual(evs(mark), [`3/0/${ErrorCode.Rollback}`]);
    assert.deepEqual(back.agent.status().failedVersions, ["1.1.0"]);
    // Same version offered again: not taken.
    await back.agent.checkNow();
    assert.match(back.agent.status().lastCheckResult ?? "", /not taking 1\.1\.0/);
    // A newer one is.
    const rel = await makeRelease("1.2.0", { base: readFileSync(host.slotPath("A")) });
    omaha.offer("1.2.0", rel.payload);
    await back.agent.checkNow();
    await until(() => back.reboots === 1, "the second reboot");
    assert.ok(fileEquals(host.slotPath("B"), rel.image));
    assert.equal(selectBootSlot(host.bootState()), "B");
  } finally {
    host.cleanup();
  }
});

test("health gate fails after the reboot: slot marked bad, 3/0 reported, reboot back", async () => {
  const host = makeHost();
  try {
    const h = await offeredAndChecking(host, "reboot");
    await until(() => h.reboots === 1, "the reboot");
    host.slotVersion.B = "1.1.0";
    assert.equal(host.reboot(), "B");
    const mark = omaha.events.length;
    const sick = makeAgent(host, { systemState: "degraded" });
    await sick.agent.start();
    assert.equal(sick.reboots, 1, "rebooted back to the old slot");
    assert.equal(evs(mark)[0], `3/0/${ErrorCode.Rollback}`);
    assert.equal(host.reboot(), "A");
    assert.deepEqual(host.bootState().B, { priority: 0, tries: 0, successful: 0 });
  } finally {
    host.cleanup();
  }
});

test("faults: 5xx backs off exponentially, a cut download resumes, a bad signature leaves the slot alone", async () => {
  const host = makeHost();
  try {
    installKey(host);
    host.writeConf([`SERVER=${omaha.url}/v1/update/`, "REBOOT_STRATEGY=off"]);
    // Bad signature first: a payload signed by someone else.
    const good = await makeRelease("2.0.0", { size: 2 * 1024 * 1024 });
    const forged = await makeRelease("2.0.0", { signWith: generateKeyPair("ed25519").privatePem });
    omaha.offer("2.0.0", forged.payload);
    const slotB = readFileSync(host.slotPath("B"));
    const slotA = readFileSync(host.slotPath("A"));
    const before = host.bootState();
    const h = makeAgent(host);
    await h.agent.start({ checkNow: true });
    await h.clock.advance(0);
    await h.agent.idle();
    assert.deepEqual(evs(omaha.events.length - 3), [
      "13/1",
      "14/1",
      `3/0/${ErrorCode.DownloadPayloadVerificationError}`,
    ]);
    assert.ok(readFileSync(host.slotPath("B")).equals(slotB), "passive slot untouched");
    assert.ok(readFileSync(host.slotPath("A")).equals(slotA), "active slot untouched");
    assert.deepEqual(host.bootState(), before);
    assert.match(h.agent.status().lastError ?? "", /does not verify/);
    void keys;

    // Server errors: the wait doubles each time (45 min base → 90, 180).
    omaha.offer("2.0.0", good.payload);
    omaha.failNext = 1;
    const failureEvents = () => omaha.events.filter((e) => e.type === 3 && e.result === 0).length;
    const failuresBefore = failureEvents();
    const t0 = h.clock.now();
    const next = () => Date.parse(h.agent.status().nextCheck!) - h.clock.now();
    // After the signature failure the wait is already doubled once.
    assert.equal(next(), 90 * MIN);
    await h.clock.advance(90 * MIN);
    await h.agent.idle();
    assert.match(h.agent.status().lastError ?? "", /HTTP 503/);
    assert.equal(next(), 180 * MIN);
    // A check that got no answer is not reported as a failed update (no 3/0 event).
    assert.equal(failureEvents(), failuresBefore);
    omaha.truncateNextDownloadAt = 300_000;
    await h.clock.advance(180 * MIN);
    await h.agent.idle();
    assert.match(h.agent.status().lastError ?? "", /interrupted|expected/);
    assert.equal(next(), 240 * MIN, "capped at 4 h");
    await h.clock.advance(240 * MIN);
    await h.agent.idle();
    assert.equal(omaha.rangeRequests.length, 1);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(omaha.rangeRequests[0]!)?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 300_000, `resumed at ${resumedAt}, not from 0`);
    assert.equal(h.agent.currentState, "updated-need-reboot");
    assert.ok(fileEquals(host.slotPath("B"), good.image));
    assert.equal(h.reboots, 0, "REBOOT_STRATEGY=off never reboots");
    assert.ok(h.clock.now() - t0 >= 510 * MIN);
  } finally {
    host.cleanup();
  }
});

test("operator reset undoes a staged update; a failing health.d check blocks marking the slot good", async () => {
  const host = makeHost();
  try {
    const h = await offeredAndChecking(host, "off");
    await h.agent.idle();
    assert.equal(h.agent.currentState, "updated-need-reboot");
    assert.equal(selectBootSlot(host.bootState()), "B");
    await h.agent.reset();
    assert.equal(h.agent.currentState, "idle");
    assert.equal(selectBootSlot(host.bootState()), "A", "reset made B unbootable again");
    assert.deepEqual(host.bootState().B, { priority: 0, tries: 0, successful: 0 });

    // Stage again, reboot into it, but a user health check fails.
    await h.agent.checkNow();
    assert.equal(h.agent.currentState, "updated-need-reboot");
    mkdirSync(join(host.root, "etc/slipway/health.d"), { recursive: true });
    const check = join(host.root, "etc/slipway/health.d/10-app");
    writeFileSync(check, "#!/bin/sh\necho app not serving >&2\nexit 3\n", { mode: 0o755 });
    host.slotVersion.B = "1.1.0";
    assert.equal(host.reboot(), "B");
    const sick = makeAgent(host);
    await sick.agent.start();
    assert.equal(sick.reboots, 1);
    assert.match(sick.logs.join("\n"), /10-app exited 3: app not serving/);
    assert.equal(host.reboot(), "A");
  } finally {
    host.cleanup();
  }
});

test("a failed reboot command leaves the update staged and is retried", async () => {
  const host = makeHost();
  try {
    installKey(host);
    host.writeConf([
      `SERVER=${omaha.url}/v1/update/`,
      "REBOOT_STRATEGY=reboot",
      "LOCK_RETRY_SECONDS=60",
    ]);
    omaha.offer("1.1.0", (await makeRelease("1.1.0")).payload);
    let attempts = 0;
    const h = makeAgent(host, {
      extra: {
        rebootNow: async () => {
          attempts++;
          if (attempts === 1) throw new Error("systemctl: connection refused");
        },
      },
    });
    await h.agent.start({ checkNow: true });
    await h.clock.advance(0);
    await until(() => attempts === 1, "the first reboot attempt");
    await until(() => h.agent.currentState === "updated-need-reboot", "back to staged");
    await h.clock.advance(59_000);
    assert.equal(attempts, 1);
    await h.clock.advance(1000);
    await until(() => attempts === 2, "the retry");
    assert.equal(h.agent.currentState, "rebooting");
  } finally {
    host.cleanup();
  }
});

test("a stop between saving `pending` and making the slot primary: no rollback reported, staged again", async () => {
  const host = makeHost();
  try {
    const h = await offeredAndChecking(host, "off");
    await h.agent.idle();
    assert.equal(h.agent.currentState, "updated-need-reboot");
    h.agent.stop();
    // Undo only the last step (setPrimary), as a kill between the two writes leaves it.
    const store = bootStateStore(
      openEsp(join(host.root, "dev/disk/by-partlabel/EFI-SYSTEM"), host.root),
      join(host.root, "disk.img"),
    );
    await store.write(markBad((await store.read()).state, "B"));
    const stateFile = join(host.root, "var/lib/slipway/agent.json");
    assert.ok(loadState(stateFile).pending, "pending was saved");

    // Same boot: the next agent discards it instead of rebooting into A as if B were staged.
    const same = makeAgent(host);
    same.agent.stop();
    await same.agent.start();
    assert.equal(same.agent.currentState, "idle");
    assert.equal(loadState(stateFile).pending, undefined);
    assert.match(same.logs.join("\n"), /interrupted before the slot was made primary/);

    // After a reboot (a power cut in that window): no 3/0, the version not blacklisted.
    const pending = {
      version: "1.1.0",
      previousVersion: "1.0.0",
      slot: "B" as const,
      stagedAt: new Date().toISOString(),
      bootId: "before-the-power-cut",
    };
    saveState(stateFile, { ...loadState(stateFile), pending });
    assert.equal(host.reboot(), "A");
    const mark = omaha.events.length;
    const back = makeAgent(host);
    await back.agent.start();
    assert.deepEqual(evs(mark), []);
    assert.deepEqual(back.agent.status().failedVersions, []);
    await back.agent.checkNow();
    assert.equal(back.agent.currentState, "updated-need-reboot", "the update is staged again");
    assert.equal(selectBootSlot(host.bootState()), "B");
    back.agent.stop();
  } finally {
    host.cleanup();
  }
});
