import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_SIZES, makeGuid, partitionByRole, planLayout } from "../../src/disk/layout.ts";
import { InputError } from "../../src/errors.ts";

test("default layout follows DESIGN §4: numbers, labels, types, 2 MiB alignment", () => {
  const plan = planLayout({ guidSeed: "x" });
  assert.deepEqual(
    plan.partitions.map((p) => [p.number, p.label]),
    [
      [1, "EFI-SYSTEM"],
      [2, "BIOS-BOOT"],
      [3, "USR-A"],
      [4, "USR-B"],
      [6, "OEM"],
      [7, "OEM-CONFIG"],
      [9, "ROOT"],
    ],
  );
  assert.equal(partitionByRole(plan, "root").typeGuid, "3884dd41-8582-4404-b9a8-e9b84f2df50e");
  assert.equal(partitionByRole(plan, "usrB").typeGuid, "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6");
  assert.equal(partitionByRole(plan, "oemConfig").typeGuid, "c95dc21a-df0e-4340-8d7b-26cbfa9a03e0");
  let prevEnd = 0n;
  for (const p of plan.partitions) {
    assert.equal(p.startLba % 4096n, 0n, `${p.label} aligned`);
    assert.ok(p.startLba >= prevEnd, `${p.label} does not overlap`);
    prevEnd = p.startLba + p.sizeLba;
  }
  assert.equal(partitionByRole(plan, "esp").startLba, 4096n);
  assert.equal(partitionByRole(plan, "usrA").size, BigInt(DEFAULT_SIZES.usrMiB) << 20n);
  // Room for the backup GPT after ROOT, and a 2 MiB-multiple total.
  assert.ok(plan.totalSectors - prevEnd >= 33n);
  assert.equal(plan.size % (2n << 20n), 0n);
  assert.equal(plan.size, plan.totalSectors * 512n);
});

test("GUIDs are unique, stable per seed and random without one", () => {
  const a = planLayout({ guidSeed: "s" });
  const b = planLayout({ guidSeed: "s" });
  assert.deepEqual(a, b);
  const guids = new Set([a.diskGuid, ...a.partitions.map((p) => p.uniqueGuid)]);
  assert.equal(guids.size, 8);
  for (const g of guids)
    assert.match(g, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(planLayout().diskGuid, planLayout().diskGuid);
  assert.notEqual(makeGuid("s", "a"), makeGuid("s", "b"));
});

test("small CI sizes and bad sizes", () => {
  const plan = planLayout({
    sizes: { usrMiB: 512, rootMiB: 256, espMiB: 128, oemMiB: 16, oemConfigMiB: 8 },
  });
  assert.equal(partitionByRole(plan, "usrA").size, 512n << 20n);
  assert.throws(() => planLayout({ sizes: { usrMiB: 0 } }), InputError);
  assert.throws(() => planLayout({ sizes: { rootMiB: 1.5 } }), /whole number/);
  assert.throws(() => planLayout({ sizes: { espMiB: 16 } }), /FAT32/);
});
