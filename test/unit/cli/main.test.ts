import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const bin = new URL("../../../bin/slipway", import.meta.url).pathname;

test("slipway --help lists the program and exits 0", () => {
  const r = spawnSync(bin, ["--help"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: slipway/);
});

test("an unknown command exits 2 with a message", () => {
  const r = spawnSync(bin, ["no-such-command"], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no-such-command|unknown command|too many arguments/);
});

test("the CLI runs on Node 24 whatever node is on PATH", () => {
  const r = spawnSync(bin, ["--version"], {
    encoding: "utf8",
    env: { ...process.env, PATH: "/usr/bin:/bin" },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
});
