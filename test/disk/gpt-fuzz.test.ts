/**
 * Fuzzing the GPT reader with 13,000 mutations of valid tables (512- and
 * 4096-byte sectors): it never crashes (only InputError naming the disk), never
 * writes, and what it returns is always a consistent table — the original one
 * whenever a single copy was damaged without fixing its CRCs.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { crc32 } from "../../src/disk/crc32.ts";
import { partitionProblems } from "../../src/disk/gpt/model.ts";
import {
  addPartition,
  bufferDisk,
  emptyTable,
  type GptTable,
  readGpt,
  readGptBuffer,
  writeGptTo,
} from "../../src/disk/gpt.ts";
import { InputError } from "../../src/errors.ts";
import { randInt, rng, scratchDir } from "./helpers.ts";

/** Where everything is on the seed image, for one sector size. */
interface Geometry {
  ss: number;
  size: number;
  primaryHeader: number;
  primaryEntries: number;
  backupHeader: number;
  backupEntries: number;
  edgeU64: bigint[];
}

function geometry(ss: number, sectors: number): Geometry {
  const arraySectors = Math.ceil((128 * 128) / ss);
  const s = BigInt(sectors);
  const a = BigInt(arraySectors);
  return {
    ss,
    size: sectors * ss,
    primaryHeader: ss,
    primaryEntries: 2 * ss,
    backupHeader: (sectors - 1) * ss,
    backupEntries: (sectors - 1 - arraySectors) * ss,
    edgeU64: [
      0n,
      1n,
      2n,
      1n + a,
      2n + a,
      s - a - 2n,
      s - a - 1n,
      s - a,
      s - 2n,
      s - 1n,
      s,
      2n ** 63n,
      2n ** 64n - 1n,
    ],
  };
}

// Small images (two 16 KiB arrays, headers, a little space): cheap to copy thousands of times.
const G512 = geometry(512, 160);
const G4K = geometry(4096, 40);

function validImage(g: Geometry): { image: Buffer; table: GptTable } {
  const image = Buffer.alloc(g.size);
  let t = emptyTable(BigInt(g.size), {
    diskGuid: "0123abcd-4567-89ef-0123-456789abcdef",
    sectorSize: g.ss,
  });
  const step = (t.lastUsableLba - t.firstUsableLba) / 6n;
  [1, 2, 3, 4, 9].forEach((number, i) => {
    t = addPartition(t, {
      number,
      label: `PART-${number}-ünï`,
      type: i % 2 ? "coreos-rootfs" : "linux-data",
      startLba: t.firstUsableLba + 2n + BigInt(i) * step,
      sizeLba: step - 1n,
      priority: i,
      tries: 15 - i,
      successful: i % 2,
    });
  });
  writeGptTo(bufferDisk("seed", image), t);
  return { image, table: t };
}

/** Re-seal a header after editing it (and optionally its entry array) so deeper checks run. */
function reseal(img: Buffer, headerAt: number, entriesAt?: number): void {
  if (entriesAt !== undefined && entriesAt >= 0 && entriesAt + 128 * 128 <= img.length) {
    img.writeUInt32LE(crc32(img.subarray(entriesAt, entriesAt + 128 * 128)), headerAt + 88);
  }
  const size = Math.min(Math.max(img.readUInt32LE(headerAt + 12), 92), 512);
  img.writeUInt32LE(0, headerAt + 16);
  img.writeUInt32LE(crc32(img.subarray(headerAt, headerAt + size)), headerAt + 16);
}

const EDGE_U32 = [0, 1, 91, 92, 93, 127, 128, 129, 256, 512, 513, 4096, 0x7fffffff, 0xffffffff];

type Mutation = {
  kind: "single-copy" | "resealed" | "any";
  copy: "primary" | "backup";
  img: Buffer;
};

function mutate(seed: Buffer, g: Geometry, r: () => number): Mutation {
  const img = Buffer.from(seed);
  const pick = <T>(xs: T[]) => xs[randInt(r, 0, xs.length - 1)]!;
  const copy = pick(["primary", "backup"] as const);
  const headerAt = copy === "primary" ? g.primaryHeader : g.backupHeader;
  const entriesAt = copy === "primary" ? g.primaryEntries : g.backupEntries;
  switch (randInt(r, 0, 5)) {
    case 0: {
      // Raw byte damage confined to one copy (header sector or entry array) or the MBR.
      const region = pick([
        [0, 512],
        [headerAt, headerAt + g.ss],
        [entriesAt, entriesAt + 128 * 128],
      ]);
      for (let k = randInt(r, 1, 8); k > 0; k--) {
        const at = randInt(r, region[0]!, region[1]! - 1);
        img[at] = randInt(r, 0, 255);
      }
      return { kind: "single-copy", copy, img };
    }
    case 1: {
      // A header field set to an edge or random value, CRC fixed.
      const field = pick([8, 12, 24, 32, 40, 48, 56, 72, 80, 84, 88]);
      if ([24, 32, 40, 48, 72].includes(field)) {
        const v = r() < 0.7 ? pick(g.edgeU64) : BigInt(randInt(r, 0, 2 ** 31));
        img.writeBigUInt64LE(v, headerAt + field);
      } else {
        const v = r() < 0.7 ? pick(EDGE_U32) : randInt(r, 0, 2 ** 32 - 1);
        img.writeUInt32LE(v, headerAt + field);
      }
      reseal(img, headerAt, field === 88 ? undefined : entriesAt);
      return { kind: "resealed", copy, img };
    }
    case 2: {
      // An entry field changed (LBAs, type, label), entry CRC and header CRC fixed.
      const entry = entriesAt + randInt(r, 0, 10) * 128;
      const field = pick([0, 16, 32, 40, 48, 56, 100]);
      if (field === 32 || field === 40) img.writeBigUInt64LE(pick(g.edgeU64), entry + field);
      else for (let k = 0; k < 16; k++) img[entry + field + k] = r() < 0.5 ? 0 : randInt(r, 0, 255);
      reseal(img, headerAt, entriesAt);
      return { kind: "resealed", copy, img };
    }
    case 3: {
      // Both copies edited the same way: no good copy to fall back on.
      const field = pick([32, 40, 48, 80, 84]);
      for (const [h, e] of [
        [g.primaryHeader, g.primaryEntries],
        [g.backupHeader, g.backupEntries],
      ] as const) {
        img.writeUInt32LE(pick(EDGE_U32), h + field);
        reseal(img, h, e);
      }
      return { kind: "any", copy, img };
    }
    case 4: {
      // Truncated image (the backup moves out of reach).
      return { kind: "any", copy, img: img.subarray(0, randInt(r, 0, g.size - 1)) };
    }
    default: {
      // Random bytes anywhere in the metadata of both copies.
      for (let k = randInt(r, 1, 16); k > 0; k--) {
        const at =
          r() < 0.5
            ? randInt(r, 0, g.primaryEntries + 128 * 128 - 1)
            : randInt(r, g.backupEntries, g.size - 1);
        img[at] = randInt(r, 0, 255);
      }
      return { kind: "any", copy, img };
    }
  }
}

/** Parse; return the table or the InputError; anything else fails the test. */
function parse(name: string, img: Buffer): GptTable | InputError {
  try {
    return readGptBuffer(name, img, { onWarning: () => {} });
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
}

function assertConsistent(t: GptTable, totalSectors: bigint, context: string): void {
  assert.deepEqual(partitionProblems(t), [], context);
  assert.ok(t.firstUsableLba <= t.lastUsableLba + 1n && t.lastUsableLba < totalSectors, context);
  for (const p of t.partitions) {
    assert.ok(p.firstLba >= t.firstUsableLba && p.lastLba <= t.lastUsableLba, context);
  }
}

for (const [g, iterations, seed] of [
  [G512, 10_000, 2026],
  [G4K, 3_000, 4096],
] as const) {
  test(`${iterations} mutations of a valid table (${g.ss}-byte sectors): no crash, no write, a clear error or a consistent table`, () => {
    const { image, table } = validImage(g);
    const r = rng(seed);
    const counts = { parsed: 0, rejected: 0, fellBack: 0 };
    for (let i = 0; i < iterations; i++) {
      const { kind, copy, img } = mutate(image, g, r);
      // With the primary untouched (damage confined to the backup), the result is the original.
      const mustBeOriginal = kind === "single-copy" || (kind === "resealed" && copy === "backup");
      const before = Buffer.from(img);
      const context = `iteration ${i} (${kind})`;
      const result = parse("fuzz.img", img);
      assert.ok(img.equals(before), `${context}: parser changed its input`);
      if (result instanceof InputError) {
        assert.ok(!mustBeOriginal, `${context}: one good copy must be enough: ${result.message}`);
        assert.match(result.message, /^fuzz\.img: /, context);
        counts.rejected++;
        continue;
      }
      counts.parsed++;
      assertConsistent(result, BigInt(img.length) / BigInt(result.sectorSize), context);
      if (mustBeOriginal) {
        assert.equal(result.sectorSize, g.ss, context);
        assert.deepEqual(result.partitions, table.partitions, context);
        counts.fellBack++;
      }
    }
    // The mix really exercises both outcomes.
    const tenth = iterations / 10;
    assert.ok(counts.rejected > tenth && counts.parsed > tenth, JSON.stringify(counts));
  });
}

test("reading mutated image files never writes to them", () => {
  const { image } = validImage(G512);
  const { dir, cleanup } = scratchDir();
  try {
    const r = rng(99);
    const path = `${dir}/fuzz.img`;
    for (let i = 0; i < 300; i++) {
      const { img } = mutate(image, G512, r);
      writeFileSync(path, img);
      try {
        readGpt(path, { onWarning: () => {} });
      } catch (err) {
        assert.ok(err instanceof InputError, String(err));
        assert.ok(err.message.startsWith(`${path}: `), err.message);
      }
      assert.ok(readFileSync(path).equals(img), `iteration ${i}: file changed`);
    }
  } finally {
    cleanup();
  }
});
