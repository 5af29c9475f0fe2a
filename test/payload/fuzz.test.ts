/**
 * Damaged payloads: flipped bits, overwritten bytes and truncations at
 * random places of a full and a delta payload. None may be accepted: apply
 * must reject, and the journal must not claim the target is done.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { InputError, SlipwayError } from "../../src/errors.ts";
import { applyPayload, createPayload, generateKeyPair } from "../../src/payload/index.ts";
import { bytes } from "./fixture.ts";

let dir: string;
const keys = generateKeyPair();
let full: Buffer;
let delta: Buffer;
let source: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "slipway-payload-fuzz-"));
  // A small image: text and noise in 4 KiB blocks; the new one moves and edits some.
  const old = Buffer.concat([bytes(2, 40_000), bytes(3, 30_000), bytes(4, 50_000)]);
  const neu = Buffer.concat([bytes(4, 50_000), bytes(6, 9000), bytes(2, 40_000), bytes(3, 30_000)]);
  neu[1234]! ^= 0x20;
  source = join(dir, "old.img");
  writeFileSync(source, old);
  writeFileSync(join(dir, "new.img"), neu);
  writeFileSync(join(dir, "kernel"), bytes(8, 3000));
  for (const [name, full] of [
    ["full.slp", true],
    ["delta.slp", false],
  ] as const)
    await createPayload({
      target: join(dir, "new.img"),
      sources: full ? [] : [{ path: source }],
      full,
      keys: [keys.privatePem],
      output: join(dir, name),
      version: "2",
      kernel: full ? join(dir, "kernel") : undefined,
      chunkSize: 16 << 10,
    });
  full = readFileSync(join(dir, "full.slp"));
  delta = readFileSync(join(dir, "delta.slp"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic randomness so a failure can be replayed. */
function rng(seed: number) {
  let x = seed;
  return (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return Math.floor((x / 2 ** 32) * n);
  };
}

function mutate(good: Buffer, r: (n: number) => number): { bad: Buffer; what: string } {
  const kind = r(4);
  const bad = Buffer.from(good);
  if (kind === 0) {
    const at = r(bad.length);
    bad[at]! ^= 1 << r(8);
    return { bad, what: `bit flip at ${at}` };
  }
  if (kind === 1) {
    // Aim at the head (header, manifest, signatures) where parsing happens.
    const at = r(Math.min(bad.length, 600));
    bad[at]! ^= 1 << r(8);
    return { bad, what: `head bit flip at ${at}` };
  }
  if (kind === 2) {
    const at = r(bad.length);
    const len = 1 + r(64);
    for (let i = at; i < Math.min(bad.length, at + len); i++) bad[i] = r(256);
    if (bad.equals(good)) bad[at]! ^= 0xff;
    return { bad, what: `overwrite ${len} at ${at}` };
  }
  const len = r(bad.length);
  return { bad: bad.subarray(0, len), what: `truncate to ${len}` };
}

test("1,000 damaged payloads: none is accepted", async () => {
  // The untouched payloads apply, so a rejection below is the damage's doing.
  for (const [good, withSource] of [
    [full, false],
    [delta, true],
  ] as const) {
    const p = join(dir, "good.slp");
    writeFileSync(p, good);
    await applyPayload({
      payload: p,
      target: join(dir, "target.img"),
      trustedKeys: [keys.publicPem],
      ...(withSource ? { source } : {}),
    });
  }
  const r = rng(20251126);
  const reasons = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const useDelta = i % 2 === 1;
    const { bad, what } = mutate(useDelta ? delta : full, r);
    const p = join(dir, "bad.slp");
    const target = join(dir, "bad-target.img");
    writeFileSync(p, bad);
    let accepted = false;
    try {
      await applyPayload({
        payload: p,
        target,
        trustedKeys: [keys.publicPem],
        ...(useDelta ? { source } : {}),
      });
      accepted = true;
    } catch (err) {
      assert.ok(err instanceof SlipwayError, `case ${i} (${what}): not a clear error: ${err}`);
      const reason = err.message
        .replace(/^.*?: /, "")
        .replace(/\d+/g, "N")
        .slice(0, 50);
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      if (!(err instanceof InputError))
        assert.match(err.message, /does not verify/, `case ${i} (${what})`);
    }
    assert.equal(accepted, false, `case ${i} (${what}) was accepted`);
  }
  // The damage is caught at every layer, not only one.
  assert.ok(reasons.size >= 5, JSON.stringify([...reasons]));
});
