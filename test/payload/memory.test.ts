/**
 * Apply memory is bounded whatever the image size: a full apply of a
 * 256 MiB image (zeros with real data in every chunk) grows the applying
 * process's peak RSS (VmHWM, measured in a child process) by less than 64 MiB.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createPayload, generateKeyPair } from "../../src/payload/index.ts";
import { bytes } from "./fixture.ts";

const MiB = 1 << 20;
const SIZE = 256 * MiB;
let dir: string;
let want: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "slipway-payload-mem-"));
  // Sparse on disk, but every 4 MiB chunk carries 256 KiB of text and noise.
  const image = join(dir, "big.img");
  const fd = openSync(image, "w");
  const hash = createHash("sha256");
  const zeros = Buffer.alloc(4 * MiB - 256 * 1024);
  for (let c = 0; c < SIZE / (4 * MiB); c++) {
    const data = bytes(c + 1, 256 * 1024);
    writeSync(fd, data, 0, data.length, c * 4 * MiB);
    hash.update(data).update(zeros);
  }
  closeSync(fd);
  execFileSync("truncate", ["-s", String(SIZE), image]);
  want = hash.digest("hex");
  const keys = generateKeyPair();
  writeFileSync(join(dir, "pub.pem"), keys.publicPem);
  await createPayload({
    target: image,
    keys: [keys.privatePem],
    output: join(dir, "big.slp"),
    version: "big",
    fullQuality: 1,
  });
  rmSync(image);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("a 256 MiB full apply grows peak RSS by less than 64 MiB", (t) => {
  const index = new URL("../../src/payload/index.ts", import.meta.url).pathname;
  // VmHWM is the process's peak RSS; the baseline is taken after the engine loaded.
  const script = `import { applyPayload } from ${JSON.stringify(index)};
import { readFileSync } from "node:fs";
const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
const before = hwm();
const r = await applyPayload({ payload: ${JSON.stringify(join(dir, "big.slp"))}, target: ${JSON.stringify(join(dir, "target.img"))}, trustedKeys: [${JSON.stringify(join(dir, "pub.pem"))}] });
console.log(JSON.stringify({ sha256: r.sha256, growth: hwm() - before }));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
  });
  const r = JSON.parse(out.trim().split("\n").pop()!) as { sha256: string; growth: number };
  assert.equal(r.sha256, want);
  t.diagnostic(`peak RSS growth ${(r.growth / MiB).toFixed(1)} MiB`);
  assert.ok(r.growth < 64 * MiB, `peak RSS grew by ${(r.growth / MiB).toFixed(1)} MiB`);
});
