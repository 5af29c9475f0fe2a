/** Filesystem images and the ESP, checked by the tools that own the formats. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { buildEsp, mtoolsGet } from "../../src/boot/esp.ts";
import { parseGrubEnv } from "../../src/boot/grubenv.ts";
import { bootStateFromEnv, initialBootState } from "../../src/boot/slots.ts";
import { runTool } from "../../src/boot/tool.ts";
import { buildUsrImage, checkErofs, verifyUsrImage } from "../../src/boot/usr-image.ts";
import { buildExt4Image, checkExt4 } from "../../src/disk/ext4.ts";

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
