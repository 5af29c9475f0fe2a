/**
 * kill -9 of an apply at random points (child processes), then a resumed
 * apply: it must always end with the target's right hash. Half the runs use
 * a full payload, half a delta (which reads the source again on resume).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createPayload, generateKeyPair } from "../../src/payload/index.ts";
import { bytes } from "./fixture.ts";

let dir: string;
const keys = generateKeyPair();
const MiB = 1 << 20;
let want: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "slipway-payload-kill-"));
  const parts: Buffer[] = [];
  for (let i = 0; i < 24; i++) parts.push(bytes(1 + 2 * i, MiB));
  const old = Buffer.concat(parts);
  const neu = Buffer.concat([...parts.slice(12), bytes(99, MiB), ...parts.slice(0, 12)]);
  neu.write("changed", 5 * MiB + 77);
  want = createHash("sha256").update(neu).digest("hex");
  writeFileSync(join(dir, "old.img"), old);
  writeFileSync(join(dir, "new.img"), neu);
  writeFileSync(join(dir, "pub.pem"), keys.publicPem);
  for (const [name, full] of [
    ["full.slp", true],
    ["delta.slp", false],
  ] as const)
    await createPayload({
      target: join(dir, "new.img"),
      sources: full ? [] : [{ path: join(dir, "old.img") }],
      full,
      fullQuality: 1,
      keys: [keys.privatePem],
      output: join(dir, name),
      version: "2",
      chunkSize: 256 << 10,
    });
  // The child: the library, printing every progress event.
  const index = new URL("../../src/payload/index.ts", import.meta.url).pathname;
  writeFileSync(
    join(dir, "child.ts"),
    `import { applyPayload } from ${JSON.stringify(index)};
const [payload, target, source, pub, resume] = process.argv.slice(2);
const r = await applyPayload({
  payload, target, source, trustedKeys: [pub], resume: resume === "1", checkpointBytes: ${MiB},
  onProgress: (p) => process.stdout.write(p.phase + " " + p.done + " " + p.total + "\\n"),
});
process.stdout.write("done " + r.sha256 + " " + r.resumedAtChunk + "\\n");`,
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

function run(
  payload: string,
  target: string,
  resume: boolean,
  killAt?: { phase: string; fraction: number },
): Promise<{ killed: boolean; out: string; code: number | null }> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(
      process.execPath,
      [
        join(dir, "child.ts"),
        payload,
        target,
        join(dir, "old.img"),
        join(dir, "pub.pem"),
        resume ? "1" : "0",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    let killed = false;
    child.stderr!.on("data", (d) => {
      err += d;
    });
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      if (!killAt || killed) return;
      for (const line of d.toString().split("\n")) {
        const [phase, done, total] = line.split(" ");
        if (phase === killAt.phase && Number(done) >= killAt.fraction * Number(total)) {
          killed = child.kill("SIGKILL");
          break;
        }
      }
    });
    child.on("exit", (code) => resolve({ killed, out: out + err, code }));
  });
}

test("kill -9 at 20 random points, then --resume: always the right hash", async () => {
  let x = 424242;
  const random = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
  let resumedLater = 0;
  for (let i = 0; i < 20; i++) {
    const payload = join(dir, i % 2 === 0 ? "full.slp" : "delta.slp");
    const target = join(dir, `target-${i}.img`);
    // Mostly while writing, sometimes during the final read-back.
    const killAt = { phase: random() < 0.85 ? "write" : "verify", fraction: random() };
    const first = await run(payload, target, false, killAt);
    assert.ok(first.killed || first.code === 0, `run ${i} neither killed nor ok: ${first.out}`);
    const second = await run(payload, target, true);
    assert.equal(second.code, 0, `resume ${i}: ${second.out}`);
    const done = /done ([0-9a-f]{64}) (\d+)/.exec(second.out);
    assert.ok(done, second.out);
    assert.equal(done[1], want);
    if (Number(done[2]) > 0) resumedLater++;
    assert.equal(
      createHash("sha256").update(readFileSync(target)).digest("hex"),
      want,
      `target ${i} on disk`,
    );
    assert.equal(existsSync(`${target}.slipway-journal`), false);
    rmSync(target);
  }
  // The journal really was used, not just a restart from zero every time.
  assert.ok(resumedLater >= 8, `only ${resumedLater} of 20 resumed past chunk 0`);
});
