import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { CORE_BLOCKLIST, MBR_CODE_END, patchCoreImg, patchMbr } from "../../src/boot/bios.ts";

test("patchMbr keeps the partition table and sets the core.img LBA", () => {
  const mbr = Buffer.alloc(512);
  mbr.fill(0xee, MBR_CODE_END, 510); // disk signature + partition table
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const boot = Buffer.alloc(512, 0x11);
  const out = patchMbr(mbr, boot, 135168n);
  assert.equal(out.readBigUInt64LE(0x5c), 135168n);
  assert.equal(out.readUInt16LE(0x66), 0x9090);
  assert.equal(out[0], 0x11);
  assert.equal(out[0x1b7], 0x11);
  assert.deepEqual(out.subarray(MBR_CODE_END, 510), mbr.subarray(MBR_CODE_END, 510));
  assert.equal(out.readUInt16LE(510), 0xaa55);
  assert.equal(mbr[0], 0, "input not modified");
  assert.throws(() => patchMbr(Buffer.alloc(10), boot, 1n));
});

test("patchCoreImg pads to sectors and writes the blocklist", () => {
  const core = Buffer.alloc(1000, 0x22);
  const out = patchCoreImg(core, 135168n);
  assert.equal(out.length, 1024);
  assert.equal(out.readBigUInt64LE(CORE_BLOCKLIST), 135169n);
  assert.equal(out.readUInt16LE(CORE_BLOCKLIST + 8), 1);
  assert.equal(out.readUInt16LE(CORE_BLOCKLIST + 10), 0x820);
  assert.equal(out[1000], 0);
  assert.throws(() => patchCoreImg(Buffer.alloc(512), 1n));
});

test("GRUB's boot.img has the fields where we patch them", () => {
  const boot = readFileSync("/usr/lib/grub/i386-pc/boot.img");
  assert.equal(boot.length, 512);
  // boot.S: kernel_sector is preset to 1, and the drive check is `cmp $0xff, %dl; je`.
  assert.equal(boot.readBigUInt64LE(0x5c), 1n);
  assert.notEqual(boot.readUInt16LE(0x66), 0x9090);
  const diskboot = readFileSync("/usr/lib/grub/i386-pc/diskboot.img");
  // diskboot.S: default blocklist segment 0x820 at the end of the sector.
  assert.equal(diskboot.readUInt16LE(CORE_BLOCKLIST + 10), 0x820);
});
