/** Filesystem images and the ESP, checked by the tools that own the formats. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { buildEsp, fatSpace, mtoolsGet, mtoolsPut } from "../../src/boot/esp.ts";
import { parseGrubEnv } from "../../src/boot/grubenv.ts";
import { espImageSpec, installSlotIntoDisk } from "../../src/boot/image-slots.ts";
import { bootStateFromEnv, initialBootState } from "../../src/boot/slots.ts";
import { runTool } from "../../src/boot/tool.ts";
import { buildUsrImage, checkErofs, verifyUsrImage } from "../../src/boot/usr-image.ts";
import { buildExt4Image, checkExt4 } from "../../src/disk/ext4.ts";
import { createGpt, writeGpt } from "../../src/disk/gpt.ts";

const dir = mkdtempSync(join(tmpdir(), "slipway-images-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const tree = join(dir, "tree");
mkdirSync(join(tree, "usr/lib/x"), { recursive: true });
mkdirSync(join(tree, "etc"), { recursive: true });
for (let i = 0; i < 50; i++)
  writeFileSync(join(tree, `usr/lib/x/f${i}`), `file ${i}\n`.repeat(500 * i));
writeFileSync(join(tree, "etc/hostname"), "h\n");

const base = {
  tree,
  uuid: "01234567-89ab-4cde-8f01-23456789abcd",
  timestamp: 1_700_000_000,
};

test("erofs /usr image: reproducible, fsck.erofs clean, both compressions", async () => {
  for (const compression of ["uncompressed", "lz4hc"] as const) {
    const a = await buildUsrImage({ ...base, compression, out: join(dir, `a-${compression}.img`) });
    const b = await buildUsrImage({ ...base, compression, out: join(dir, `b-${compression}.img`) });
    assert.deepEqual(
      readFileSync(a.path),
      readFileSync(b.path),
      `${compression} is byte-identical on rebuild`,
    );
    assert.equal(a.size % 4096, 0);
    await checkErofs(a.path);
  }
});

test("dm-verity hash tree after the data: veritysetup verify passes, a flipped byte fails", async () => {
  const salt = "5a".repeat(32);
  const r = await buildUsrImage({
    ...base,
    compression: "uncompressed",
    out: join(dir, "v.img"),
    verity: { salt, uuid: "11111111-2222-4333-8444-555555555555" },
  });
  assert.ok(r.verity);
  assert.match(r.verity.rootHash, /^[0-9a-f]{64}$/);
  assert.equal(r.verity.hashOffset, r.dataSize);
  assert.ok(r.size > r.dataSize);
  await verifyUsrImage(r.path, r.verity);
  const again = await buildUsrImage({
    ...base,
    compression: "uncompressed",
    out: join(dir, "v2.img"),
    verity: { salt, uuid: "11111111-2222-4333-8444-555555555555" },
  });
  assert.equal(again.verity?.rootHash, r.verity.rootHash, "same input, same root hash");
  const img = readFileSync(r.path);
  img[8192] = (img[8192] ?? 0) ^ 0xff;
  writeFileSync(r.path, img);
  await assert.rejects(verifyUsrImage(r.path, r.verity), /veritysetup/);
});

test("ext4 images: e2fsck -fn clean, label and UUID set, content present", async () => {
  const out = join(dir, "root.img");
  await buildExt4Image({
    out,
    sizeMiB: 32,
    label: "ROOT",
    uuid: base.uuid,
    sourceDir: join(tree, "etc"),
  });
  await checkExt4(out);
  const info = await runTool("dumpe2fs", ["-h", out]);
  assert.match(info, /Filesystem volume name:\s+ROOT/);
  assert.match(info, new RegExp(`Filesystem UUID:\\s+${base.uuid}`));
  assert.match(await runTool("debugfs", ["-R", "cat /hostname", out]), /^h$/m);
  await assert.rejects(
    buildExt4Image({ out, sizeMiB: 8, label: "x".repeat(17), uuid: base.uuid }),
    /longer than 16/,
  );
});

test("ESP: FAT32 with BOOTX64.EFI, grub.cfg, initial grubenv and slot files", async () => {
  const kernel = join(dir, "vmlinuz");
  const initrd = join(dir, "initrd");
  writeFileSync(kernel, "KERNEL");
  writeFileSync(initrd, "INITRD");
  const out = join(dir, "esp.img");
  await buildEsp({
    out,
    sizeMiB: 40,
    volumeId: 0x1234abcd,
    efiImage: Buffer.from("EFI"),
    grubCfg: "# cfg\n",
    bootState: initialBootState(),
    slots: { A: { kernel, initrd, slotCfg: "set slot_usr_args=x\n" } },
  });
  await runTool("fsck.fat", ["-n", out]);
  assert.equal((await mtoolsGet(out, "/EFI/BOOT/BOOTX64.EFI")).toString(), "EFI");
  assert.equal((await mtoolsGet(out, "/slipway/usr-a/vmlinuz")).toString(), "KERNEL");
  assert.equal((await mtoolsGet(out, "/slipway/usr-a/initrd")).toString(), "INITRD");
  const env = await mtoolsGet(out, "/slipway/grub/grubenv");
  assert.equal(env.length, 1024);
  assert.deepEqual(bootStateFromEnv(parseGrubEnv(env)), initialBootState());
  assert.match(await runTool("minfo", ["-i", out, "::"]), /serial number: 1234ABCD/i);
});

test("installing a slot whose kernel + initrd do not fit on the ESP changes nothing on the disk", async () => {
  // A 16 MiB disk: a 4 MiB FAT ESP at 1 MiB holding slot A's pair, a 4 MiB USR-B after it.
  const MiB = 1024 * 1024;
  const disk = join(dir, "slots.img");
  writeFileSync(disk, "");
  truncateSync(disk, 16 * MiB);
  const table = createGpt(disk);
  table.partitions.push(
    {
      number: 1,
      label: "EFI-SYSTEM",
      typeGuid: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
      uniqueGuid: "0e5f0e5f-0000-4000-8000-000000000001",
      firstLba: 2048n,
      lastLba: 10239n,
      attributes: 0n,
    },
    {
      number: 4,
      label: "USR-B",
      typeGuid: "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6",
      uniqueGuid: "0e5f0e5f-0000-4000-8000-000000000004",
      firstLba: 10240n,
      lastLba: 18431n,
      attributes: 0n,
    },
  );
  writeGpt(disk, table);
  const fat = join(dir, "small-esp.img");
  await runTool("mkfs.fat", ["-C", fat, String(4 * 1024)]);
  await runTool("dd", [
    `if=${fat}`,
    `of=${disk}`,
    "bs=1M",
    "seek=1",
    "conv=notrunc",
    "status=none",
  ]);
  const esp = espImageSpec(disk);
  const file = (name: string, bytes: number) => {
    const p = join(dir, name);
    writeFileSync(p, randomBytes(bytes));
    return p;
  };
  await mtoolsPut(
    esp,
    [],
    [
      [file("a-kernel", MiB), "/slipway/usr-a/vmlinuz"],
      [file("a-initrd", MiB), "/slipway/usr-a/initrd"],
    ],
  );
  const { freeBytes } = await fatSpace(esp);
  const before = readFileSync(disk);
  const usr = file("b-usr", 2 * MiB);

  await assert.rejects(
    installSlotIntoDisk({
      disk,
      slot: "B",
      usrImage: usr,
      kernel: file("b-kernel", Math.floor(freeBytes / 2)),
      initrd: file("b-initrd", Math.floor(freeBytes / 2) + 64 * 1024),
    }),
    new RegExp(
      `ESP full: USR-B's kernel and initrd need \\d+\\.\\d MiB, ${(freeBytes / MiB).toFixed(1)} MiB free on .*slots\\.img@@1048576$`,
    ),
  );
  assert.ok(readFileSync(disk).equals(before), "the disk is byte for byte as it was");

  const kernel = file("b-kernel-small", MiB / 2);
  await installSlotIntoDisk({ disk, slot: "B", usrImage: usr, kernel, initrd: kernel });
  assert.deepEqual(await mtoolsGet(esp, "/slipway/usr-b/initrd"), readFileSync(kernel));
  assert.deepEqual(readFileSync(disk).subarray(5 * MiB, 7 * MiB), readFileSync(usr));
});
