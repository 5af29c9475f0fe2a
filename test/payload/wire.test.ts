/**
 * Format 3's binary encoding and the approximate-match delta, without a
 * payload file around them: the decoders must turn any damage into an
 * InputError (they also run on bytes a trusted key signed by mistake), and
 * a "rebuilt binary" — the same code shifted, with scattered changed
 * addresses — must travel as a small difference, not as literal bytes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { brotliCompressSync } from "node:zlib";
import { InputError } from "../../src/errors.ts";
import { planDelta } from "../../src/payload/delta.ts";
import {
  decodeManifest,
  decodePlanBody,
  encodeManifest,
  encodePlanBody,
  encodeSignatures,
  type Manifest,
  type PlanBody,
  parseSignatures,
} from "../../src/payload/format.ts";
import { WireReader, WireWriter } from "../../src/payload/wire.ts";
import { bytes } from "./fixture.ts";

const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const blob = (n: number) => ({ offset: n * 100, size: 100, sha256: hex(`b${n}`), rawSize: 300 });

/**
 * Run planDelta's ops the way apply does (L: literal from the stream, C: copy
 * from the source, D: source plus stream bytes mod 256); `where` names the case
 * in failures. Checks every op stays inside the source and the stream is used up.
 */
function rebuild(src: Buffer, d: ReturnType<typeof planDelta>, length: number, where: string) {
  const out = Buffer.alloc(length);
  let pos = 0;
  let at = 0;
  for (const op of d.ops) {
    if (op[0] === "L") {
      d.stream.copy(out, pos, at, at + op[1]);
      at += op[1];
      pos += op[1];
      continue;
    }
    assert.ok(op[1] >= 0 && op[1] + op[2] <= src.length, `${where}: op reads past the source`);
    for (let i = 0; i < op[2]; i++)
      out[pos + i] = (src[op[1] + i]! + (op[0] === "D" ? d.stream[at + i]! : 0)) & 255;
    if (op[0] === "D") at += op[2];
    pos += op[2];
  }
  assert.equal(pos, length, `${where}: ops cover the target`);
  assert.equal(at, d.stream.length, `${where}: stream used up`);
  return out;
}

const manifest: Manifest = {
  format: 3,
  version: "1.2",
  codec: "brotli",
  target: {
    size: 3 * 4096 + 10,
    sha256: hex("t"),
    verity: { rootHash: hex("v"), hashOffset: 8192 },
  },
  boot: { kernel: { size: 300, sha256: hex("k"), blob: blob(0) } },
  chunkSize: 4096,
  plans: [
    { id: "full", source: null, body: blob(1) },
    {
      id: `delta-${hex("s").slice(0, 16)}`,
      source: { size: 5 * 4096, sha256: hex("s"), version: "1.1" },
      body: blob(2),
    },
  ],
};
const deltaRef = manifest.plans[1]!;
const body: PlanBody = {
  ops: [
    ["C", 4096, 4096],
    ["D", 100, 200],
    ["L", 3896],
    ["C", 0, 4096],
    ["D", 9000, 10],
  ],
  blobs: [
    { ...blob(3), rawSize: 4096, firstChunk: 0 },
    { ...blob(4), rawSize: 10, firstChunk: 3 },
  ],
  chunks: [
    [1, hex("c1")],
    [3, hex("c3")],
  ],
};

test("manifest, plan body and signatures decode to what was encoded", () => {
  assert.deepEqual(decodeManifest(encodeManifest(manifest), "m"), manifest);
  const plan = decodePlanBody(brotliCompressSync(encodePlanBody(body)), manifest, deltaRef, "b");
  assert.deepEqual(plan.ops, body.ops);
  assert.deepEqual(plan.chunks, body.chunks);
  const sigs = [{ keyId: "0123456789abcdef", algorithm: "ed25519" as const, value: "AAEC" }];
  assert.deepEqual(parseSignatures(encodeSignatures(sigs), "s"), sigs);
});

test("varints: round trip up to 2^53, one spelling only", () => {
  for (const n of [0, 1, 127, 128, 300, 2 ** 31, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER]) {
    // Signed numbers (source shifts) go to ±2^52.
    const s = n === 0 ? 0 : -Math.min(n, 2 ** 52 - 1);
    const r = new WireReader(new WireWriter().varint(n).zigzag(s).toBuffer(), "x", "here");
    assert.equal(r.varint(), n);
    assert.equal(r.zigzag(), s);
  }
  assert.throws(() => new WireReader(Buffer.from([0x81, 0x00]), "x", "h").varint(), /overlong/);
  assert.throws(() => new WireReader(Buffer.alloc(9, 0xff), "x", "h").varint(), /out of range/);
});

test("2,000 damaged manifests and plan bodies: an InputError or a valid result, nothing else", () => {
  const goodM = encodeManifest(manifest);
  const goodB = encodePlanBody(body);
  let x = 7;
  const r = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return Math.floor((x / 2 ** 32) * n);
  };
  let rejected = 0;
  for (let i = 0; i < 2000; i++) {
    const good = i % 2 ? goodB : goodM;
    let bad = Buffer.from(good);
    const kind = r(3);
    if (kind === 0) bad[r(bad.length)]! ^= 1 << r(8);
    else if (kind === 1) bad[r(bad.length)] = r(256);
    else bad = bad.subarray(0, r(bad.length));
    try {
      if (i % 2) decodePlanBody(brotliCompressSync(bad), manifest, deltaRef, "b");
      else decodeManifest(bad, "m");
    } catch (err) {
      assert.ok(err instanceof InputError, `case ${i}: ${err}`);
      rejected++;
    }
  }
  // Much of each is hashes, where any byte is valid; the structure's damage is caught.
  assert.ok(rejected > 600, `${rejected} of 2000 rejected`);
});

test("shifted code with changed addresses becomes a difference, not literals", () => {
  // "Old library": 64 KiB of code-like bytes; "new": 37 bytes inserted near
  // the start (everything after moves), and every 4-byte word at a
  // multiple of 64 changed (call addresses).
  const code = bytes(3, 64 << 10);
  const src = Buffer.concat([bytes(2, 40_960), code, bytes(4, 40_960)]);
  const moved = Buffer.concat([code.subarray(0, 500), bytes(9, 37), code.subarray(500)]);
  for (let o = 0; o + 4 <= moved.length; o += 64) moved.writeUInt32LE(o * 7, o);
  const dst = Buffer.concat([bytes(2, 40_960), moved, bytes(4, 40_960)]);
  const d = planDelta(src, dst);
  assert.ok(d.stats.literal < 1000, `literal ${d.stats.literal}`);
  assert.ok(d.stats.diffed > 60_000, `diffed ${d.stats.diffed}`);
  // Rebuilding from the ops gives the target.
  assert.ok(rebuild(src, d, dst.length, "shifted code").equals(dst));
  // The differences are mostly zeros: they compress far below the code itself.
  const packed = brotliCompressSync(d.stream).length;
  assert.ok(packed < brotliCompressSync(moved).length / 5, `stream ${packed} bytes`);
});

test("random small images: the delta's ops rebuild the target exactly", () => {
  let x = 99;
  const r = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return Math.floor((x / 2 ** 32) * n);
  };
  for (let round = 0; round < 40; round++) {
    // Odd sizes (not whole blocks, not whole words, sometimes tiny), then
    // moves, insertions and byte edits.
    const src = bytes(1 + r(6), [1, 15, 17, 4095, 4097, 9001, 30_000][r(7)]! + r(5000));
    const pieces: Buffer[] = [];
    for (let k = 0; k < 1 + r(5); k++) {
      const a = r(src.length);
      pieces.push(src.subarray(a, a + r(12_000)));
      if (r(2)) pieces.push(bytes(2 + r(5), r(300)));
    }
    const dst = Buffer.concat(pieces.length ? pieces : [Buffer.alloc(1)]);
    for (let k = r(50); k > 0 && dst.length > 0; k--) dst[r(dst.length)] = r(256);
    if (dst.length === 0) continue;
    const d = planDelta(src, dst);
    const out = rebuild(src, d, dst.length, `round ${round}`);
    assert.ok(out.equals(dst), `round ${round}: rebuilt bytes differ`);
  }
});

test("a body of many 1-byte ops in one chunk decodes (the op count bound is not too tight)", () => {
  const ops: PlanBody["ops"] = [];
  for (let i = 0; i < 300; i++) ops.push(["L", 1], ["C", i * 2, 1]);
  const m: Manifest = {
    ...manifest,
    target: { size: 600, sha256: hex("t") },
    plans: [deltaRef],
  };
  const b: PlanBody = {
    ops,
    blobs: [{ ...blob(3), rawSize: 300, firstChunk: 0 }],
    chunks: [[0, hex("c0")]],
  };
  const plan = decodePlanBody(brotliCompressSync(encodePlanBody(b)), m, deltaRef, "b");
  assert.deepEqual(plan.ops, ops);
});

test("a decodable manifest or plan body that breaks a rule of the format is refused, naming it", () => {
  const m = (change: (x: Manifest) => void) => {
    const x = structuredClone(manifest);
    change(x);
    return () => decodeManifest(encodeManifest(x), "m");
  };
  const refused: [() => unknown, RegExp][] = [
    [m((x) => (x.target.size = 0)), /target size/],
    [m((x) => (x.chunkSize = 1024)), /chunkSize/],
    [m((x) => (x.target.verity!.hashOffset = 100)), /verity hash offset/],
    [m((x) => (x.boot.kernel!.blob.rawSize = 299)), /kernel blob size/],
    [m((x) => (x.plans = [])), /no plans/],
    [m((x) => x.plans.push(x.plans[0]!)), /duplicate plan full/],
    [m((x) => (x.plans[1]!.source!.size = 0)), /source/],
  ];
  const b = (ops: PlanBody["ops"], change: (x: PlanBody) => void = () => {}) => {
    const x = structuredClone({ ...body, ops });
    change(x);
    return () => decodePlanBody(brotliCompressSync(encodePlanBody(x)), manifest, deltaRef, "b");
  };
  const ops = body.ops;
  refused.push(
    [b([["C", -4096, 4096], ...ops.slice(1)]), /outside the source/],
    [b([...ops.slice(0, 4), ["D", 5 * 4096 - 5, 10]]), /outside the source/],
    [b([...ops.slice(0, 2), ["L", 0], ...ops.slice(2)]), /empty op/],
    [b([...ops, ["C", 0, 0]]), /empty op/],
    [b(ops.slice(1)), /ops cover/],
    [b(ops, (x) => (x.chunks = [[4, hex("c4")]])), /chunk hash list/],
    [b(ops, (x) => (x.blobs[0]!.firstChunk = 1)), /chunk 0/],
    [b(ops, (x) => (x.blobs[1]!.rawSize = 11)), /stream bytes/],
    [b(ops, (x) => (x.blobs = [])), /blobs/],
  );
  const full = { ...manifest.plans[0]! };
  refused.push([
    () => decodePlanBody(brotliCompressSync(encodePlanBody(body)), manifest, full, "b"),
    /full plan cannot read a source/,
  ]);
  for (const [i, [decode, message]] of refused.entries())
    assert.throws(
      decode,
      (e: unknown) => e instanceof InputError && message.test(e.message),
      `case ${i}`,
    );
});
