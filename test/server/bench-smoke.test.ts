/** CI smoke of bench/server: tiny numbers, both backends, the report has every figure. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const bench = new URL("../../bench/server/update-check.ts", import.meta.url).pathname;

test("bench/server --smoke runs on SQLite and PostgreSQL and reports ratios", () => {
  const r = spawnSync(process.execPath, [bench, "--smoke", "--json"], {
    encoding: "utf8",
    timeout: 180_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    rows: {
      backend: string;
      ratio: number;
      server: { rps: number; errors: number };
      atRate: { p99: number };
    }[];
  };
  assert.deepEqual(
    report.rows.map((x) => x.backend),
    ["sqlite", "postgres"],
  );
  for (const row of report.rows) {
    assert.ok(row.server.rps > 0, `${row.backend}: no requests served`);
    assert.equal(row.server.errors, 0, `${row.backend}: errors`);
    assert.ok(row.ratio > 0 && Number.isFinite(row.atRate.p99));
  }
});
