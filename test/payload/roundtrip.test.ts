import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { build } from "esbuild";
import {
  applyPayload,
  createPayload,
  inspectPayload,
  verifyPayload,
  WrongSourceError,
} from "../../src/payload/index.ts";
import { type Fixture, makeFixture, sha256File } from "./fixture.ts";

const bin = new URL("../../bin/slipway", import.meta.url).pathname;
let fx: Fixture;
let payload: string;

before(async () => {
  fx = makeFixture();
  writeFileSync(join(fx.dir, "vmlinuz"), "kernel bytes");
  writeFileSync(join(fx.dir, "initrd"), Buffer.alloc(100_000, 7));
  payload = join(fx.dir, "added.slp");
  await createPayload({
    target: fx.added,
    sources: [{ path: fx.base, version: "1" }, { path: fx.edited }],
    keys: [fx.key],
    output: payload,
    version: "2",
    kernel: join(fx.dir, "vmlinuz"),
    initrd: join(fx.dir, "initrd"),
    verity: { rootHash: "ab".repeat(32), hashOffset: 8192 },
    chunkSize: 64 << 10,
  });
});
after(() => fx.cleanup());

test("full apply rebuilds the image byte for byte", async () => {
  const target = join(fx.dir, "full.img");
  const seen: string[] = [];
  const r = await applyPayload({
    payload,
    target,
    trustedKeys: [fx.pub],
    onProgress: (p) => seen.push(p.phase),
  });
  assert.equal(r.plan, "full");
  assert.equal(sha256File(target), sha256File(fx.added));
  assert.equal(r.sha256, sha256File(fx.added));
  assert.equal(r.kernel?.toString(), "kernel bytes");
  assert.equal(r.initrd?.length, 100_000);
  assert.deepEqual(r.verity, { rootHash: "ab".repeat(32), hashOffset: 8192 });
  assert.ok(seen.includes("write") && seen.includes("verify"));
  assert.equal(existsSync(`${target}.slipway-journal`), false);
});

test("delta apply from the previous image reads little and gives the same bytes", async () => {
  const target = join(fx.dir, "delta.img");
  // A stale, longer file in the way: apply overwrites and trims it.
  writeFileSync(target, Buffer.alloc(statSync(fx.added).size + 12345, 9));
  const r = await applyPayload({ payload, target, source: fx.base, trustedKeys: [fx.pub] });
  assert.match(r.plan, /^delta-/);
  assert.equal(sha256File(target), sha256File(fx.added));
  const s = await inspectPayload(payload);
  const full = s.plans.find((p) => p.id === "full")!;
  const delta = s.plans.find((p) => p.id === r.plan)!;
  assert.ok(
    delta.downloadBytes < full.downloadBytes / 3,
    `${delta.downloadBytes} vs ${full.downloadBytes}`,
  );
});

test("without the native brotli handle, blobs decode in one piece and apply the same", async (t) => {
  const { useNativeBrotli } = await import("../../src/payload/blob-reader.ts");
  useNativeBrotli(false);
  t.after(() => useNativeBrotli(true));
  for (const source of [undefined, fx.base]) {
    const target = join(fx.dir, "fallback-decoder.img");
    const r = await applyPayload({
      payload,
      target,
      trustedKeys: [fx.pub],
      ...(source ? { source } : {}),
    });
    assert.equal(r.plan === "full", source === undefined);
    assert.equal(sha256File(target), sha256File(fx.added));
    assert.equal(r.initrd?.length, 100_000);
  }
});

test("a source matching no delta falls back to the full plan; a delta-only payload refuses it", async () => {
  const target = join(fx.dir, "fallback.img");
  const r = await applyPayload({ payload, target, source: fx.added, trustedKeys: [fx.pub] });
  assert.equal(r.plan, "full");
  const deltaOnly = join(fx.dir, "delta-only.slp");
  await createPayload({
    target: fx.added,
    sources: [{ path: fx.base }],
    full: false,
    keys: [fx.key],
    output: deltaOnly,
    version: "2",
  });
  await assert.rejects(
    applyPayload({ payload: deltaOnly, target, source: fx.edited, trustedKeys: [fx.pub] }),
    (err: Error) => err instanceof WrongSourceError && /wrong source version/.test(err.message),
  );
  // Told the wrong source hash, the chunk checks still catch the wrong base.
  await assert.rejects(
    applyPayload({
      payload: deltaOnly,
      target: join(fx.dir, "wrong.img"),
      source: fx.edited,
      sourceSha256: sha256File(fx.base),
      trustedKeys: [fx.pub],
    }),
    // The agent asks for the full payload after this error.
    (err: Error) => err instanceof WrongSourceError && /chunk \d+ does not match/.test(err.message),
  );
});

test("keys rotate: any trusted key will do, an untrusted one is refused", async () => {
  const two = join(fx.dir, "two-keys.slp");
  await createPayload({
    target: fx.edited,
    keys: [fx.key, fx.otherKey],
    output: two,
    version: "3",
  });
  assert.deepEqual((await verifyPayload(two, [fx.otherPub])).signatures.length, 2);
  assert.equal((await verifyPayload(two, [fx.pub])).verifiedBy.length, 1);
  await assert.rejects(verifyPayload(payload, [fx.otherPub]), /not signed by a trusted key/);
});

test("resume after an interruption finishes with the right bytes", async () => {
  const target = join(fx.dir, "resume.img");
  let stop = 0;
  await assert.rejects(
    applyPayload({
      payload,
      target,
      source: fx.base,
      trustedKeys: [fx.pub],
      checkpointBytes: 64 << 10,
      onProgress: (p) => {
        if (p.phase === "write" && ++stop === 40) throw new Error("interrupted");
      },
    }),
    /interrupted/,
  );
  const j = JSON.parse(readFileSync(`${target}.slipway-journal`, "utf8"));
  assert.ok(j.chunksDone > 0);
  const r = await applyPayload({
    payload,
    target,
    source: fx.base,
    trustedKeys: [fx.pub],
    resume: true,
  });
  assert.equal(r.resumedAtChunk, j.chunksDone);
  assert.equal(sha256File(target), sha256File(fx.added));
});

test("CLI: keygen, create, inspect, verify, apply", () => {
  const run = (...args: string[]) => spawnSync(bin, args, { encoding: "utf8" });
  const prefix = join(fx.dir, "cli");
  let r = run("keygen", "-o", prefix, "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.match(JSON.parse(r.stdout).keyId, /^[0-9a-f]{16}$/);
  const out = join(fx.dir, "cli.slp");
  r = run(
    "payload",
    "create",
    "--to",
    fx.edited,
    "--from",
    fx.base,
    "--key",
    `${prefix}.key`,
    "-o",
    out,
    "--version",
    "1.1",
  );
  assert.equal(r.status, 0, r.stderr);
  r = run("payload", "inspect", out, "--json");
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.version, "1.1");
  assert.equal(s.plans.length, 2);
  r = run("payload", "verify", out, "--pubkey", `${prefix}.pub`);
  assert.equal(r.status, 0, r.stderr);
  r = run("payload", "verify", out, "--pubkey", fx.pub);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not signed by a trusted key/);
  const target = join(fx.dir, "cli.img");
  r = run(
    "payload",
    "apply",
    out,
    "--target",
    target,
    "--source",
    fx.base,
    "--pubkey",
    `${prefix}.pub`,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /written and verified/);
  assert.equal(sha256File(target), sha256File(fx.edited));
  r = run("payload", "apply", join(fx.dir, "missing.slp"), "--target", target, "--pubkey", fx.pub);
  assert.equal(r.status, 2);

  // A verity build directory: the hash offset comes from meta.json's boot.verity.
  const build = join(fx.dir, "build-verity");
  mkdirSync(build);
  copyFileSync(fx.edited, join(build, "usr.img"));
  const verity = { rootHash: "cd".repeat(32), hashOffset: 4096 };
  writeFileSync(
    join(build, "meta.json"),
    JSON.stringify({
      version: "1.2",
      usr: { verityRootHash: verity.rootHash },
      artifacts: { usr: { path: "usr.img" } },
      boot: { verity },
    }),
  );
  const vout = join(fx.dir, "verity.slp");
  r = run("payload", "create", "--to", build, "--key", `${prefix}.key`, "-o", vout);
  assert.equal(r.status, 0, r.stderr);
  r = run("payload", "inspect", vout, "--json");
  assert.deepEqual(JSON.parse(r.stdout).target.verity, verity);
  // A root hash alone would give the agent a slot.cfg that cannot mount /usr.
  r = run(
    "payload",
    "create",
    "--to",
    fx.edited,
    "--key",
    `${prefix}.key`,
    "-o",
    vout,
    "--verity-root-hash",
    verity.rootHash,
  );
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--verity-hash-offset/);
});

test("the apply engine runs on the image's Node 20 (esbuild bundle, /usr/bin/node)", async (t) => {
  if (!existsSync("/usr/bin/node")) return t.skip("no system node");
  const version = spawnSync("/usr/bin/node", ["--version"], { encoding: "utf8" }).stdout;
  const entry = join(fx.dir, "entry.ts");
  const index = new URL("../../src/payload/index.ts", import.meta.url).pathname;
  writeFileSync(
    entry,
    `import { applyPayload } from ${JSON.stringify(index)};
const [payload, target, source, pub] = process.argv.slice(2);
// Small checkpoints: background syncs and journal writes run on Node 20 too.
const r = await applyPayload({ payload, target, source, trustedKeys: [pub], checkpointBytes: 128 << 10 });
console.log(r.sha256);`,
  );
  const bundle = join(fx.dir, "apply.mjs");
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: bundle,
    logLevel: "error",
  });
  const target = join(fx.dir, "node20.img");
  copyFileSync(fx.base, join(fx.dir, "source20.img"));
  const r = spawnSync(
    "/usr/bin/node",
    [bundle, payload, target, join(fx.dir, "source20.img"), fx.pub],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, `${version} ${r.stderr}`);
  assert.equal(r.stdout.trim(), sha256File(fx.added));
});

test("over HTTP range requests a delta client downloads only its plan", async () => {
  const { createServer } = await import("node:http");
  const file = readFileSync(payload);
  let served = 0;
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (req.method === "HEAD") {
      res.writeHead(200, { "content-length": file.length });
      return res.end();
    }
    if (!m) {
      res.writeHead(416);
      return res.end();
    }
    const part = file.subarray(Number(m[1]), Number(m[2]) + 1);
    served += part.length;
    res.writeHead(206, { "content-length": part.length });
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const { port } = server.address() as { port: number };
    const target = join(fx.dir, "http.img");
    const r = await applyPayload({
      payload: `http://127.0.0.1:${port}/added.slp`,
      target,
      source: fx.base,
      trustedKeys: [fx.pub],
    });
    assert.equal(sha256File(target), sha256File(fx.added));
    assert.equal(served, r.payloadBytesRead);
    assert.ok(served < file.length / 3, `${served} of ${file.length}`);
  } finally {
    server.close();
  }
});
