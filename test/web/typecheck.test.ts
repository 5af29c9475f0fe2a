/** The dashboard sources type-check under their own (DOM, JSX) tsconfig; the root one skips them. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";
import { ROOT } from "./harness.ts";

it("web/src type-checks", async () => {
  const run = promisify(execFile);
  const r = await run(
    join(ROOT, "node_modules", ".bin", "tsc"),
    ["-p", join(ROOT, "web", "tsconfig.json")],
    {
      cwd: ROOT,
      timeout: 60_000,
    },
  ).catch((err: { stdout?: string; code?: number }) => ({
    stdout: err.stdout ?? "",
    code: err.code,
  }));
  assert.equal("code" in r ? r.code : 0, 0, r.stdout);
});
