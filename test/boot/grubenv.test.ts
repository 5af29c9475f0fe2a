import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  encodeGrubEnv,
  GRUBENV_HEADER,
  GRUBENV_SIZE,
  parseGrubEnv,
} from "../../src/boot/grubenv.ts";
import { InputError } from "../../src/errors.ts";

test("encodes to exactly 1024 bytes with header and '#' padding", () => {
  const b = encodeGrubEnv({ usr_a_priority: "1", foo: "bar" });
  assert.equal(b.length, GRUBENV_SIZE);
  const text = b.toString("latin1");
  assert.ok(text.startsWith(`${GRUBENV_HEADER}usr_a_priority=1\nfoo=bar\n#`));
  assert.match(text.slice(GRUBENV_HEADER.length + 25), /^#+$/);
});

test("round-trips values with backslash and newline", () => {
  const env = new Map([
    ["a", "x\\y"],
    ["b", "line1\nline2"],
    ["c", ""],
  ]);
  assert.deepEqual(parseGrubEnv(encodeGrubEnv(env)), env);
});

test("rejects a block without header, wrong size, overflow, bad name", () => {
  assert.throws(() => parseGrubEnv(Buffer.alloc(1024, 35)), InputError);
  assert.throws(() => parseGrubEnv(Buffer.from(`${GRUBENV_HEADER}a=1\n`)), /expected 1024/);
  assert.throws(() => encodeGrubEnv({ big: "x".repeat(1000) }), /more than/);
  assert.throws(() => encodeGrubEnv({ "bad-name": "1" }), /invalid grubenv variable/);
});

test("agrees with grub-editenv", { skip: !hasEditenv() && "grub-editenv not installed" }, () => {
  const dir = mkdtempSync(join(tmpdir(), "slipway-grubenv-"));
  try {
    const f = join(dir, "grubenv");
    execFileSync("grub-editenv", [f, "create"]);
    execFileSync("grub-editenv", [f, "set", "usr_a_tries=3", "k=v w"]);
    // Debian's grub-editenv adds a comment line; the variables must match.
    assert.deepEqual(
      parseGrubEnv(readFileSync(f)),
      new Map([
        ["usr_a_tries", "3"],
        ["k", "v w"],
      ]),
    );
    writeFileSync(f, encodeGrubEnv({ x: "1", y: "2" }));
    assert.equal(execFileSync("grub-editenv", [f, "list"], { encoding: "utf8" }), "x=1\ny=2\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function hasEditenv(): boolean {
  try {
    execFileSync("grub-editenv", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
