/**
 * Block devices: the size comes from probing reads (no ioctls) and the sector
 * size from sysfs. Needs loop devices (root); skipped where losetup cannot run.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  addPartition,
  createGpt,
  getSlotAttributes,
  readGpt,
  writeGpt,
} from "../../src/disk/gpt.ts";
import { run, scratchDir, sparseImage } from "./helpers.ts";

let dir: string;
let cleanup: () => void;
before(() => ({ dir, cleanup } = scratchDir()));
after(() => cleanup());

const canLoop = process.getuid?.() === 0 && run("losetup", ["-f"]).status === 0;

for (const sectorSize of [512, 4096]) {
  test(`GPT on a ${sectorSize}-byte-sector loop device passes sgdisk, sfdisk and cgpt`, {
    skip: !canLoop && "needs root and losetup",
  }, () => {
    const file = sparseImage(`${dir}/loop-${sectorSize}.img`, 64 << 20);
    const attach = run("losetup", ["-f", "--show", "--sector-size", String(sectorSize), file]);
    assert.equal(attach.status, 0, attach.stderr);
    const dev = attach.stdout.trim();
    try {
      const created = createGpt(dev);
      assert.equal(created.sectorSize, sectorSize);
      assert.equal(created.totalSectors, BigInt((64 << 20) / sectorSize));
      let t = addPartition(created, {
        number: 3,
        type: "coreos-rootfs",
        label: "USR-A",
        sizeLba: BigInt((8 << 20) / sectorSize),
        priority: 2,
        tries: 1,
      });
      t = addPartition(t, { number: 9, type: "coreos-resize", label: "ROOT" });
      writeGpt(dev, t);
      assert.deepEqual(readGpt(dev), t);
      const v = run("sgdisk", ["-v", dev]);
      assert.match(v.stdout, /No problems found/, v.stdout + v.stderr);
      assert.equal(run("sfdisk", ["--verify", dev]).status, 0);
      assert.equal(run("cgpt", ["show", "-i", "3", "-P", dev]).stdout.trim(), "2");
      assert.equal(run("cgpt", ["show", "-i", "3", "-T", dev]).stdout.trim(), "1");
      assert.deepEqual(getSlotAttributes(readGpt(dev).partitions[0]!.attributes), {
        priority: 2,
        tries: 1,
        successful: 0,
      });
    } finally {
      run("losetup", ["-d", dev]);
    }
  });
}
