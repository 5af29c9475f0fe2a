/**
 * Slipway's GPT against the real tools: sgdisk and sfdisk accept what we write,
 * cgpt reads the slot attributes we set (and we read what cgpt sets), and
 * `cgpt prioritize` and ours agree on hundreds of random tables.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import {
  addPartition,
  createGpt,
  emptyTable,
  type GptTable,
  getSlotAttributes,
  prioritize,
  readGpt,
  writeGpt,
} from "../../src/disk/gpt.ts";
import { cli, randInt, rng, run, scratchDir, sparseImage } from "./helpers.ts";

let dir: string;
let cleanup: () => void;
before(() => ({ dir, cleanup } = scratchDir()));
after(() => cleanup());

/** The CoreOS layout of DESIGN §4 on a 3 GiB image, 2 MiB aligned. */
function coreosImage(path: string): GptTable {
  sparseImage(path, 3 * 2 ** 30);
  let t = createGpt(path);
  const align = 4096n;
  const parts: [number, string, string, string | undefined][] = [
    [1, "EFI-SYSTEM", "efi", "128MiB"],
    [2, "BIOS-BOOT", "bios", "2MiB"],
    [3, "USR-A", "coreos-rootfs", "1GiB"],
    [4, "USR-B", "coreos-rootfs", "1GiB"],
    [6, "OEM", "linux-data", "128MiB"],
    [7, "OEM-CONFIG", "coreos-reserved", "64MiB"],
    [9, "ROOT", "coreos-resize", undefined],
  ];
  for (const [number, label, type, size] of parts) {
    const sizeLba =
      size === undefined
        ? undefined
        : BigInt(Number.parseInt(size, 10)) * (size.endsWith("GiB") ? 2097152n : 2048n);
    t = addPartition(t, { number, label, type, alignLba: align, ...(sizeLba ? { sizeLba } : {}) });
  }
  t = addPartition(t, { number: 3, priority: 1, successful: 1 });
  writeGpt(path, t);
  return t;
}

test("sgdisk -v and sfdisk --verify accept the CoreOS layout Slipway writes", () => {
  const img = `${dir}/coreos.img`;
  const t = coreosImage(img);
  const sg = run("sgdisk", ["-v", img]);
  assert.equal(sg.status, 0, sg.stderr);
  assert.match(sg.stdout, /No problems found/);
  const sf = run("sfdisk", ["--verify", img]);
  assert.equal(sf.status, 0, sf.stderr);
  assert.match(sf.stdout, /No errors detected/);
  // sgdisk sees the same partitions, labels and GUIDs.
  for (const p of t.partitions) {
    const info = run("sgdisk", ["-i", String(p.number), img]).stdout;
    assert.match(info, new RegExp(`First sector: ${p.firstLba} `));
    assert.match(info, new RegExp(`Last sector: ${p.lastLba} `));
    assert.match(info, new RegExp(`Partition name: '${p.label}'`));
    assert.match(info.toLowerCase(), new RegExp(`partition unique guid: ${p.uniqueGuid}`));
    assert.match(info.toLowerCase(), new RegExp(`partition guid code: ${p.typeGuid}`));
  }
  for (const p of t.partitions) {
    assert.equal(p.firstLba % 4096n, 0n, `partition ${p.number} is 2 MiB aligned`);
  }
});

test("cgpt show -P/-T/-S reports the slot attributes Slipway set (any partition type)", async () => {
  const img = sparseImage(`${dir}/attrs.img`, 64 << 20);
  createGpt(img);
  const cases = [
    { number: 1, type: "coreos-rootfs", priority: 1, tries: 0, successful: 1 },
    { number: 2, type: "coreos-rootfs", priority: 15, tries: 15, successful: 0 },
    { number: 3, type: "chromeos-kernel", priority: 7, tries: 3, successful: 1 },
    { number: 4, type: "linux-data", priority: 2, tries: 9, successful: 0 },
  ];
  for (const c of cases) {
    const r = await cli([
      "gpt",
      "add",
      img,
      "-i",
      String(c.number),
      "-t",
      c.type,
      "-s",
      "4MiB",
      "-P",
      String(c.priority),
      "-T",
      String(c.tries),
      "-S",
      String(c.successful),
    ]);
    assert.equal(r.status, 0, r.stderr);
  }
  for (const c of cases) {
    for (const [flag, want] of [
      ["-P", c.priority],
      ["-T", c.tries],
      ["-S", c.successful],
    ] as const) {
      const r = run("cgpt", ["show", "-i", String(c.number), flag, img]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), String(want), `cgpt show -i ${c.number} ${flag}`);
    }
  }
});

test("attributes set with cgpt add -P -T -S read back identically in slipway gpt show --json", async () => {
  const img = sparseImage(`${dir}/cgpt-set.img`, 64 << 20);
  createGpt(img);
  const r0 = await cli(["gpt", "add", img, "-i", "1", "-t", "chromeos-kernel", "-s", "4MiB"]);
  assert.equal(r0.status, 0, r0.stderr);
  const r1 = await cli(["gpt", "add", img, "-i", "2", "-t", "coreos-rootfs", "-s", "4MiB"]);
  assert.equal(r1.status, 0, r1.stderr);
  const random = rng(7);
  for (let k = 0; k < 6; k++) {
    const n = 1 + (k % 2);
    const want = {
      priority: randInt(random, 0, 15),
      tries: randInt(random, 0, 15),
      successful: randInt(random, 0, 1),
    };
    const c = run("cgpt", [
      "add",
      "-i",
      String(n),
      "-P",
      String(want.priority),
      "-T",
      String(want.tries),
      "-S",
      String(want.successful),
      img,
    ]);
    assert.equal(c.status, 0, c.stderr);
    const s = await cli(["gpt", "show", img, "--json"]);
    assert.equal(s.status, 0, s.stderr);
    const part = JSON.parse(s.stdout).partitions.find((p: { number: number }) => p.number === n);
    assert.deepEqual(
      { priority: part.priority, tries: part.tries, successful: part.successful },
      want,
    );
    for (const [flag, v] of [
      ["-P", want.priority],
      ["-T", want.tries],
      ["-S", want.successful],
    ] as const) {
      assert.equal(
        (await cli(["gpt", "show", img, "-i", String(n), flag])).stdout.trim(),
        String(v),
      );
    }
  }
  assert.equal(run("sgdisk", ["-v", img]).status, 0);
});

/** A random table of ChromeOS-kernel partitions (and a few others cgpt must ignore). */
function randomKernelTable(seed: number) {
  const r = rng(seed);
  let t = emptyTable(4n << 20n);
  const numbers = new Set<number>();
  const count = randInt(r, 1, 16);
  while (numbers.size < count) numbers.add(randInt(r, 1, 128));
  const kernels: number[] = [];
  let start = 2048n;
  for (const number of numbers) {
    const kernel = kernels.length === 0 || r() < 0.85;
    t = addPartition(t, {
      number,
      type: kernel ? "chromeos-kernel" : "linux-data",
      startLba: start,
      sizeLba: 8n,
      priority: randInt(r, 0, 15),
      tries: randInt(r, 0, 15),
      successful: randInt(r, 0, 1),
    });
    if (kernel) kernels.push(number);
    start += 8n;
  }
  const target = kernels[randInt(r, 0, kernels.length - 1)]!;
  const priority = r() < 0.5 ? undefined : randInt(r, 1, 15);
  return { table: t, target, priority, friends: r() < 0.3 };
}

const attrs = (t: GptTable) =>
  t.partitions.map((p) => `${p.number}=${p.attributes.toString(16)}`).join(" ");

test("cgpt prioritize and Slipway's prioritize agree on 400 random tables", () => {
  const img = sparseImage(`${dir}/prio.img`, 4 << 20);
  let priorityChanges = 0;
  for (let seed = 1; seed <= 400; seed++) {
    const { table, target, priority, friends } = randomKernelTable(seed);
    writeGpt(img, table);
    const args = [
      "prioritize",
      "-i",
      String(target),
      ...(priority ? ["-P", String(priority)] : []),
      ...(friends ? ["-f"] : []),
      img,
    ];
    const r = run("cgpt", args);
    assert.equal(r.status, 0, `seed ${seed}: cgpt ${args.join(" ")}: ${r.stderr}`);
    const theirs = readGpt(img);
    const ours = prioritize(table, target, priority, { friends });
    assert.equal(
      attrs(ours),
      attrs(theirs),
      `seed ${seed}: cgpt ${args.join(" ")}\nbefore ${attrs(table)}`,
    );
    if (attrs(ours) !== attrs(table)) priorityChanges++;
  }
  assert.ok(priorityChanges > 200, `most cases change something (${priorityChanges})`);
});

test("slipway gpt prioritize on the CoreOS layout swaps USR-A and USR-B like cgpt would", async () => {
  const img = `${dir}/coreos-prio.img`;
  coreosImage(img);
  const r = await cli(["gpt", "prioritize", img, "-i", "4"]);
  assert.equal(r.status, 0, r.stderr);
  const t = readGpt(img);
  const p = (n: number) =>
    getSlotAttributes(t.partitions.find((q) => q.number === n)!.attributes).priority;
  assert.deepEqual([p(3), p(4)], [1, 2]);
  assert.equal(p(1), 0, "other types are untouched");
  assert.equal(run("sgdisk", ["-v", img]).status, 0);
});

test("tables written by sgdisk and sfdisk read back exactly as those tools describe them", () => {
  const img = sparseImage(`${dir}/foreign.img`, 64 << 20);
  const sg = run("sgdisk", [
    "-o",
    "-n",
    "1:2048:+8M",
    "-t",
    "1:EF00",
    "-c",
    "1:EFI-SYSTEM",
    "-n",
    "3:0:+16M",
    "-t",
    "3:5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6",
    "-c",
    "3:USR-A",
    "-A",
    "3:set:48",
    "-A",
    "3:set:56",
    "-A",
    "3:set:60",
    "-n",
    "9:0:0",
    "-t",
    "9:8300",
    "-c",
    "9:ROOT",
    img,
  ]);
  assert.equal(sg.status, 0, sg.stderr);
  const t = readGpt(img);
  assert.deepEqual(
    t.partitions.map((p) => [p.number, p.label, p.typeGuid]),
    [
      [1, "EFI-SYSTEM", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"],
      [3, "USR-A", "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6"],
      [9, "ROOT", "0fc63daf-8483-4772-8e79-3d69d8477de4"],
    ],
  );
  for (const p of t.partitions) {
    const info = run("sgdisk", ["-i", String(p.number), img]).stdout;
    assert.match(info, new RegExp(`First sector: ${p.firstLba} `));
    assert.match(info, new RegExp(`Last sector: ${p.lastLba} `));
    assert.match(info.toLowerCase(), new RegExp(`partition unique guid: ${p.uniqueGuid}`));
  }
  const usrA = t.partitions.find((p) => p.number === 3)!;
  assert.equal(usrA.attributes, (1n << 48n) | (1n << 56n) | (1n << 60n));
  assert.deepEqual(getSlotAttributes(usrA.attributes), { priority: 1, tries: 0, successful: 1 });

  // sfdisk's own dump of a table it wrote.
  const img2 = sparseImage(`${dir}/sfdisk.img`, 64 << 20);
  const sf = spawnSync("sfdisk", ["--quiet", img2], {
    input:
      'label: gpt\nstart=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"\nsize=8192, name="two"\n',
    encoding: "utf8",
  });
  assert.equal(sf.status, 0, sf.stderr);
  const t2 = readGpt(img2);
  assert.deepEqual(
    t2.partitions.map((p) => [p.number, p.label, p.firstLba, p.lastLba - p.firstLba + 1n]),
    [
      [1, "ESP", 2048n, 16384n],
      [2, "two", 18432n, 8192n],
    ],
  );
  assert.equal(t2.lastUsableLba, BigInt((64 << 20) / 512 - 34));
});
