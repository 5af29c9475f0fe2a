import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { configFromEntries, parseConfText } from "../../src/agent/config.ts";
import { decodeDataUrl } from "../../src/provision/model.ts";
import { oracleAvailable, runOracle } from "../../src/provision/oracle.ts";
import { ignitionJson, renderConfig } from "../../src/provision/render.ts";

const fixtures = new URL("./fixtures/", import.meta.url).pathname;
const read = (name: string) => readFileSync(join(fixtures, name), "utf8");
const work = mkdtempSync(join(tmpdir(), "slipway-provision-"));
after(() => rmSync(work, { recursive: true, force: true }));

type Ign = {
  ignition: { version: string };
  passwd: { users: { name: string; sshAuthorizedKeys?: string[]; groups?: string[] }[] };
  storage: {
    files: {
      path: string;
      mode?: number;
      contents?: { source: string };
      user?: unknown;
      group?: unknown;
    }[];
  };
  systemd: { units: { name: string; enabled?: boolean }[] };
};

function render(name: string): Ign {
  const r = renderConfig(read(name), join(fixtures, name));
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  assert.deepEqual(errors, [], `${name} should render`);
  assert.ok(r.config);
  return r.config as unknown as Ign;
}

/** Arrays sorted by their JSON, so "same config modulo ordering" compares equal. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(canonical).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, canonical(x)]),
    );
  }
  return v;
}

test("YAML with a user+ssh key, a 0600 file and an enabled unit renders to Ignition", () => {
  const ign = render("basic.yaml");
  assert.equal(ign.ignition.version, "3.3.0");
  const core = ign.passwd.users.find((u) => u.name === "core");
  assert.deepEqual(core?.sshAuthorizedKeys, [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx8 user@example",
  ]);
  const secret = ign.storage.files.find((f) => f.path === "/etc/secret.conf");
  assert.equal(secret?.mode, 0o600);
  assert.equal(decodeDataUrl(secret!.contents!.source).toString(), "token=abc def\n");
  assert.equal(ign.systemd.units[0]?.name, "hello.service");
  assert.equal(ign.systemd.units[0]?.enabled, true);
});

test("update settings become /etc/slipway/update.conf that the agent accepts", () => {
  const ign = render("basic.yaml");
  const conf = ign.storage.files.find((f) => f.path === "/etc/slipway/update.conf");
  assert.ok(conf?.contents, "update.conf is written");
  const text = decodeDataUrl(conf.contents.source).toString();
  const agent = configFromEntries(parseConfText(text, "update.conf"));
  assert.equal(agent.server, "https://updates.example.com/v1/update/");
  assert.equal(agent.group, "beta");
  assert.equal(agent.strategy, "etcd-lock");
  assert.deepEqual(agent.window?.days, [4]);
  assert.equal(agent.window?.minuteOfDay, 23 * 60);
  assert.equal(agent.window?.lengthSeconds, 3600);
  assert.deepEqual(agent.etcdEndpoints, ["http://10.0.0.1:2379"]);
});

test("the cloud-config equivalent renders to the same Ignition, warning about etcd2", () => {
  const fromCloud = renderConfig(
    read("basic.cloud-config.yaml"),
    join(fixtures, "basic.cloud-config.yaml"),
  );
  assert.equal(fromCloud.format, "cloud-config");
  assert.deepEqual(canonical(fromCloud.config), canonical(render("basic.yaml")));
  const warnings = fromCloud.diagnostics.filter((d) => d.severity === "warning");
  assert.deepEqual(
    warnings.map((w) => [w.path, w.line]),
    [["$.coreos.etcd2", 32]],
  );
});

test("ignition-validate accepts what we render, for every spec version", {
  skip: !oracleAvailable(),
}, () => {
  for (const version of ["3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0"]) {
    const text = read("basic.yaml").replace("version: 3.3.0", `version: ${version}`);
    const r = renderConfig(text, "basic.yaml", { filesDir: fixtures });
    assert.ok(r.config, `renders for ${version}`);
    const verdict = runOracle(ignitionJson(r.config));
    assert.ok(verdict.ok, `${version}: ${verdict.output}`);
    assert.deepEqual(verdict.findings, [], version);
  }
  const cloud = renderConfig(read("basic.cloud-config.yaml"), "c.yaml");
  assert.ok(runOracle(ignitionJson(cloud.config!)).ok);
});

test("version 3.4.0 is written as 3.4.0-experimental, which Ignition 2.14 knows", () => {
  const text = read("basic.yaml").replace("version: 3.3.0", "version: 3.4.0");
  const r = renderConfig(text, "x.yaml");
  assert.equal((r.config!.ignition as { version: string }).version, "3.4.0-experimental");
  assert.ok(r.diagnostics.some((d) => d.severity === "warning" && d.path === "$.version"));
  const fcos = renderConfig(
    text.replace("variant: slipway\nversion: 3.4.0", "variant: fcos\nversion: 1.4.0"),
    "x.yaml",
  );
  assert.equal((fcos.config!.ignition as { version: string }).version, "3.3.0");
});

test("local contents are read at render time and may not leave the files dir", () => {
  writeFileSync(join(work, "motd"), "hello\u00e9\n");
  writeFileSync(join(work, "bin.dat"), Buffer.from([0, 1, 2, 255, 254]));
  const yaml = `storage:
  files:
    - path: /etc/motd
      contents: {local: motd}
    - path: /opt/bin.dat
      contents: {local: bin.dat}
    - path: /etc/shadow-copy
      contents: {local: ../../etc/shadow}
`;
  const r = renderConfig(yaml, join(work, "c.yaml"));
  const errs = r.diagnostics.filter((d) => d.severity === "error");
  assert.equal(errs.length, 1);
  assert.equal(errs[0]?.path, "$.storage.files.2.contents.local");
  assert.equal(errs[0]?.line, 8);
  const ok = renderConfig(yaml.split("    - path: /etc/shadow-copy")[0]!, join(work, "c.yaml"));
  const files = (ok.config as unknown as Ign).storage.files;
  assert.equal(decodeDataUrl(files[0]!.contents!.source).toString(), "hello\u00e9\n");
  assert.deepEqual([...decodeDataUrl(files[1]!.contents!.source)], [0, 1, 2, 255, 254]);
});

test("YAML mistakes point at file:line and the YAML path", () => {
  const yaml = `variant: slipway
version: 3.3.0
storage:
  files:
    - path: etc/relative
      contents:
        source: https://example.com/x
        verification: {hash: md5-abc}
systemd:
  units:
    - name: nope
update:
  reboot_strategy: sometimes
  reboot_window: {start: "Thu 25:00", length: 1h}
`;
  const r = renderConfig(yaml, "bad.yaml");
  assert.equal(r.config, undefined);
  const errors = r.diagnostics
    .filter((d) => d.severity === "error")
    .map((d) => `${d.file}:${d.line} ${d.path}`);
  assert.deepEqual(errors, [
    "bad.yaml:5 $.storage.files.0.path",
    "bad.yaml:8 $.storage.files.0.contents.verification.hash",
    "bad.yaml:11 $.systemd.units.0.name",
    "bad.yaml:13 $.update.reboot_strategy",
    "bad.yaml:14 $.update.reboot_window.start",
  ]);
});

test("YAML syntax errors and an octal mode written in decimal", () => {
  const broken = renderConfig("storage:\n  files: [\n", "broken.yaml");
  assert.equal(broken.config, undefined);
  assert.equal(broken.diagnostics[0]?.severity, "error");
  assert.ok((broken.diagnostics[0]?.line ?? 0) >= 2);

  const r = renderConfig(
    "storage:\n  files:\n    - path: /a\n      mode: 644\n    - path: /b\n      mode: 0o644\n",
    "m.yaml",
  );
  const files = (r.config as unknown as Ign).storage.files;
  assert.equal(files[0]?.mode, 644);
  assert.equal(files[1]?.mode, 0o644);
  assert.ok(
    r.diagnostics.some((d) => d.path === "$.storage.files.0.mode" && /decimal/.test(d.message)),
  );
});

test("cloud-config: write_files encodings, owner, hostname and unsupported keys", () => {
  const text = `#cloud-config
hostname: node-1
manage_etc_hosts: localhost
write_files:
  - path: /etc/b64
    encoding: b64
    content: aGVsbG8K
    owner: core:wheel
    permissions: '0640'
coreos:
  units:
    - name: app.service
      command: start
      runtime: true
      content: |
        [Service]
        ExecStart=/bin/true
  fleet:
    metadata: region=x
`;
  const r = renderConfig(text, "cc.yaml");
  const ign = r.config as unknown as Ign & {
    storage: { files: { user?: unknown; group?: unknown }[] };
  };
  const host = ign.storage.files.find((f) => f.path === "/etc/hostname");
  assert.equal(decodeDataUrl(host!.contents!.source).toString(), "node-1\n");
  const b64 = ign.storage.files.find((f) => f.path === "/etc/b64")!;
  assert.equal(decodeDataUrl(b64.contents!.source).toString(), "hello\n");
  assert.equal(b64.mode, 0o640);
  assert.deepEqual([b64.user, b64.group], [{ name: "core" }, { name: "wheel" }]);
  assert.equal(ign.systemd.units[0]?.enabled, true);
  const warned = r.diagnostics.filter((d) => d.severity === "warning").map((d) => d.path);
  assert.deepEqual(warned.sort(), [
    "$.coreos.fleet",
    "$.coreos.units.0.command",
    "$.coreos.units.0.runtime",
    "$.manage_etc_hosts",
  ]);
});
