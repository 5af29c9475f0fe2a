/** The GPT building blocks on their own: CRC32, GUIDs, slot attributes, types, edits. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { crc32 } from "../../src/disk/crc32.ts";
import { decodeGuid, encodeGuid } from "../../src/disk/gpt/guid.ts";
import {
  addPartition,
  bufferDisk,
  deletePartition,
  emptyTable,
  freeExtents,
  getSlotAttributes,
  PARTITION_TYPES,
  partitionTypeAlias,
  prioritize,
  readGptBuffer,
  resizePartition,
  resolvePartitionType,
  setSlotAttributes,
  writeGptTo,
} from "../../src/disk/gpt.ts";
import { InputError } from "../../src/errors.ts";

test("crc32 matches the IEEE check value and continues across buffers", () => {
  assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
  assert.equal(crc32(Buffer.alloc(0)), 0);
  assert.equal(crc32(Buffer.from("6789"), crc32(Buffer.from("12345"))), 0xcbf43926);
});

test("GUIDs use GPT's mixed-endian layout", () => {
  const buf = Buffer.alloc(16);
  encodeGuid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", buf, 0);
  assert.equal(buf.toString("hex"), "28732ac11ff8d211ba4b00a0c93ec93b");
  assert.equal(decodeGuid(buf, 0), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
});

test("slot attributes use bits 48–51, 52–55 and 56 and keep every other bit", () => {
  const other = (1n << 60n) | (1n << 2n) | 1n | (1n << 47n) | (1n << 57n);
  const a = setSlotAttributes(other, { priority: 5, tries: 3, successful: 1 });
  assert.equal(a, other | (5n << 48n) | (3n << 52n) | (1n << 56n));
  assert.deepEqual(getSlotAttributes(a), { priority: 5, tries: 3, successful: 1 });
  const b = setSlotAttributes(a, { tries: 0 });
  assert.deepEqual(getSlotAttributes(b), { priority: 5, tries: 0, successful: 1 });
  assert.equal(b & ~(0x1ffn << 48n), other);
  assert.throws(() => setSlotAttributes(0n, { priority: 16 }), InputError);
  assert.throws(() => setSlotAttributes(0n, { successful: 2 }), /successful 2 is out of range/);
});

test("type aliases resolve both ways; unknown types are an InputError", () => {
  assert.equal(resolvePartitionType("coreos-rootfs"), "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6");
  assert.equal(resolvePartitionType("coreos-resize"), "3884dd41-8582-4404-b9a8-e9b84f2df50e");
  assert.equal(resolvePartitionType("coreos-reserved"), "c95dc21a-df0e-4340-8d7b-26cbfa9a03e0");
  assert.equal(resolvePartitionType("chromeos-kernel"), "fe3a2a5d-4f32-41a7-b725-accc3285a309");
  assert.equal(resolvePartitionType("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), PARTITION_TYPES.efi);
  assert.equal(partitionTypeAlias("21686148-6449-6E6F-744E-656564454649"), "bios");
  assert.equal(partitionTypeAlias(PARTITION_TYPES["linux-data"]!), "linux-data");
  assert.throws(() => resolvePartitionType("ext4"), /unknown partition type "ext4"/);
});

test("add places partitions at the first aligned free space and validates", () => {
  let t = emptyTable(64n << 20n); // 131072 sectors
  t = addPartition(t, { number: 2, sizeLba: 100n });
  assert.equal(t.partitions[0]!.firstLba, 2048n);
  t = addPartition(t, { number: 1, sizeLba: 4096n, alignLba: 4096n });
  assert.equal(t.partitions[0]!.firstLba, 4096n, "2 MiB aligned");
  t = addPartition(t, { number: 3, label: "REST" });
  const rest = t.partitions.find((p) => p.number === 3)!;
  assert.equal(rest.firstLba, 8192n);
  assert.equal((rest.lastLba + 1n) % 2048n, 0n, "rest-of-disk ends aligned");
  assert.deepEqual(freeExtents(t).at(-1), {
    firstLba: rest.lastLba + 1n,
    lastLba: t.lastUsableLba,
  });
  // Modify in place: only the given fields change.
  const renamed = addPartition(t, { number: 3, label: "ROOT", priority: 2 });
  const r3 = renamed.partitions.find((p) => p.number === 3)!;
  assert.deepEqual({ ...r3, label: "REST", attributes: 0n }, rest);
  assert.equal(getSlotAttributes(r3.attributes).priority, 2);
  // Labels: 36 UTF-16 units fit, 37 do not; non-ASCII counts in UTF-16 units.
  addPartition(t, { number: 4, startLba: 2148n, sizeLba: 10n, label: "é".repeat(36) });
  assert.throws(
    () => addPartition(t, { number: 4, startLba: 2148n, sizeLba: 10n, label: "x".repeat(37) }),
    /36/,
  );
  assert.throws(() => addPartition(t, { number: 4, startLba: 2048n, sizeLba: 10n }), /overlap/);
  assert.throws(
    () => addPartition(t, { number: 4, startLba: 2148n, sizeLba: 1n << 40n }),
    /outside the usable range/,
  );
  assert.throws(() => addPartition(t, { number: 129, sizeLba: 1n }), /out of range \(1–128\)/);
  assert.throws(() => addPartition(t, { number: 4, sizeLba: 1n << 20n }), /no aligned free space/);
  assert.throws(() => addPartition(t, { number: 4, uniqueGuid: "nope" }), /not a GUID/);
});

test("resize and delete keep the rest of the table", () => {
  let t = emptyTable(64n << 20n);
  t = addPartition(t, { number: 1, sizeLba: 2048n });
  t = addPartition(t, { number: 2, startLba: 8192n, sizeLba: 2048n });
  const grown = resizePartition(t, 1, 6144n);
  assert.throws(() => resizePartition(t, 1, 6145n), /overlap/); // would run into partition 2
  assert.equal(grown.partitions[0]!.lastLba, 8191n);
  assert.deepEqual(grown.partitions[1], t.partitions[1]);
  const moved = addPartition(t, { number: 1, startLba: 4096n }).partitions[0]!;
  assert.deepEqual([moved.firstLba, moved.lastLba], [4096n, 6143n], "a new start keeps the size");
  assert.deepEqual(deletePartition(t, 1).partitions, [t.partitions[1]]);
  assert.throws(() => deletePartition(t, 5), /partition 5 does not exist/);
});

test("prioritize: cgpt's grouping, renumbering and coalescing", () => {
  let t = emptyTable(64n << 20n);
  const prios = [3, 3, 7, 0, 1];
  prios.forEach((priority, i) => {
    t = addPartition(t, { number: i + 1, type: "chromeos-kernel", sizeLba: 8n, priority });
  });
  t = addPartition(t, { number: 9, type: "efi", sizeLba: 8n, priority: 9 });
  const p = (x: typeof t) => x.partitions.map((q) => getSlotAttributes(q.attributes).priority);
  assert.deepEqual(
    p(prioritize(t, 5)),
    [1, 1, 2, 0, 3, 9],
    "target on top, groups renumbered, 0 stays 0",
  );
  assert.deepEqual(p(prioritize(t, 1, undefined, { friends: true })), [3, 3, 2, 0, 1, 9]);
  assert.deepEqual(p(prioritize(t, 4, 2)), [1, 1, 1, 2, 1, 9], "lowest groups coalesce at 1");
  assert.throws(() => prioritize(t, 1, 16), /priority 16 is out of range/);
});

test("a written table reads back identically, including UTF-16 labels and all attribute bits", () => {
  const buf = Buffer.alloc(8 << 20);
  let t = emptyTable(BigInt(buf.length));
  t = addPartition(t, { number: 7, label: "Ünïcødé-ラベル", type: "coreos-reserved", sizeLba: 8n });
  t = { ...t, partitions: t.partitions.map((p) => ({ ...p, attributes: 0xfedcba9876543210n })) };
  writeGptTo(bufferDisk("mem", buf), t);
  assert.deepEqual(readGptBuffer("mem", buf), t);
});
