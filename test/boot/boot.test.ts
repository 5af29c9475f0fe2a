/**
 * Boot acceptance under QEMU (TCG) on `slipway build` output (test/boot/fixture.ts):
 *
 *   - UEFI, dev build: USR-A read-only, ROOT grown into a 3 GiB disk, no failed units;
 *   - BIOS, prod build: the same through dm-verity (and `veritysetup verify` on its usr.img
 *     with the root hash meta.json records);
 *   - UEFI: a second build's usr.img, kernel and initrd installed into USR-B of the dev disk
 *     (src/boot/image-slots.ts, the offline twin of the agent's install), B at priority 2 with
 *     one try: boots B, the try used up; on the image-sized disk repart is skipped and nothing
 *     mounts the ESP (the everyday boot's costs kept off);
 *   - BIOS: B corrupted and on trial again, the disk grown to 3 GiB: the machine falls back
 *     to A by itself, and that boot is the dev build's BIOS acceptance boot (USR-A read-only,
 *     ROOT grown, no failed units), so both firmwares boot the dev USR-A without a sixth boot;
 *   - GRUB: B's kernel missing from the ESP: GRUB boots A in the same boot.
 *
 * Four full boots (one with a failing attempt first) and one that stops at the kernel.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  espImageSpec,
  installSlotIntoDisk,
  readBootStateFromDisk,
  writeBootStateToDisk,
} from "../../src/boot/image-slots.ts";
import { setPrimary } from "../../src/boot/slots.ts";
import { runTool } from "../../src/boot/tool.ts";
import { verifyUsrImage } from "../../src/boot/usr-image.ts";
import { getSlotAttributes, readGpt } from "../../src/disk/gpt.ts";
import { type Firmware, startQemu } from "../../src/vm/qemu.ts";
import {
  artifact,
  type BootBuilds,
  type BootReport,
  bootBuilds,
  parseReport,
  REPORT_END,
  TEST_CACHE,
} from "./fixture.ts";

/** Per boot attempt; ~60 s on an idle 2-core box, 250–320 s seen with 6+ other VMs running. */
const BOOT_TIMEOUT_MS = Number(process.env.SLIPWAY_BOOT_TIMEOUT ?? 480) * 1000;
const canRun = process.getuid?.() === 0 && existsSync("/usr/bin/qemu-system-x86_64");
const skip = canRun ? false : "needs root (slipway build) and qemu-system-x86";
const GiB = 2 ** 30;

let builds: BootBuilds;
/** The dev disk with B installed, shared by the A/B tests in order. */
const abDisk = `/var/tmp/slipway-boot-test-${process.pid}.img`;

before(async () => {
  if (skip) return;
  builds = await bootBuilds();
  process.stderr.write(
    `# builds: ${builds.seconds} s (${builds.a.workDir}, ${builds.b.workDir}, ${builds.prod.workDir})\n`,
  );
});

after(async () => {
  await rm(abDisk, { force: true });
});

async function boot(
  name: string,
  disk: string,
  firmware: Firmware,
  opts: { snapshot: boolean; diskSize?: bigint; attempts?: number },
) {
  const t0 = Date.now();
  const vm = await startQemu({
    disk,
    firmware,
    accel: "tcg",
    snapshot: opts.snapshot,
    diskSize: opts.diskSize,
    // Kept for debugging a failed run; overwritten by the next one.
    consoleLog: join(TEST_CACHE, `last-boot-${name}.log`),
  });
  try {
    await vm.waitForLine(new RegExp(REPORT_END), BOOT_TIMEOUT_MS * (opts.attempts ?? 1));
    await Promise.race([vm.exited, new Promise((r) => setTimeout(r, 60_000))]);
  } finally {
    await vm.kill();
  }
  const seconds = Math.round((Date.now() - t0) / 1000);
  process.stderr.write(`# ${name} (${firmware}): ${seconds} s\n`);
  return { report: parseReport(vm.lines), lines: vm.lines, seconds };
}

function assertHealthy(r: BootReport, slot: "a" | "b", usrId: string, usrSource: string): void {
  assert.deepEqual(r.failed, [], `failed units: ${r.failed.join("; ")}`);
  assert.equal(r.state, "running");
  assert.equal(r.slot, slot);
  assert.equal(r.usrId, usrId);
  assert.equal(r.usrMount[0], usrSource);
  assert.equal(r.usrMount[1], "erofs");
  assert.match(r.usrMount[2] ?? "", /(^|,)ro(,|$)/);
  assert.deepEqual(r.rootMount, ["/dev/vda9", "ext4"]);
}

/** ROOT (partition 9) must now run from its start to the end of the grown disk. */
function assertGrown(r: BootReport, disk: string, diskBytes: number): void {
  assert.equal(r.diskBytes, diskBytes);
  assert.equal(r.repart, "active", "systemd-repart ran: the disk had room after ROOT");
  const root = readGpt(disk).partitions.find((p) => p.number === 9)!;
  const expected = diskBytes - Number(root.firstLba) * 512;
  // repart leaves at most the backup GPT and alignment slack at the end.
  assert.ok(
    r.rootPartBytes > expected - 4 * 2 ** 20 && r.rootPartBytes <= expected,
    `ROOT partition is ${r.rootPartBytes} bytes, expected ~${expected}`,
  );
  // growfs resized ext4 online (df leaves out the journal and metadata).
  assert.ok(r.rootBytes > r.rootPartBytes * 0.9, `ROOT ext4 is ${r.rootBytes} bytes`);
}

test("UEFI: the dev build boots USR-A to multi-user, ROOT grows into a 3 GiB disk", {
  skip,
}, async () => {
  const disk = artifact(builds.a, "disk");
  const { report, lines } = await boot("uefi-a", disk, "uefi", {
    snapshot: true,
    diskSize: BigInt(3 * GiB),
  });
  assertHealthy(report, "a", "A", "/dev/vda3");
  assert.equal(report.usrVerity, "", "dev images mount /usr without dm-verity");
  assert.ok(lines.some((l) => l.includes("Reached target multi-user.target")));
  assertGrown(report, disk, 3 * GiB);
});

test("BIOS: the prod build boots USR-A through dm-verity, ROOT grows; veritysetup verify passes", {
  skip,
}, async () => {
  const { prod } = builds;
  const verity = (prod.meta.boot as { verity: { rootHash: string; hashOffset: number } | null })
    .verity;
  assert.ok(verity, "meta.json boot.verity of a prod build");
  assert.equal(prod.meta.usr.verityRootHash, verity.rootHash);
  await verifyUsrImage(artifact(prod, "usr"), verity);
  const wrong = verity.rootHash.replace(/^./, (c) => (c === "0" ? "1" : "0"));
  await assert.rejects(verifyUsrImage(artifact(prod, "usr"), { ...verity, rootHash: wrong }));
  assert.match(
    prod.meta.kernelCmdline,
    new RegExp(`usrhash=${verity.rootHash}|${verity.rootHash}`),
  );

  const disk = artifact(prod, "disk");
  const { report } = await boot("bios-prod", disk, "bios", {
    snapshot: true,
    diskSize: BigInt(3 * GiB),
  });
  assertHealthy(report, "a", "P", "/dev/mapper/usr");
  assert.equal(report.usrVerity, "CRYPT-VERITY");
  assertGrown(report, disk, 3 * GiB);
});

test("UEFI: a second build written into USR-B at priority 2, tries 1 boots B (the try used up)", {
  skip,
}, async () => {
  const { a, b } = builds;
  await runTool("cp", ["--sparse=always", artifact(a, "disk"), abDisk]);
  await installSlotIntoDisk({
    disk: abDisk,
    slot: "B",
    usrImage: artifact(b, "usr"),
    kernel: artifact(b, "kernel"),
    initrd: artifact(b, "initrd"),
  });
  await writeBootStateToDisk(
    abDisk,
    setPrimary(await readBootStateFromDisk(abDisk), "B", { tries: 1 }),
  );
  const attrs = getSlotAttributes(
    readGpt(abDisk).partitions.find((p) => p.number === 4)!.attributes,
  );
  assert.deepEqual(attrs, { priority: 2, tries: 1, successful: 0 });

  const { report } = await boot("uefi-b", abDisk, "uefi", { snapshot: false });
  assertHealthy(report, "b", "B", "/dev/vda4");
  // The disk is the image's size: no room after ROOT, so repart is skipped (as on every boot
  // after the one that grew ROOT), and nothing in the boot mounted the ESP.
  assert.equal(report.repart, "inactive", "systemd-repart skipped");
  assert.equal(report.bootMount, "inactive", "/boot (the ESP automount) left unmounted");
  // GRUB used up the try before booting; nothing marked B good.
  const state = await readBootStateFromDisk(abDisk);
  assert.deepEqual(state.B, { priority: 2, tries: 0, successful: 0 });
  assert.deepEqual(state.A, { priority: 1, tries: 0, successful: 1 });
});

test("BIOS: a corrupt USR-B on trial falls back to the dev build's USR-A, which boots to multi-user, ROOT grown into a 3 GiB disk", {
  skip,
}, async () => {
  assert.ok(existsSync(abDisk), "the USR-B test prepares this disk");
  await writeBootStateToDisk(
    abDisk,
    setPrimary(await readBootStateFromDisk(abDisk), "B", { tries: 1 }),
  );
  // Wipe B's first 4 MiB (erofs superblock): mounting /usr fails in the initrd.
  const b = readGpt(abDisk).partitions.find((p) => p.number === 4)!;
  await runTool("dd", [
    "if=/dev/zero",
    `of=${abDisk}`,
    "bs=1M",
    "count=4",
    `seek=${b.firstLba / 2048n}`,
    "conv=notrunc",
    "status=none",
  ]);

  // The B boot left the disk at the image's size: ROOT can only grow in this boot, on A.
  assert.ok(statSync(abDisk).size < 3 * GiB);
  const { report, lines } = await boot("bios-fallback", abDisk, "bios", {
    snapshot: false,
    diskSize: BigInt(3 * GiB),
    attempts: 2,
  });
  assert.ok(
    lines.some((l) => /Command line:.*slipway\.slot=b/.test(l)),
    "B was tried first",
  );
  assertHealthy(report, "a", "A", "/dev/vda3");
  assert.equal(report.usrVerity, "", "dev images mount /usr without dm-verity");
  assert.ok(lines.some((l) => l.includes("Reached target multi-user.target")));
  assertGrown(report, abDisk, 3 * GiB);
  const state = await readBootStateFromDisk(abDisk);
  assert.equal(state.B.tries, 0);
  assert.equal(state.B.successful, 0);
});

test("GRUB: a slot whose kernel is missing from the ESP falls back to the other in the same boot", {
  skip,
}, async () => {
  assert.ok(existsSync(abDisk), "the USR-B test prepares this disk");
  await runTool("mdel", ["-i", espImageSpec(abDisk), "::/slipway/usr-b/vmlinuz"], {
    env: { MTOOLS_SKIP_CHECK: "1" },
  });
  await writeBootStateToDisk(
    abDisk,
    setPrimary(await readBootStateFromDisk(abDisk), "B", { tries: 1 }),
  );
  const vm = await startQemu({
    disk: abDisk,
    firmware: "uefi",
    accel: "tcg",
    snapshot: false,
    consoleLog: join(TEST_CACHE, "last-boot-grub-fallback.log"),
  });
  try {
    // Only GRUB's decision matters: stop once the kernel reports its command line.
    const line = await vm.waitForLine(/Command line:/, BOOT_TIMEOUT_MS);
    assert.match(line, /slipway\.slot=a/);
  } finally {
    await vm.kill();
  }
  assert.equal((await readBootStateFromDisk(abDisk)).B.tries, 0, "the failed try was counted");
});
