import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { resolveDisk } from "../../src/cli/run.ts";
import { InputError } from "../../src/errors.ts";
import { cleanConsoleLine, parseSize } from "../../src/vm/qemu.ts";

const dir = mkdtempSync(join(tmpdir(), "slipway-vm-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("sizes", () => {
  assert.equal(parseSize("8G"), 8n << 30n);
  assert.equal(parseSize("512M"), 512n << 20n);
  assert.equal(parseSize("1GiB"), 1n << 30n);
  assert.equal(parseSize("4096"), 4096n);
  assert.throws(() => parseSize("8 apples"), InputError);
});

test("console lines lose terminal escapes", () => {
  assert.equal(
    cleanConsoleLine(
      "\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mmulti-user.target\x1b[0m\r",
    ),
    "  OK  ] Reached target multi-user.target",
  );
  assert.equal(cleanConsoleLine("\x1b[!p\x1b[?7h\x1b[6nreport slot=a"), "report slot=a");
});

test("slipway run finds the disk of a build, a build dir or a file", () => {
  const builds = join(dir, "builds");
  const v = join(builds, "2026.01.01.1");
  mkdirSync(v, { recursive: true });
  writeFileSync(join(v, "disk.raw"), "");
  writeFileSync(
    join(v, "meta.json"),
    JSON.stringify({ artifacts: { disk: { path: "disk.raw" } } }),
  );
  symlinkSync("2026.01.01.1", join(builds, "latest"));
  assert.equal(resolveDisk(undefined, builds), join(v, "disk.raw"));
  assert.equal(resolveDisk("2026.01.01.1", builds), join(v, "disk.raw"));
  assert.equal(resolveDisk(v, builds), join(v, "disk.raw"));
  assert.equal(resolveDisk(join(v, "disk.raw"), builds), join(v, "disk.raw"));
  assert.throws(() => resolveDisk("nope", builds), /neither a disk image nor a build/);
  assert.throws(() => resolveDisk(undefined, join(dir, "none")), /no build to run/);
  assert.throws(
    () => resolveDisk("2026.01.01.1", builds, "disk-aws"),
    /has no artifact "disk-aws" \(has: disk\)/,
  );
});
