/** The build's pure parts: sysusers.d generation, lockfile pins, version numbering, package diffs, cache. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { addBuild, nextDateVersion } from "../../src/build/builds-index.ts";
import { StageCache } from "../../src/build/cache.ts";
import { convertImage, formatExtension, type ImageFormat } from "../../src/build/formats.ts";
import { hashJson, hashPath } from "../../src/build/hash.ts";
import { MissingToolsError, missingTools, tool } from "../../src/build/host-tools.ts";
import { OEM_ENVIRONMENT_SCRIPT, osRelease, updateConf } from "../../src/build/image-files.ts";
import { licenceNames } from "../../src/build/licences.ts";
import { lockfileFrom, type PackageRequest, pinsFor } from "../../src/build/lockfile.ts";
import { diffPackages } from "../../src/build/meta.ts";
import { createReporter } from "../../src/build/progress.ts";
import { type Stage, StageFailedError, StageRunner } from "../../src/build/stage.ts";
import { sysusersConf } from "../../src/build/sysusers.ts";

const tmp = mkdtempSync(join(tmpdir(), "slipway-build-units-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe("sysusers.d from the image's passwd and group", () => {
  const passwd = [
    "root:x:0:0:root:/root:/bin/bash",
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "messagebus:x:100:101::/nonexistent:/usr/sbin/nologin",
    "systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin",
    "core:x:1000:1000:Core:/home/core:/bin/bash",
  ].join("\n");
  const group = [
    "root:x:0:",
    "daemon:x:1:",
    "adm:x:4:core",
    "messagebus:x:101:",
    "systemd-network:x:998:",
    "core:x:1000:",
  ].join("\n");
  const conf = sysusersConf(passwd, group);
  it("keeps system ids and leaves out root and people", () => {
    assert.match(conf, /^u daemon 1:1 daemon \/usr\/sbin \/usr\/sbin\/nologin$/m);
    assert.match(conf, /^u messagebus 100:101 - \/nonexistent \/usr\/sbin\/nologin$/m);
    assert.match(
      conf,
      /^u systemd-network 998:998 "systemd Network Management" \/ \/usr\/sbin\/nologin$/m,
    );
    assert.match(conf, /^g adm 4$/m);
    assert.doesNotMatch(conf, /\broot\b|\bcore\b/);
  });
  it("creates every group before the users that name it", () => {
    // `u messagebus 100:101` does not create gid 101: systemd-sysusers wants it to exist.
    const g = conf.indexOf("g messagebus 101\n");
    assert.ok(g >= 0, conf);
    assert.ok(g < conf.indexOf("u messagebus 100:101"), conf);
    assert.match(conf, /^g daemon 1$/m);
  });
});

describe("lockfile", () => {
  const req: PackageRequest = {
    suite: "trixie",
    mirror: "http://deb.debian.org/debian",
    components: ["main"],
    architecture: "amd64",
    packages: ["systemd"],
  };
  const lock = lockfileFrom(req, [
    { name: "systemd", version: "257.9-1", architecture: "amd64" },
    { name: "libc6", version: "2.41-12", architecture: "amd64" },
  ]);
  it("pins every installed package while the request is the same", () => {
    assert.deepEqual(pinsFor(lock, req), { libc6: "2.41-12", systemd: "257.9-1" });
    assert.deepEqual(Object.keys(lock.packages), ["libc6", "systemd"], "sorted");
  });
  it("is ignored when the request changed", () => {
    assert.equal(pinsFor(lock, { ...req, packages: ["systemd", "less"] }), undefined);
    assert.equal(pinsFor(lock, { ...req, suite: "forky" }), undefined);
    assert.equal(pinsFor(undefined, req), undefined);
  });
});

describe("versions and the builds index", () => {
  it("numbers a day's builds from 1", () => {
    const now = new Date("2026-11-26T10:00:00Z");
    let index = {
      schemaVersion: 1 as const,
      builds: [] as {
        version: string;
        buildId: string;
        time: string;
        inputHash: string;
        flavour: string;
      }[],
    };
    assert.equal(nextDateVersion(index, now), "2026.11.26.1");
    const entry = (version: string) => ({
      version,
      buildId: version,
      time: "",
      inputHash: "",
      flavour: "dev",
    });
    index = addBuild(index, entry("2026.11.26.1"));
    index = addBuild(index, entry("2026.11.26.2"));
    assert.equal(nextDateVersion(index, now), "2026.11.26.3");
    assert.equal(nextDateVersion(index, new Date("2026-11-27T00:00:01Z")), "2026.11.27.1");
    assert.deepEqual(
      index.builds.map((b) => b.version),
      ["2026.11.26.2", "2026.11.26.1"],
      "newest first",
    );
    mkdirSync(join(tmp, "builds/2026.11.26.3"), { recursive: true });
    assert.equal(
      nextDateVersion(index, now, join(tmp, "builds")),
      "2026.11.26.4",
      "never reuses a directory",
    );
  });
  it("diffs package lists", () => {
    const p = (name: string, version: string) => ({ name, version, architecture: "amd64" });
    const d = diffPackages(
      [p("a", "1"), p("b", "1"), p("c", "1")],
      [p("a", "1"), p("b", "2"), p("d", "1")],
      "v1",
    );
    assert.deepEqual(
      d.added.map((x) => x.name),
      ["d"],
    );
    assert.deepEqual(
      d.removed.map((x) => x.name),
      ["c"],
    );
    assert.deepEqual(d.changed, [{ name: "b", from: "1", to: "2" }]);
    assert.equal(
      diffPackages(undefined, [p("a", "1")], null).added.length,
      0,
      "no previous build: no diff",
    );
  });
});

describe("image files", () => {
  const id = {
    name: "mini",
    prettyName: "Mini OS",
    version: "2026.11.26.1",
    buildId: "b1",
    flavour: "dev" as const,
    suite: "trixie",
  };
  it("os-release carries IMAGE_VERSION and BUILD_ID, quoting where needed", () => {
    const text = osRelease(id, "13.2");
    assert.match(text, /^IMAGE_VERSION=2026\.11\.26\.1$/m);
    assert.match(text, /^BUILD_ID=b1$/m);
    assert.match(text, /^NAME="Mini OS"$/m);
    assert.match(text, /^VARIANT_ID=dev$/m);
  });
  it("update.conf has the keys the agent reads", () => {
    const text = updateConf(
      {
        server: "https://u.example/v1/update",
        group: "beta",
        rebootStrategy: "etcd-lock",
        rebootWindowStart: "Thu 23:00",
        rebootWindowLength: "1h",
        etcdEndpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"],
        fleetlockUrl: "http://lock.example:8080/",
        lockGroup: "web-eu",
      },
      id,
    );
    assert.match(text, /^SERVER=https:\/\/u\.example\/v1\/update$/m);
    assert.match(text, /^ETCD_ENDPOINTS=http:\/\/10\.0\.0\.1:2379,http:\/\/10\.0\.0\.2:2379$/m);
    assert.match(text, /^FLEETLOCK_URL=http:\/\/lock\.example:8080\/$/m);
    assert.match(text, /^LOCK_GROUP=web-eu$/m);
    const bare = updateConf({ group: "stable", rebootStrategy: "reboot", etcdEndpoints: [] }, id);
    assert.doesNotMatch(bare, /ETCD_ENDPOINTS|FLEETLOCK_URL|LOCK_GROUP/);
    assert.match(text, /^GROUP=beta$/m);
    assert.match(text, /^REBOOT_STRATEGY=etcd-lock$/m);
    assert.match(text, /^REBOOT_WINDOW_START=Thu 23:00$/m);
    assert.match(text, /^REBOOT_WINDOW_LENGTH=1h$/m);
  });
  it("finds licence names in DEP-5 copyright files", () => {
    assert.deepEqual(
      licenceNames("Files: *\nLicense: GPL-2+\n\nFiles: x\nLicense: MIT\n text\nLicense: GPL-2+\n"),
      ["GPL-2+", "MIT"],
    );
  });
});

describe("host tools", () => {
  it("names the Debian packages of missing tools once each", () => {
    const missing = missingTools(
      [
        tool("sh", "dash"),
        tool("no-such-tool-1", "pkg-b"),
        tool("no-such-tool-2", "pkg-a"),
        tool("no-such-tool-3", "pkg-a"),
      ],
      "/usr/bin:/bin",
    );
    assert.deepEqual(
      missing.map((t) => t.command),
      ["no-such-tool-1", "no-such-tool-2", "no-such-tool-3"],
    );
    assert.match(new MissingToolsError(missing).message, /apt-get install pkg-a pkg-b$/);
  });
});

describe("stage runner and cache", () => {
  const counter = { runs: 0 };
  const echo: Stage<{ text: string; src: string }, { file: string }> = {
    name: "echo",
    title: "echo",
    version: 1,
    tools: [],
    key: async (i) => ({ text: i.text, src: await hashPath(i.src) }),
    async run(i, ctx) {
      counter.runs++;
      writeFileSync(join(ctx.outDir, "out.txt"), i.text);
      ctx.log("wrote out.txt");
      if (i.text === "fail") throw new Error("asked to fail");
      return { file: "out.txt" };
    },
  };
  const src = join(tmp, "src");
  mkdirSync(src);
  writeFileSync(join(src, "a"), "1");
  const log = join(tmp, "build.log");
  writeFileSync(log, "");
  const cache = new StageCache(join(tmp, "cache"), 2);
  const runner = new StageRunner({ cache, reporter: createReporter("quiet"), buildLog: log });

  it("runs once per key and reuses the output", async () => {
    const a = await runner.run(echo, { text: "a", src });
    const again = await runner.run(echo, { text: "a", src });
    assert.equal(counter.runs, 1);
    assert.equal(again.cached, true);
    assert.equal(again.key, a.key);
    assert.equal(readFileSync(again.path(again.value.file), "utf8"), "a");
  });
  it("keys by content, not by mtime", async () => {
    utimesSync(join(src, "a"), new Date(0), new Date(0));
    assert.equal((await runner.run(echo, { text: "a", src })).cached, true);
    writeFileSync(join(src, "a"), "2");
    assert.equal((await runner.run(echo, { text: "a", src })).cached, false);
  });
  it("a failure leaves no entry and reports the log tail", async () => {
    await assert.rejects(runner.run(echo, { text: "fail", src }), (err: unknown) => {
      assert.ok(err instanceof StageFailedError);
      assert.equal(err.stage, "echo");
      assert.deepEqual(err.logTail, ["wrote out.txt"]);
      return true;
    });
    const key = await runner.keyOf(echo, { text: "fail", src });
    assert.equal(existsSync(join(tmp, "cache/echo", key)), false);
  });
  it("keeps only the newest entries per stage", async () => {
    for (const t of ["b", "c", "d"]) await runner.run(echo, { text: t, src });
    cache.pruneAll();
    const oldest = await runner.keyOf(echo, { text: "b", src });
    assert.equal(existsSync(join(tmp, "cache/echo", oldest)), false);
    assert.equal(
      existsSync(join(tmp, "cache/echo", await runner.keyOf(echo, { text: "d", src }))),
      true,
    );
  });
  it("hashes JSON canonically", () => {
    assert.equal(hashJson({ a: 1, b: [1, 2] }), hashJson({ b: [1, 2], a: 1 }));
    assert.notEqual(hashJson({ a: 1 }), hashJson({ a: 2 }));
  });
});

describe("image formats", () => {
  it("writes every format from a small raw disk", async () => {
    const raw = join(tmp, "small.raw");
    writeFileSync(raw, Buffer.alloc(1024 * 1024, 0xab));
    truncateSync(raw, 8 * 1024 * 1024);
    const expected: Record<string, string> = {
      qcow2: "qcow2",
      vmdk: "vmdk",
      vhd: "vpc",
      vhdx: "vhdx",
      raw: "raw",
    };
    for (const [format, qemuName] of Object.entries(expected)) {
      const out = join(tmp, `small.${formatExtension(format as ImageFormat)}`);
      await convertImage(raw, out, format as ImageFormat);
      const info = JSON.parse(
        spawnSync(
          "qemu-img",
          // A fixed VHD is raw data plus a footer: name the format or it probes as raw.
          ["info", "--output=json", ...(format === "vhd" ? ["-f", "vpc"] : []), out],
          { encoding: "utf8" },
        ).stdout,
      ) as { format: string; "virtual-size": number };
      assert.equal(info.format, qemuName, format);
      assert.ok(info["virtual-size"] >= 8 * 1024 * 1024, format);
    }
    const gce = join(tmp, "small.tar.gz");
    await convertImage(raw, gce, "gce");
    const list = spawnSync("tar", ["-tvzf", gce], { encoding: "utf8" }).stdout;
    assert.match(list, /\b8388608\b.*disk\.raw$/m, "one member disk.raw of the full size");
    assert.deepEqual(
      readdirSync(tmp).filter((n) => n.includes(".tmp-") || n.startsWith(".gce-")),
      [],
    );
  });
});

describe("the update agent in every image", () => {
  it("bundles the agent for the image's Node and keys the customize stage on its content", async () => {
    const { buildAgentFiles } = await import("../../src/build/agent-bundle.ts");
    const { customizeStage } = await import("../../src/build/customize.ts");
    const agent = await buildAgentFiles();
    assert.match(agent.bundle, /^#!\/usr\/bin\/env node\n/);
    assert.match(
      agent.unit,
      /^ExecStart=\/usr\/bin\/node \/usr\/lib\/slipway\/slipway-agent\.cjs agent$/m,
    );
    assert.match(agent.hash, /^[0-9a-f]{64}$/);
    const input = { overlays: [], update: {}, agent } as never;
    const changed = {
      overlays: [],
      update: {},
      agent: { ...agent, hash: "0".repeat(64) },
    } as never;
    assert.notEqual(
      hashJson(await customizeStage.key(input)),
      hashJson(await customizeStage.key(changed)),
    );
  });
});

describe("the OEM environment merge (runs on every boot, shell builtins only)", () => {
  it("adds the OEM's keys that /etc/environment lacks, keeps local values, and is idempotent", () => {
    const dir = mkdtempSync(join(tmp, "oem-env-"));
    const etc = join(dir, "etc-environment");
    const oem = join(dir, "oem-environment");
    const script = join(dir, "merge");
    writeFileSync(
      script,
      OEM_ENVIRONMENT_SCRIPT.replaceAll("/etc/environment", etc).replaceAll(
        "/oem/environment",
        oem,
      ),
    );
    writeFileSync(oem, "SLIPWAY_PLATFORM=qemu\n# comment\n\nFOO=oem\nexport X\nBAR=2");
    // A local value wins, and a last line without a newline is not glued to the first addition.
    writeFileSync(etc, "FOO=local\nexport X\nPATH=/x");
    for (let i = 0; i < 2; i++) {
      const r = spawnSync("sh", [script], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    }
    assert.equal(
      readFileSync(etc, "utf8"),
      "FOO=local\nexport X\nPATH=/x\nSLIPWAY_PLATFORM=qemu\nBAR=2\n",
    );
    // No /etc/environment yet (a fresh ROOT): it is created with the OEM's lines.
    rmSync(etc);
    assert.equal(spawnSync("sh", [script]).status, 0);
    assert.equal(readFileSync(etc, "utf8"), "SLIPWAY_PLATFORM=qemu\nFOO=oem\nexport X\nBAR=2\n");
  });
});
