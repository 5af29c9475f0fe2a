import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const bin = new URL("../../bin/slipway", import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(bin, args, { encoding: "utf8", timeout: 60_000 });

test("bad input to serve/publish/simulate exits 2 and names the problem", () => {
  const dir = mkdtempSync("/var/tmp/server-cli-");
  try {
    const listen = run("serve", "--data", dir, "--listen", "nowhere");
    assert.equal(listen.status, 2);
    assert.match(listen.stderr, /--listen must be HOST:PORT/);
    const missing = run(
      "publish",
      join(dir, "nope.payload"),
      "--server",
      "http://127.0.0.1:9",
      "--app",
      "a",
      "--channel",
      "c",
      "--token",
      "t",
    );
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /nope\.payload: no such file/);
    writeFileSync(join(dir, "p"), "x");
    const noVersion = run(
      "publish",
      join(dir, "p"),
      "--server",
      "http://127.0.0.1:9",
      "--app",
      "a",
      "--channel",
      "c",
      "--token",
      "t",
    );
    assert.equal(noVersion.status, 2);
    assert.match(noVersion.stderr, /--version is required/);
    const sim = run("simulate", "--server", "http://127.0.0.1:9", "--app", "a", "--hosts", "-1");
    assert.equal(sim.status, 2);
    assert.match(sim.stderr, /--hosts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
