/**
 * `slipway publish` of a real build directory (the example image from test/build/fixture.ts):
 * the signed full payload is created from the build and uploaded, a delta payload from an
 * older build goes next to it, and update checks offer each to the right hosts.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { verifyPayload } from "../../src/payload/index.ts";
import { exampleBuild } from "../build/fixture.ts";
import { startTestServer, type TestServer } from "./helpers.ts";

const bin = new URL("../../bin/slipway", import.meta.url).pathname;
const work = mkdtempSync("/var/tmp/server-publish-");
let t: TestServer | undefined;
after(async () => {
  // The payloads first (hundreds of MB), whatever closing the server does.
  rmSync(work, { recursive: true, force: true });
  await t?.close();
});

test("publish BUILD creates and uploads its signed payload and a delta from an older build", async () => {
  const build = await exampleBuild();
  // An "older build": the same USR image under an earlier version (a delta of all copies).
  const old = join(work, "old-build");
  const meta = JSON.parse(readFileSync(join(build.buildDir, "meta.json"), "utf8"));
  spawnSync("mkdir", ["-p", old]);
  writeFileSync(join(old, "meta.json"), JSON.stringify({ ...meta, version: "2000.01.01.1" }));
  linkSync(join(build.buildDir, meta.artifacts.usr.path), join(old, meta.artifacts.usr.path));
  const key = join(work, "k");
  assert.equal(spawnSync(bin, ["keygen", "-o", key]).status, 0);

  t = await startTestServer();
  assert.equal((await t.api("POST", "/api/apps", { id: "os", name: "OS" })).status, 201);
  const started = Date.now();
  // Asynchronous: the server runs in this process.
  const pub = await promisify(execFile)(
    bin,
    [
      "publish",
      build.buildDir,
      "--key",
      `${key}.key`,
      "--from",
      old,
      "--payload-dir",
      work,
      "--server",
      t.url,
      "--app",
      "os",
      "--channel",
      "stable",
      "--token",
      t.token,
      "--json",
    ],
    { encoding: "utf8", maxBuffer: 16 << 20 },
  );
  const out = JSON.parse(pub.stdout) as {
    version: string;
    size: number;
    deltas: { from: string; size: number }[];
  };
  process.stderr.write(`publish of the example build: ${(Date.now() - started) / 1000} s\n`);
  assert.equal(out.version, build.meta.version);
  assert.deepEqual(
    out.deltas.map((d) => d.from),
    ["2000.01.01.1"],
  );
  // Between equal images the delta is the kernel and initrd; the USR image is all copies.
  assert.ok(out.deltas[0]!.size < out.size / 5, `delta too big: ${pub.stdout}`);
  const ch = await t.api<{ name: string; package: string }[]>("GET", "/api/apps/os/channels");
  assert.equal(ch.body.find((c) => c.name === "stable")?.package, build.meta.version);
  assert.equal(
    (
      await t.api("POST", "/api/apps/os/groups", {
        name: "stable",
        channel: "stable",
        policy: { safeMode: false, maxUpdatesPerPeriod: 100 },
      })
    ).status,
    201,
  );

  const offer = async (machineId: string, version: string) => {
    const r = await t!.omaha("os", {
      machineId,
      version,
      track: "stable",
      deltaOkay: true,
      ping: { active: 1 },
      updateCheck: {},
    });
    const uc = r.res.apps[0]!.updateCheck!;
    assert.equal(uc.status, "ok");
    const p = uc.manifest!.packages[0]!;
    return { url: uc.urls[0]! + p.name, size: p.size, action: uc.manifest!.actions[0]! };
  };
  const delta = await offer("old-host", "2000.01.01.1");
  assert.equal(delta.action.isDelta, true);
  const file = join(work, "downloaded-delta.payload");
  const body = Buffer.from(await (await fetch(delta.url)).arrayBuffer());
  assert.equal(body.length, delta.size);
  assert.equal(createHash("sha256").update(body).digest("base64"), delta.action.sha256);
  writeFileSync(file, body);
  const summary = await verifyPayload(file, [`${key}.pub`]);
  assert.equal(JSON.stringify(summary).includes(build.meta.version), true);

  const full = await offer("other-host", "1999.01.01.1");
  assert.equal(full.action.isDelta, false);
  assert.equal(full.size, out.size);
  const head = await fetch(full.url, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get("content-length")), out.size);
});
