/**
 * Installing a slot's kernel and initrd onto the ESP (src/agent/esp.ts) on
 * real file systems: a small FAT image edited with mtools, and a directory.
 * A pair that does not fit is refused up front, naming the ESP, with the old
 * pair intact and no temp files left; a pair that fits replaces the old one.
 * Through the agent: an update onto a full ESP fails and is reported, the
 * booted slot stays the next boot.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { DirEsp, FatEsp } from "../../src/agent/esp.ts";
import { fatSpace } from "../../src/boot/esp.ts";
import { selectBootSlot } from "../../src/boot/slots.ts";
import { ErrorCode } from "../../src/omaha/index.ts";
import { installKey, makeAgent, until } from "./helpers.ts";
import { makeHost } from "./host-fixture.ts";
import { startOmaha } from "./omaha-fixture.ts";
import { makeRelease } from "./payloads.ts";

const work = mkdtempSync(join(process.env.SLIPWAY_TMP ?? tmpdir(), "slipway-esp-test-"));
after(() => rmSync(work, { recursive: true, force: true }));

const KiB = 1024;
const MiB = 1024 * KiB;
const SLOT_DIR = "/slipway/usr-b";

function pair(kernelBytes: number, initrdBytes: number): [string, Buffer][] {
  return [
    [`${SLOT_DIR}/vmlinuz`, randomBytes(kernelBytes)],
    [`${SLOT_DIR}/initrd`, randomBytes(initrdBytes)],
  ];
}

function slotDirListing(image: string): string[] {
  return execFileSync("mdir", ["-b", "-i", image, `::${SLOT_DIR}`], {
    env: { ...process.env, MTOOLS_SKIP_CHECK: "1" },
    encoding: "utf8",
  })
    .split("\n")
    .filter(Boolean)
    .map((l) => l.trim().replace(/^.*\//, ""))
    .sort();
}

test("a kernel + initrd that do not fit on a FAT ESP are refused before anything changes", async () => {
  const image = join(work, "esp.img");
  // 4 MiB FAT: the same file system a real ESP has, scaled down.
  execFileSync("mkfs.fat", ["-C", image, String(4 * 1024)], { stdio: "ignore" });
  const esp = new FatEsp(image, join(work, "tmp"));
  const old = pair(600 * KiB, 1200 * KiB);
  await esp.writeFiles(old, "USR-B's kernel and initrd");
  const { freeBytes } = await fatSpace(image);

  const tooBig = pair(Math.floor(freeBytes / 2), Math.floor(freeBytes / 2) + 64 * KiB);
  await assert.rejects(esp.writeFiles(tooBig, "USR-B's kernel and initrd"), (err: Error) => {
    assert.match(
      err.message,
      /^ESP full: USR-B's kernel and initrd need \d+\.\d MiB, (\d+\.\d) MiB free on ESP FAT .*esp\.img$/,
    );
    assert.ok(err.message.endsWith(`${(freeBytes / MiB).toFixed(1)} MiB free on ${esp.describe}`));
    return true;
  });
  // Nothing half-written: the old pair is whole, no temp file, no space taken.
  for (const [path, data] of old) assert.deepEqual(await esp.read(path), data);
  assert.deepEqual(slotDirListing(image), ["initrd", "vmlinuz"]);
  assert.equal((await fatSpace(image)).freeBytes, freeBytes);

  // A pair that fits beside the old one replaces it, and the old one's space comes back.
  const next = pair(Math.floor(freeBytes / 4), Math.floor(freeBytes / 4));
  await esp.writeFiles(next, "USR-B's kernel and initrd");
  for (const [path, data] of next) assert.deepEqual(await esp.read(path), data);
  assert.deepEqual(slotDirListing(image), ["initrd", "vmlinuz"]);
  assert.ok((await fatSpace(image)).freeBytes > freeBytes);
});

test("the FAT ESP's free space is read inside a whole-disk image too (disk@@offset)", async () => {
  const disk = join(work, "disk.img");
  const esp = join(work, "esp-part.img");
  execFileSync("mkfs.fat", ["-C", esp, String(4 * 1024)], { stdio: "ignore" });
  execFileSync("truncate", ["-s", String(6 * MiB), disk]);
  execFileSync("dd", [`if=${esp}`, `of=${disk}`, "bs=1M", "seek=1", "conv=notrunc", "status=none"]);
  const plain = await fatSpace(esp);
  const inDisk = await fatSpace(`${disk}@@${MiB}`);
  assert.deepEqual(inDisk, plain);
  assert.ok(plain.freeBytes > 3 * MiB && plain.freeBytes < 4 * MiB, `${plain.freeBytes}`);
  const store = new FatEsp(disk, join(work, "tmp"), MiB);
  await assert.rejects(
    store.writeFiles(pair(2 * MiB, 2 * MiB), "USR-A's kernel and initrd"),
    /ESP full: USR-A's kernel and initrd need 4\.0 MiB, \d+\.\d MiB free on ESP FAT .*disk\.img@@1048576$/,
  );
});

test("a directory ESP replaces a kernel + initrd together, leaving no temp files", async () => {
  const dir = join(work, "esp-dir");
  mkdirSync(dir);
  const esp = new DirEsp(dir);
  await esp.writeFiles(pair(10 * KiB, 20 * KiB), "USR-B's kernel and initrd");
  const next = pair(30 * KiB, 40 * KiB);
  await esp.writeFiles(next, "USR-B's kernel and initrd");
  for (const [path, data] of next) assert.deepEqual(readFileSync(join(dir, path)), data);
  assert.deepEqual(readdirSync(join(dir, SLOT_DIR)).sort(), ["initrd", "vmlinuz"]);
});

test("an update onto a full ESP fails with ESP full, is reported, and the booted slot stays next", async () => {
  const host = makeHost({ espKind: "fat" });
  const omaha = await startOmaha();
  try {
    installKey(host);
    host.writeConf([`SERVER=${omaha.url}/v1/update/`, "REBOOT_STRATEGY=reboot"]);
    // Leave less room than the new kernel + initrd need (a cluster each, plus directory room).
    const espImage = join(host.root, "dev/disk/by-partlabel/EFI-SYSTEM");
    const { freeBytes, clusterBytes } = await fatSpace(espImage);
    const filler = join(work, "filler");
    writeFileSync(filler, Buffer.alloc(freeBytes - 2 * clusterBytes));
    execFileSync("mcopy", ["-i", espImage, filler, "::/filler"], {
      env: { ...process.env, MTOOLS_SKIP_CHECK: "1" },
    });
    omaha.offer(
      "1.1.0",
      (await makeRelease("1.1.0", { base: readFileSync(host.slotPath("A")) })).payload,
    );
    const before = omaha.events.length;
    const h = makeAgent(host);
    await h.agent.start({ checkNow: true });
    await h.clock.advance(0);
    await until(() => h.agent.status().lastError !== undefined, "the failed install");
    assert.match(
      h.agent.status().lastError ?? "",
      /ESP full: USR-B's kernel and initrd need \d+\.\d MiB, \d+\.\d MiB free on ESP FAT /,
    );
    await until(() => omaha.events.length >= before + 3, "the error report");
    const last = omaha.events.at(-1)!;
    assert.deepEqual(
      { type: last.type, result: last.result, code: last.errorCode },
      { type: 3, result: 0, code: ErrorCode.DownloadWriteError },
    );
    assert.equal(h.reboots, 0);
    assert.equal(selectBootSlot(host.bootState()), "A");
    assert.equal(host.readEsp("/slipway/usr-b/vmlinuz"), undefined);
    assert.equal(host.readEsp("/slipway/usr-b/initrd"), undefined);
    h.agent.stop();
  } finally {
    await omaha.stop();
    host.cleanup();
  }
});
