import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const bin = new URL("../../bin/slipway", import.meta.url).pathname;
const fixtures = new URL("./fixtures/", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "slipway-provision-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));

const slipway = (...args: string[]) => spawnSync(bin, args, { encoding: "utf8" });

test("config render writes Ignition to -o and exits 0", () => {
  const out = join(work, "basic.ign");
  const r = slipway("config", "render", join(fixtures, "basic.yaml"), "-o", out);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "");
  const ign = JSON.parse(readFileSync(out, "utf8"));
  assert.equal(ign.ignition.version, "3.3.0");
  const v = slipway("config", "validate", out, "--json");
  assert.equal(v.status, 0, v.stdout);
  assert.equal(JSON.parse(v.stdout).ok, true);
});

test("config render of a bad file exits 2, names file:line and writes nothing", () => {
  const src = join(work, "bad.yaml");
  const out = join(work, "bad.ign");
  writeFileSync(src, "storage:\n  files:\n    - path: relative/x\n");
  const r = slipway("config", "render", src, "-o", out);
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    /bad\.yaml:3:\d+: error at \$\.storage\.files\.0\.path: path not absolute/,
  );
  assert.equal(existsSync(out), false);
});

test("--strict turns warnings into exit 2; cloud-config is detected by its first line", () => {
  const cc = join(fixtures, "basic.cloud-config.yaml");
  const loose = slipway("config", "render", cc);
  assert.equal(loose.status, 0, loose.stderr);
  assert.match(loose.stderr, /warning at \$\.coreos\.etcd2/);
  assert.equal(JSON.parse(loose.stdout).ignition.version, "3.3.0");
  const strict = slipway("config", "render", cc, "--strict");
  assert.equal(strict.status, 2);
  assert.equal(strict.stdout, "");
});

test("config validate --json reports errors with path and line, exit 2", () => {
  const f = join(work, "rel.ign");
  writeFileSync(f, '{"ignition":{"version":"3.3.0"},\n"storage":{"files":[{"path":"etc/x"}]}}\n');
  const r = slipway("config", "validate", f, "--json", "--oracle");
  assert.equal(r.status, 2);
  const verdict = JSON.parse(r.stdout);
  assert.equal(verdict.ok, false);
  assert.equal(verdict.format, "ignition");
  assert.deepEqual(
    verdict.errors.map((e: { path: string; line: number }) => [e.path, e.line]),
    [["$.storage.files.0.path", 2]],
  );
  assert.equal(verdict.ignitionValidate.ok, false);
  assert.equal(verdict.ignitionValidate.findings[0].path, "$.storage.files.0.path");
});

test("a missing file is bad input (exit 2)", () => {
  const r = slipway("config", "validate", join(work, "nope.ign"));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /nope\.ign: cannot read: ENOENT/);
});
