import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError, loadConfig, parseConfig } from "../../src/config/load.ts";
import { parseSizeMiB } from "../../src/config/schema.ts";

const dir = mkdtempSync(join(tmpdir(), "slipway-config-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function problems(text: string): { line: number; key: string; message: string }[] {
  try {
    parseConfig(text, join(dir, "slipway.yaml"));
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.equal(err.exitCode, 2);
    return err.issues;
  }
  assert.fail("config was accepted");
}

describe("image config", () => {
  it("fills defaults for a minimal config", () => {
    const { config } = parseConfig("name: mini\n", join(dir, "slipway.yaml"));
    assert.equal(config.debian.suite, "trixie");
    assert.equal(config.debian.mirror, "http://deb.debian.org/debian");
    assert.equal(config.flavour, "dev");
    assert.equal(config.usr.compression, "lz4hc");
    assert.equal(config.partitions.usr, 1024);
    assert.deepEqual(
      config.oem.map((o) => o.id),
      ["qemu"],
    );
    assert.equal(config.version.scheme, "date");
    assert.equal(config.update.rebootStrategy, "reboot");
  });

  it("accepts fleetlock and the reboot-lock settings, and checks their URLs", () => {
    const { config } = parseConfig(
      [
        "name: mini",
        "update:",
        "  rebootStrategy: fleetlock",
        "  fleetlockUrl: http://127.0.0.1:8080/",
        "  etcdEndpoints: [http://10.0.0.1:2379, https://10.0.0.2:2379]",
        "  lockGroup: web-eu",
        "",
      ].join("\n"),
      join(dir, "slipway.yaml"),
    );
    assert.equal(config.update.rebootStrategy, "fleetlock");
    assert.equal(config.update.fleetlockUrl, "http://127.0.0.1:8080/");
    assert.deepEqual(config.update.etcdEndpoints, [
      "http://10.0.0.1:2379",
      "https://10.0.0.2:2379",
    ]);
    assert.equal(config.update.lockGroup, "web-eu");
    const found = problems(
      [
        "name: mini",
        "update:",
        "  fleetlockUrl: ftp://x",
        "  etcdEndpoints: [not-a-url]",
        "  lockGroup: bad group",
        "  lockMax: 2",
        "",
      ].join("\n"),
    );
    const keys = found.map((p) => p.key).sort();
    assert.ok(keys.includes("update.fleetlockUrl"), JSON.stringify(found));
    assert.ok(
      keys.some((k) => k.startsWith("update.etcdEndpoints")),
      JSON.stringify(found),
    );
    assert.ok(keys.includes("update.lockGroup"), JSON.stringify(found));
    assert.ok(
      found.some((p) => /lockMax/.test(p.key + p.message)),
      JSON.stringify(found),
    );
  });

  it("names file, line and key of each problem", () => {
    const text = [
      "name: mini", //            1
      "packages:", //             2
      "  - systemd", //           3
      "  - Not_A_Package", //     4
      "flavour: staging", //      5
      "partitions:", //           6
      "  esp: 12 parsecs", //     7
      "colour: blue", //          8
      "update:", //               9
      "  group: 'a b'", //        10
      "  rebootStrategy: now", // 11
    ].join("\n");
    const issues = problems(text);
    const at = (key: string) => issues.find((i) => i.key === key);
    assert.equal(at("packages[1]")?.line, 4);
    assert.equal(at("flavour")?.line, 5);
    assert.match(at("flavour")!.message, /"dev", "prod"/);
    assert.equal(at("partitions.esp")?.line, 7);
    assert.equal(at("colour")?.line, 8);
    assert.equal(at("colour")?.message, "unknown key");
    assert.equal(at("update.group")?.line, 10);
    assert.equal(at("update.rebootStrategy")?.line, 11);
    assert.equal(issues.length, 6);
  });

  it("reports the message as file:line: key: problem", () => {
    try {
      parseConfig("name: mini\nflavour: staging\n", "/x/slipway.yaml");
      assert.fail("accepted");
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^\/x\/slipway\.yaml:2: flavour: must be one of/);
    }
  });

  it("reports YAML syntax errors with their line", () => {
    const issues = problems("name: mini\npackages: [a, b\nflavour: dev\n");
    assert.ok(issues[0]!.line >= 2, `line ${issues[0]!.line}`);
  });

  it("requires a name and points semver without value at version", () => {
    assert.equal(problems("flavour: dev\n")[0]?.key, "name");
    const issues = problems("name: mini\nversion:\n  scheme: semver\n");
    assert.equal(issues[0]?.key, "version.value");
    assert.equal(issues[0]?.line, 2);
  });

  it("checks that overlay directories and the signing key exist", () => {
    mkdirSync(join(dir, "present"), { recursive: true });
    const issues = problems(
      [
        "name: mini",
        "overlays:",
        "  - source: present",
        "    target: /etc",
        "  - source: absent",
        "    target: /usr/lib/x",
        "flavour: prod",
        "prod:",
        "  signingKey: keys/missing.pem",
      ].join("\n"),
    );
    assert.deepEqual(
      issues.map((i) => [i.line, i.key]),
      [
        [5, "overlays[1].source"],
        [9, "prod.signingKey"],
      ],
    );
  });

  it("refuses overlays outside /usr and /etc and debug access in prod", () => {
    writeFileSync(join(dir, "key.pem"), "-----BEGIN PUBLIC KEY-----\n");
    const target = problems("name: mini\noverlays:\n  - source: present\n    target: /var/lib\n");
    assert.deepEqual(
      target.map((i) => [i.line, i.key]),
      [[4, "overlays[0].target"]],
    );
    const debug = problems(
      "name: mini\nflavour: prod\nprod:\n  signingKey: key.pem\ndev:\n  debugPassword: hunter2\n",
    );
    assert.deepEqual(
      debug.map((i) => [i.line, i.key]),
      [[5, "dev"]],
    );
  });

  it("loads a file and resolves it relative to its directory", () => {
    writeFileSync(join(dir, "slipway.yaml"), "name: mini\noverlays:\n  - source: present\n");
    const loaded = loadConfig(join(dir, "slipway.yaml"));
    assert.equal(loaded.dir, dir);
    assert.equal(loaded.config.overlays[0]?.target, "/usr");
    assert.equal(loaded.lineOf(["overlays", 0, "source"]), 3);
  });

  it("parses sizes", () => {
    assert.equal(parseSizeMiB("128M"), 128);
    assert.equal(parseSizeMiB("1G"), 1024);
    assert.equal(parseSizeMiB("2GiB"), 2048);
    assert.equal(parseSizeMiB(64), 64);
    assert.equal(parseSizeMiB("1.5G"), undefined);
    assert.equal(parseSizeMiB("512K"), undefined, "half a MiB is not a whole MiB");
    assert.equal(parseSizeMiB("2048K"), 2);
  });
});
