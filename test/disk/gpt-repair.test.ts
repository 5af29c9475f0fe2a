/**
 * Damage and recovery: a table with one bad copy is still read (with a
 * warning) and `slipway gpt repair` restores it; the backup moves to the end of
 * a grown disk; every intermediate state of a write leaves a readable table.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, truncateSync, writeSync } from "node:fs";
import { after, before, test } from "node:test";
import {
  addPartition,
  bufferDisk,
  createGpt,
  emptyTable,
  type GptTable,
  inspectGpt,
  readGpt,
  readGptBuffer,
  relocateBackup,
  writeGpt,
  writeGptTo,
} from "../../src/disk/gpt.ts";
import { cli, run, scratchDir, sparseImage } from "./helpers.ts";

let dir: string;
let cleanup: () => void;
before(() => ({ dir, cleanup } = scratchDir()));
after(() => cleanup());

const SIZE = 64 << 20;
const SECTORS = SIZE / 512;

function sampleTable(diskBytes: bigint): GptTable {
  let t = emptyTable(diskBytes);
  t = addPartition(t, { number: 1, type: "efi", label: "EFI-SYSTEM", sizeLba: 16384n });
  t = addPartition(t, {
    number: 3,
    type: "coreos-rootfs",
    label: "USR-A",
    sizeLba: 16384n,
    priority: 1,
    successful: 1,
  });
  t = addPartition(t, { number: 4, type: "coreos-rootfs", label: "USR-B", sizeLba: 16384n });
  return addPartition(t, { number: 9, type: "coreos-resize", label: "ROOT" });
}

function image(name: string): { path: string; table: GptTable } {
  const path = sparseImage(`${dir}/${name}`, SIZE);
  createGpt(path);
  const table = sampleTable(BigInt(SIZE));
  writeGpt(path, table);
  return { path, table: readGpt(path) };
}

/** Overwrite `bytes` at byte offset `at`. */
function damage(path: string, at: number, bytes: number[]): void {
  const fd = openSync(path, "r+");
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, at);
  closeSync(fd);
}

/** What sgdisk prints (it still says "No problems found") when it had to fall back to one copy. */
const SGDISK_DAMAGE = /ERROR|corrupt|CRCs don't match|Invalid CRC/;

function sgdiskVerify(path: string): string {
  const r = run("sgdisk", ["-v", path]);
  return r.stdout + r.stderr;
}

const corruptions: [string, number][] = [
  ["primary header", 512 + 40], // first usable LBA
  ["primary entries", 1024 + 128 * 2 + 60], // a label of entry 3
  ["backup header", (SECTORS - 1) * 512 + 8],
  ["backup entries", (SECTORS - 33) * 512 + 33],
];

for (const [what, at] of corruptions) {
  test(`a damaged ${what} is read with a warning and repaired`, async () => {
    const { path, table } = image(`${what.replace(" ", "-")}.img`);
    damage(path, at, [0xde, 0xad]);
    const which = what.split(" ")[0];
    const show = await cli(["gpt", "show", path, "--json"]);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stderr, new RegExp(`warning: ${path}: ${which} GPT header`));
    assert.equal(JSON.parse(show.stdout).partitions.length, 4);
    assert.match(JSON.parse(show.stdout).warnings[0], new RegExp(`^${which} GPT header`));
    assert.match(sgdiskVerify(path), SGDISK_DAMAGE, "sgdisk sees the damage");

    const r = await cli(["gpt", "repair", path, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).repaired, [which]);
    const v = sgdiskVerify(path);
    assert.match(v, /No problems found/, v);
    assert.doesNotMatch(v, SGDISK_DAMAGE, v);
    const after = inspectGpt(path);
    assert.ok(after.primary.ok && after.backup.ok, "both copies valid");
    assert.deepEqual(after.warnings, []);
    assert.deepEqual(readGpt(path), table, "partitions unchanged");

    const again = await cli(["gpt", "repair", path]);
    assert.equal(again.status, 0);
    assert.match(again.stdout, /nothing to repair/);
  });
}

test("a good primary header with a bad array is combined with the backup's array", async () => {
  const { path, table } = image("mixed.img");
  damage(path, 1024 + 60, [0xde, 0xad]); // primary entries
  damage(path, (SECTORS - 1) * 512 + 40, [1]); // backup header
  const show = await cli(["gpt", "show", path, "--json"]);
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stderr, /using the primary header with the other copy's entry array/);
  const r = await cli(["gpt", "repair", path, "--json"]);
  assert.deepEqual(JSON.parse(r.stdout).repaired, ["primary", "backup"]);
  const v = sgdiskVerify(path);
  assert.match(v, /No problems found/, v);
  assert.doesNotMatch(v, SGDISK_DAMAGE, v);
  assert.deepEqual(readGpt(path), table);
});

test("with both copies damaged, read and repair fail with exit 2 and write nothing", async () => {
  const { path } = image("both.img");
  damage(path, 512 + 40, [1]);
  damage(path, (SECTORS - 1) * 512 + 40, [1]);
  const before = readFileSync(path);
  for (const args of [
    ["show", path],
    ["repair", path],
    ["add", path, "-i", "5", "-s", "8"],
  ]) {
    const r = await cli(["gpt", ...args]);
    assert.equal(r.status, 2, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${path}: .*no valid GPT`));
  }
  assert.ok(readFileSync(path).equals(before), "file unchanged");
});

test("relocate-backup moves the backup to the end of a grown disk (like sgdisk -e)", () => {
  const { path, table } = image("grow.img");
  truncateSync(path, SIZE * 2);
  const found = inspectGpt(path);
  assert.equal(found.backup.ok && found.backup.copy.headerLba, BigInt(SECTORS - 1));
  assert.ok(found.warnings.some((w) => /not at the end of the disk/.test(w)));
  const r = relocateBackup(path);
  assert.equal(r.moved, true);
  assert.equal(r.lastUsableLba, BigInt(SECTORS * 2 - 34));
  const v = run("sgdisk", ["-v", path]);
  assert.match(v.stdout, /No problems found/, v.stdout);
  const grown = readGpt(path);
  assert.deepEqual(grown.partitions, table.partitions);
  assert.equal(relocateBackup(path).moved, false, "second run is a no-op");
  // The grown space is usable: ROOT can be resized into it.
  const root = grown.partitions.find((p) => p.number === 9)!;
  writeGpt(
    path,
    addPartition(grown, { number: 9, sizeLba: grown.lastUsableLba - root.firstLba + 1n }),
  );
  assert.match(run("sgdisk", ["-v", path]).stdout, /No problems found/);
});

test("every intermediate state of a write leaves a valid table on disk", () => {
  const size = 8 << 20;
  for (const start of ["both valid", "primary damaged", "backup damaged", "blank"]) {
    const buf = Buffer.alloc(size);
    const disk = bufferDisk("mem.img", buf);
    const old = sampleSmall(BigInt(size), "OLD");
    if (start !== "blank") writeGptTo(disk, old);
    if (start === "primary damaged") flip(buf, 512 + 40);
    if (start === "backup damaged") flip(buf, size - 512 + 40);
    const next = sampleSmall(BigInt(size), "NEW");
    const seen: string[] = [];
    const watched = {
      ...disk,
      flush() {
        const t = readGptBuffer("mem.img", Buffer.from(buf), { onWarning: () => {} });
        seen.push(t.partitions[0]!.label);
      },
    };
    writeGptTo(watched, next);
    assert.ok(seen.length >= 2, `${start}: two flushes at least`);
    assert.equal(seen.at(-1), "NEW", start);
    if (start === "both valid")
      assert.equal(seen[0], "OLD", "primary still old after the first copy");
    const final = readGptBuffer("mem.img", buf, { onWarning: (w) => assert.fail(w) });
    assert.equal(final.partitions[0]!.label, "NEW");
  }
});

function flip(buf: Buffer, at: number): void {
  buf.writeUInt8(buf.readUInt8(at) ^ 0xff, at);
}

function sampleSmall(bytes: bigint, label: string): GptTable {
  const t = emptyTable(bytes, { diskGuid: "11111111-2222-3333-4444-555555555555" });
  return addPartition(t, { number: 1, label, sizeLba: 2048n });
}

test("4096-byte sectors: create, add, read back, detect from the header location", () => {
  const size = 64 << 20;
  const buf = Buffer.alloc(size);
  const disk = bufferDisk("4k.img", buf);
  let t = emptyTable(BigInt(size), { sectorSize: 4096 });
  assert.equal(t.firstUsableLba, 6n);
  t = addPartition(t, { number: 1, label: "A", sizeLba: 256n, priority: 3 });
  t = addPartition(t, { number: 2, label: "B" });
  writeGptTo(disk, t);
  assert.equal(buf.subarray(4096, 4104).toString("latin1"), "EFI PART");
  const back = readGptBuffer("4k.img", buf, { onWarning: (w) => assert.fail(w) });
  assert.deepEqual(back, t);
  assert.equal(back.partitions[0]!.firstLba, 256n, "1 MiB aligned in 4 KiB sectors");
  flip(buf, 4096 + 40); // damage the primary: the backup at the last 4 KiB sector is found
  const fromBackup = readGptBuffer("4k.img", buf, { onWarning: () => {} });
  assert.deepEqual(fromBackup.partitions, t.partitions);
});
