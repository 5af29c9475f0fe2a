/** CI runs the payload benchmark only as a smoke: small generated images. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

test("bench/payload --smoke prints the size and speed tables", () => {
  const script = new URL("../../bench/payload/bench.ts", import.meta.url).pathname;
  const r = spawnSync(process.execPath, [script, "--smoke", "--no-peers"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /slipway delta/);
  assert.match(r.stdout, /written\+synced .*incl\. read-back .*peak RSS growth/);
  // The one-file change costs a tiny fraction of the full payload.
  const row = r.stdout.split("\n").find((l) => l.startsWith("1 file, plain") && /%/.test(l));
  assert.ok(row, r.stdout);
  const share = Number(/([\d.]+)%/.exec(row)![1]);
  assert.ok(share < 1, row);
});
