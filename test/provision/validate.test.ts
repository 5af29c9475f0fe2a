import assert from "node:assert/strict";
import { test } from "node:test";
import { oracleAvailable, runOracle } from "../../src/provision/oracle.ts";
import { validateIgnitionText } from "../../src/provision/validate.ts";

const SHA512_X = `sha512-${"a".repeat(128)}`;
const SHA256_X = `sha256-${"b".repeat(64)}`;
const v = (version: string, rest = "") => `{"ignition":{"version":"${version}"}${rest}}`;
const file = (f: string) => v("3.3.0", `,"storage":{"files":[${f}]}`);

/** Inputs both validators must reject; `path` is where our error must be. */
const INVALID: { name: string; json: string; path: string }[] = [
  { name: "bad JSON", json: '{"ignition":{"version":"3.3.0"},', path: "$" },
  { name: "not an object", json: "[]", path: "$" },
  { name: "no version", json: '{"ignition":{}}', path: "$.ignition.version" },
  { name: "spec 2.x", json: v("2.3.0"), path: "$.ignition.version" },
  { name: "3.4.0 (2.14 knows only -experimental)", json: v("3.4.0"), path: "$.ignition.version" },
  { name: "relative path", json: file('{"path":"etc/x"}'), path: "$.storage.files.0.path" },
  { name: "unclean path", json: file('{"path":"/etc/./x"}'), path: "$.storage.files.0.path" },
  {
    name: "md5 hash",
    json: file('{"path":"/x","contents":{"source":"data:,x","verification":{"hash":"md5-abc"}}}'),
    path: "$.storage.files.0.contents.verification.hash",
  },
  {
    name: "short sha512",
    json: file(
      '{"path":"/x","contents":{"source":"data:,x","verification":{"hash":"sha512-abc"}}}',
    ),
    path: "$.storage.files.0.contents.verification.hash",
  },
  {
    name: "sha256 in spec 3.0",
    json: v(
      "3.0.0",
      `,"storage":{"files":[{"path":"/x","contents":{"source":"data:,x","verification":{"hash":"${SHA256_X}"}}}]}`,
    ),
    path: "$.storage.files.0.contents.verification.hash",
  },
  {
    name: "data URL with a space",
    json: file('{"path":"/x","contents":{"source":"data:,a b"}}'),
    path: "$.storage.files.0.contents.source",
  },
  {
    name: "bad base64",
    json: file('{"path":"/x","contents":{"source":"data:;base64,!!!"}}'),
    path: "$.storage.files.0.contents.source",
  },
  {
    name: "unknown URL scheme",
    json: file('{"path":"/x","contents":{"source":"ftp://h/x"}}'),
    path: "$.storage.files.0.contents.source",
  },
  { name: "mode too big", json: file('{"path":"/x","mode":4096}'), path: "$.storage.files.0.mode" },
  {
    name: "mode not a number",
    json: file('{"path":"/x","mode":"420"}'),
    path: "$.storage.files.0.mode",
  },
  { name: "duplicate file", json: file('{"path":"/x"},{"path":"/x"}'), path: "$.storage.files.1" },
  {
    name: "file below a link",
    json: v(
      "3.3.0",
      ',"storage":{"files":[{"path":"/l/x"}],"links":[{"path":"/l","target":"/t"}]}',
    ),
    path: "$.storage.files.0",
  },
  {
    name: "link without target",
    json: v("3.3.0", ',"storage":{"links":[{"path":"/l"}]}'),
    path: "$.storage.links.0.target",
  },
  {
    name: "owner by id and name",
    json: file('{"path":"/x","user":{"id":0,"name":"root"}}'),
    path: "$.storage.files.0.user",
  },
  {
    name: "unit without suffix",
    json: v("3.3.0", ',"systemd":{"units":[{"name":"foo"}]}'),
    path: "$.systemd.units.0.name",
  },
  {
    name: "unclosed unit section",
    json: v("3.3.0", ',"systemd":{"units":[{"name":"a.service","contents":"[Unit\\n"}]}'),
    path: "$.systemd.units.0.contents",
  },
  {
    name: "drop-in not .conf",
    json: v("3.3.0", ',"systemd":{"units":[{"name":"a.service","dropins":[{"name":"x"}]}]}'),
    path: "$.systemd.units.0.dropins.0.name",
  },
  {
    name: "duplicate users",
    json: v("3.3.0", ',"passwd":{"users":[{"name":"a"},{"name":"a"}]}'),
    path: "$.passwd.users.1",
  },
];

const VALID = [
  v("3.0.0"),
  v("3.4.0-experimental"),
  file(
    `{"path":"/x","mode":420,"contents":{"source":"https://h/x","verification":{"hash":"${SHA512_X}"}}}`,
  ),
  v(
    "3.2.0",
    `,"storage":{"files":[{"path":"/x","contents":{"source":"data:;base64,aGk=","verification":{"hash":"${SHA256_X}"}}}]}`,
  ),
  v(
    "3.3.0",
    ',"systemd":{"units":[{"name":"a@.service","enabled":true,"contents":"[Unit]\\nDescription=a\\n"}]}',
  ),
];

test("invalid configs are rejected at the exact JSON path", () => {
  for (const c of INVALID) {
    const r = validateIgnitionText(c.json, "t.ign");
    assert.equal(r.ok, false, c.name);
    const paths = r.diagnostics.filter((d) => d.severity === "error").map((d) => d.path);
    assert.ok(paths.includes(c.path), `${c.name}: expected an error at ${c.path}, got ${paths}`);
  }
});

test("valid configs pass with no errors", () => {
  for (const json of VALID) {
    const r = validateIgnitionText(json, "t.ign");
    assert.deepEqual(
      r.diagnostics.filter((d) => d.severity === "error"),
      [],
      json,
    );
    assert.ok(r.ok);
  }
});

test("ignition-validate agrees on every verdict and on the paths it names", {
  skip: !oracleAvailable(),
}, () => {
  for (const c of INVALID) {
    const oracle = runOracle(c.json);
    assert.equal(oracle.ok, false, `ignition-validate should reject: ${c.name}`);
    const named = oracle.findings
      .filter((f) => f.severity === "error" && f.path)
      .map((f) => f.path);
    // Where Ignition names a path (type errors and bad JSON it reports by line only), it is ours.
    if (named.length > 0) assert.ok(named.includes(c.path), `${c.name}: oracle said ${named}`);
  }
  for (const json of VALID) assert.ok(runOracle(json).ok, json);
});

test("line numbers come from the JSON source and unknown keys only warn", () => {
  const json =
    '{\n  "ignition": {"version": "3.3.0"},\n  "colour": 1,\n  "storage": {"files": [\n    {"path": "x"}\n  ]}\n}';
  const r = validateIgnitionText(json, "t.ign");
  const err = r.diagnostics.find((d) => d.severity === "error");
  assert.equal(err?.line, 5);
  assert.equal(err?.path, "$.storage.files.0.path");
  const warn = r.diagnostics.find((d) => d.severity === "warning");
  assert.deepEqual([warn?.path, warn?.line], ["$.colour", 3]);
});

test("fields newer than the declared spec are unused keys, as Ignition treats them", () => {
  const r = validateIgnitionText(
    v("3.0.0", ',"kernelArguments":{"shouldExist":["quiet"]}'),
    "t.ign",
  );
  assert.ok(r.ok);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.severity, d.path]),
    [["warning", "$.kernelArguments"]],
  );
});
