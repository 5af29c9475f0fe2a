import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { bundleAgent } from "../../scripts/bundle-agent.ts";
import { until } from "./helpers.ts";
import { makeHost } from "./host-fixture.ts";
import { startOmaha } from "./omaha-fixture.ts";

const NODE20 = "/usr/bin/node";
let dir: string;
let bundle: string;
let inputs: string[];

before(async () => {
  dir = mkdtempSync(join(process.env.SLIPWAY_TMP ?? tmpdir(), "slipway-agent-bundle-"));
  bundle = join(dir, "slipway-agent.cjs");
  ({ inputs } = await bundleAgent(bundle));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("the agent bundle holds no server, build or VM code", () => {
  const ours = inputs.filter((i) => i.startsWith("src/"));
  assert.ok(ours.includes("src/agent/agent.ts") && ours.includes("src/lock/etcd.ts"));
  const forbidden = ours.filter(
    (i) =>
      /^src\/(server|build|vm|provision|config)\//.test(i) ||
      // Payload creation is build-host only; the host only applies.
      /^src\/payload\/(create|delta)\.ts$/.test(i),
  );
  assert.deepEqual(forbidden, []);
  const deps = new Set(
    inputs
      .filter((i) => i.includes("node_modules/"))
      .map((i) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(i)?.[1]),
  );
  for (const heavy of ["kysely", "pg", "esbuild", "yaml", "react", "typescript"]) {
    assert.ok(!deps.has(heavy), `${heavy} is not in the agent bundle`);
  }
});

test("the bundle uses no Node 22+ API (the image runs Node 20)", () => {
  const code = readFileSync(bundle, "utf8");
  const newer =
    /node:sqlite|Zstd(?:De)?[cC]ompress|Promise\.withResolvers|Array\.fromAsync|Object\.groupBy|Map\.groupBy|import\.meta\.(?:main|dirname|filename)|process\.getBuiltinModule|Iterator\.from|RegExp\.escape|Float16Array|URL\.parse\(|\bglobSync\b|fs\.glob\b/g;
  assert.deepEqual([...new Set(code.match(newer) ?? [])], []);
});

test("the bundle runs on the image's Node 20: --help, and a daemon answering `update status`", async () => {
  const v = spawnSync(NODE20, ["--version"], { encoding: "utf8" });
  assert.match(v.stdout, /^v20\./);
  const help = spawnSync(NODE20, [bundle, "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /agent/);
  assert.match(help.stdout, /update/);
  assert.match(help.stdout, /lock/);

  const omaha = await startOmaha();
  const host = makeHost();
  const daemon = spawn(
    NODE20,
    [
      bundle,
      "agent",
      "--root",
      host.root,
      "--disk",
      "disk.img",
      "--check-now",
      "--system-state",
      "running",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  daemon.stderr.on("data", (d: Buffer) => {
    log += d.toString();
  });
  try {
    host.writeConf([`SERVER=${omaha.url}/v1/update/`, "REBOOT_STRATEGY=off"]);
    await until(() => /no-update/.test(log), "the first check on Node 20", 15_000);
    const st = spawnSync(NODE20, [bundle, "update", "status", "--json", "--root", host.root], {
      encoding: "utf8",
    });
    assert.equal(st.status, 0, st.stderr);
    const status = JSON.parse(st.stdout);
    assert.equal(status.state, "idle");
    assert.equal(status.currentVersion, "1.0.0");
    assert.equal(status.lastCheckResult, "no update");
    assert.ok(omaha.checks >= 1);
    // Async: the Omaha fixture lives in this process and must keep answering.
    const human = await promisify(execFile)(
      NODE20,
      [bundle, "update", "check", "--wait", "--root", host.root],
      {
        encoding: "utf8",
      },
    );
    assert.match(human.stdout, /state:\s+idle/);
    assert.match(human.stdout, /checking → idle/);
  } finally {
    daemon.kill("SIGTERM");
    await new Promise((r) => daemon.once("exit", r));
    host.cleanup();
    await omaha.stop();
  }
});
