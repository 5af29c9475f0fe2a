/**
 * Payload benchmark: bytes a client downloads and apply speed.
 *
 * On USR image pairs — "upgrade" (one package upgraded to the version in
 * trixie-security, pinned in upgrade-pair.json), "1 file" (one config line
 * changed) and "+pkg" (base → base + chrony), each as uncompressed and lz4hc
 * erofs — compare our
 * delta plan with `zstd -19 --long=31 --patch-from`, `xdelta3 -9 -S djw`,
 * `bsdiff` and our full plan; and time apply against `dd` of the same bytes
 * to the same target (both synced), with the apply's peak RSS.
 *
 *   node bench/payload/bench.ts            real images from /var/tmp/slipway-dev
 *                                          (built once into /var/tmp/payload-bench),
 *                                          table on stdout + bench/payload/results.md
 *   node bench/payload/bench.ts --smoke    small generated images, fast (CI)
 *   --pairs upgrade,1file,plus --variants plain,lz4hc --peers zstd19,zstd3,xdelta3,bsdiff | --no-peers
 *   --images-only (build the pair images and stop: to run slow peers apart)
 *   --rounds N (dd and apply side by side, best of N; default 2) narrow a run. Peer results are cached in the work dir (zstd -19 and bsdiff
 *   take many minutes per pair on 400 MB images); a missing peer shows "-".
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { formatTable } from "../../src/cli/output.ts";
import { createPayload, fileReader, generateKeyPair } from "../../src/payload/index.ts";
import { openPayload } from "../../src/payload/open.ts";
import { makeFixture } from "../../test/payload/fixture.ts";
import upgradePin from "./upgrade-pair.json" with { type: "json" };

const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const peersOn = !args.includes("--no-peers");
const DEV = "/var/tmp/slipway-dev";
const WORK = smoke
  ? join(tmpdir(), `slipway-payload-bench-${process.pid}`)
  : "/var/tmp/payload-bench";
mkdirSync(WORK, { recursive: true });
const UUID = "6c7ee1b8-4a44-4e2b-9d9c-3b1f5a5f0001";

const mb = (n: number) => (n / 1e6).toFixed(2);
const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(a / b < 0.001 ? 4 : 2)}%`;
const size = (p: string) => statSync(p).size;
const timed = <T>(f: () => T): [T, number] => {
  const t = performance.now();
  const r = f();
  return [r, (performance.now() - t) / 1000];
};

/** trixie's own mkfs.erofs 1.8 (the target's), run through its loader: no chroot needed. */
function mkfsTrixie(tree: string, out: string, lz4hc: boolean): void {
  const root = `${DEV}/rootfs-base`;
  execFileSync(
    `${root}/usr/lib64/ld-linux-x86-64.so.2`,
    [
      "--library-path",
      `${root}/usr/lib/x86_64-linux-gnu`,
      `${root}/usr/bin/mkfs.erofs`,
      ...(lz4hc ? ["-zlz4hc"] : []),
      "-U",
      UUID,
      "-T",
      "0",
      "--all-root",
      out,
      tree,
    ],
    { stdio: "ignore" },
  );
}

interface Pair {
  name: string;
  variant: string;
  from: string;
  to: string;
}

async function realPairs(): Promise<Pair[]> {
  if (!existsSync(`${DEV}/done`)) throw new Error(`${DEV} is missing: run with --smoke`);
  const edited = join(WORK, "usr-1file");
  if (!existsSync(edited)) {
    cpSync(`${DEV}/rootfs-base/usr`, edited, { recursive: true, verbatimSymlinks: true });
    const f = join(edited, "lib/os-release");
    const text = readFileSync(f, "utf8").replace(
      /^PRETTY_NAME=.*$/m,
      'PRETTY_NAME="Debian GNU/Linux 13 (trixie) slipway 2"',
    );
    rmSync(f);
    writeFileSync(f, text);
  }
  const names = (opt("--pairs") ?? "upgrade,1file").split(",");
  const trees: Record<string, string> = {
    base: `${DEV}/rootfs-base/usr`,
    chrony: `${DEV}/rootfs-chrony/usr`,
    "1file": edited,
  };
  if (names.includes("upgrade")) trees.upgrade = await upgradedTree();
  const variants = (opt("--variants") ?? "plain,lz4hc").split(",");
  const img = (tree: string, v: string) => {
    const out = join(WORK, `${tree}${v === "lz4hc" ? "-lz4hc" : ""}.erofs`);
    if (!existsSync(out)) mkfsTrixie(trees[tree]!, out, v === "lz4hc");
    return out;
  };
  const pairs: Pair[] = [];
  const label: Record<string, string> = {
    plus: "+pkg (chrony)",
    "1file": "1 file",
    upgrade: `upgrade ${upgradePin.package}`,
  };
  const tree: Record<string, string> = { plus: "chrony", "1file": "1file", upgrade: "upgrade" };
  for (const v of variants)
    for (const n of names)
      pairs.push({ name: label[n]!, variant: v, from: img("base", v), to: img(tree[n]!, v) });
  return pairs;
}

/**
 * The dev cache's /usr with one package upgraded as dpkg would: the files
 * of the installed version (its dpkg file list) removed, the new .deb's
 * unpacked in their place. The .deb comes from Debian's archive, pinned by
 * version and SHA-256 in upgrade-pair.json.
 */
async function upgradedTree(): Promise<string> {
  const out = join(WORK, "usr-upgrade");
  if (existsSync(`${out}.done`)) return out;
  const pin = upgradePin;
  const status = readFileSync(`${DEV}/rootfs-base/var/lib/dpkg/status`, "utf8");
  const stanza = status.split("\n\n").find((s) => s.startsWith(`Package: ${pin.package}\n`));
  const installed = /^Version: (.+)$/m.exec(stanza ?? "")?.[1];
  if (installed !== pin.from)
    throw new Error(
      `upgrade-pair.json: the dev cache has ${pin.package} ${installed ?? "(not installed)"}, not ${pin.from}`,
    );
  const deb = join(WORK, pin.url.split("/").pop()!);
  if (!existsSync(deb)) {
    const res = await fetch(pin.url);
    if (!res.ok) throw new Error(`${pin.url}: HTTP ${res.status}`);
    writeFileSync(`${deb}.part`, Buffer.from(await res.arrayBuffer()));
    const sha = createHash("sha256")
      .update(readFileSync(`${deb}.part`))
      .digest("hex");
    if (sha !== pin.sha256) throw new Error(`${pin.url}: SHA-256 ${sha}, pinned ${pin.sha256}`);
    execFileSync("mv", [`${deb}.part`, deb]);
  }
  rmSync(out, { recursive: true, force: true });
  // cp -a keeps hard links (cpSync does not: the image would grow).
  execFileSync("cp", ["-a", `${DEV}/rootfs-base/usr`, out]);
  // Merged /usr: dpkg lists some files under /lib, /bin, /sbin.
  const list = readFileSync(
    `${DEV}/rootfs-base/var/lib/dpkg/info/${pin.package}:amd64.list`,
    "utf8",
  );
  for (const line of list.split("\n")) {
    const path = line.replace(/^\/(lib|lib64|bin|sbin)\//, "/usr/$1/");
    if (!path.startsWith("/usr/")) continue;
    const inTree = join(out, path.slice(5));
    if (existsSync(inTree) && !statSync(inTree).isDirectory()) rmSync(inTree);
  }
  const staging = join(WORK, "deb-staging");
  rmSync(staging, { recursive: true, force: true });
  execFileSync("dpkg-deb", ["-x", deb, staging]);
  execFileSync("cp", ["-a", `${staging}/usr/.`, `${out}/`]);
  rmSync(staging, { recursive: true, force: true });
  writeFileSync(`${out}.done`, "");
  return out;
}

let cleanupFixture = () => {};

function smokePairs(): Pair[] {
  const fx = makeFixture(60);
  cleanupFixture = fx.cleanup;
  return [
    { name: "+files", variant: "plain", from: fx.base, to: fx.added },
    { name: "1 file", variant: "plain", from: fx.base, to: fx.edited },
  ];
}

/** Peer tools; results cached by input sizes (zstd -19 and bsdiff take minutes on real images). */
function peer(tool: string, pair: Pair): { bytes: number; seconds: number } | undefined {
  const cacheFile = join(WORK, "peers.json");
  const cache: Record<string, { bytes: number; seconds: number }> = existsSync(cacheFile)
    ? JSON.parse(readFileSync(cacheFile, "utf8"))
    : {};
  const key = `${tool} ${pair.from}:${size(pair.from)} ${pair.to}:${size(pair.to)}`;
  if (!smoke && cache[key]) return cache[key];
  const out = join(WORK, "peer.out");
  const cmd: Record<string, string[]> = {
    "zstd -19 --long=31 --patch-from": [
      "zstd",
      "-q",
      "-f",
      "-19",
      "--long=31",
      `--patch-from=${pair.from}`,
      pair.to,
      "-o",
      out,
    ],
    "zstd -3 --long=31 --patch-from": [
      "zstd",
      "-q",
      "-f",
      "-3",
      "--long=31",
      `--patch-from=${pair.from}`,
      pair.to,
      "-o",
      out,
    ],
    "xdelta3 -9 -S djw": ["xdelta3", "-f", "-9", "-S", "djw", "-s", pair.from, pair.to, out],
    bsdiff: ["bsdiff", pair.from, pair.to, out],
  };
  const [argv0, ...rest] = cmd[tool]!;
  const [r, seconds] = timed(() => spawnSync(argv0!, rest, { stdio: "ignore" }));
  if (r.status !== 0) return undefined;
  const res = { bytes: size(out), seconds };
  rmSync(out, { force: true });
  cache[key] = res;
  if (!smoke) writeFileSync(cacheFile, JSON.stringify(cache, null, 1));
  return res;
}

function cachedPeer(tool: string, pair: Pair): { bytes: number; seconds: number } | undefined {
  const cacheFile = join(WORK, "peers.json");
  if (!existsSync(cacheFile)) return undefined;
  const cache = JSON.parse(readFileSync(cacheFile, "utf8"));
  return cache[`${tool} ${pair.from}:${size(pair.from)} ${pair.to}:${size(pair.to)}`];
}

interface ApplyRun {
  /** Start to end: open, pick the plan (hash the source), write, sync, read back. */
  seconds: number;
  /** Start until everything is written and synced (the read-back starts). */
  writtenSeconds: number;
  /** Hashing the source to pick the delta (0 for the full plan). */
  sourceSeconds: number;
  /** Peak RSS (VmHWM) growth over the process's peak before the apply began. */
  rssGrowth: number;
  plan: string;
}

/** One apply in a child process: a clean heap, and its own VmHWM for peak RSS. */
function applyChild(
  payload: string,
  target: string,
  source: string | undefined,
  pub: string,
  sourceSha256?: string,
): ApplyRun {
  const index = new URL("../../src/payload/index.ts", import.meta.url).pathname;
  const script = `import { applyPayload } from ${JSON.stringify(index)};
import { readFileSync } from "node:fs";
const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
const before = hwm();
const t = performance.now();
const at = {};
const r = await applyPayload({ payload: ${JSON.stringify(payload)}, target: ${JSON.stringify(target)}, ${source ? `source: ${JSON.stringify(source)},` : ""} ${sourceSha256 ? `sourceSha256: ${JSON.stringify(sourceSha256)},` : ""} trustedKeys: [${JSON.stringify(pub)}],
  onProgress: (p) => { at[p.phase] ??= (performance.now() - t) / 1000; } });
const seconds = (performance.now() - t) / 1000;
console.log(JSON.stringify({ seconds, writtenSeconds: at.verify, sourceSeconds: at.source === undefined ? 0 : at.write - at.source, rssGrowth: hwm() - before, plan: r.plan }));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").pop()!) as ApplyRun;
}

/** dd of the image to the same target path, fsync included (conv=fsync), from a fresh file. */
function ddSeconds(image: string, target: string): number {
  rmSync(target, { force: true });
  const [, s] = timed(() =>
    execFileSync("dd", [`if=${image}`, `of=${target}`, "bs=1M", "conv=fsync"], { stdio: "ignore" }),
  );
  rmSync(target, { force: true });
  return s;
}

const pairs = smoke ? smokePairs() : await realPairs();
if (args.includes("--images-only")) {
  for (const p of pairs) process.stdout.write(`${p.name}, ${p.variant}: ${p.from} -> ${p.to}\n`);
  process.exit(0);
}
const keys = generateKeyPair();
const pubFile = join(WORK, "bench.pub");
writeFileSync(pubFile, keys.publicPem);
const rounds = Number(opt("--rounds") ?? (smoke ? 1 : 2));
const MiB = 1 << 20;
const loadBefore = loadavg();
const sizeRows: (string | number)[][] = [];
const sizeLater: (() => void)[] = [];
const speedRows: (string | number)[][] = [];
/** Short names for --peers. */
const peerNames: Record<string, string> = {
  zstd19: "zstd -19 --long=31 --patch-from",
  zstd3: "zstd -3 --long=31 --patch-from",
  xdelta3: "xdelta3 -9 -S djw",
  bsdiff: "bsdiff",
};
const peerTools = Object.values(peerNames);
const peerWanted = (opt("--peers") ?? Object.keys(peerNames).join(","))
  .split(",")
  .map((n) => peerNames[n]);

for (const pair of pairs) {
  const label = `${pair.name}, ${pair.variant}`;
  process.stderr.write(`== ${label}\n`);
  const payload = join(WORK, "bench.slp");
  const [created, createSeconds] = await (async () => {
    const t = performance.now();
    const r = await createPayload({
      target: pair.to,
      sources: [{ path: pair.from }],
      keys: [keys.privatePem],
      output: payload,
      version: "bench",
    });
    return [r, (performance.now() - t) / 1000] as const;
  })();
  const full = created.plans.find((p) => p.id === "full")!;
  const delta = created.plans.find((p) => p.source)!;
  // Where a delta client's bytes go: header+manifest+signatures, its plan body, its data.
  const reader = fileReader(payload);
  const opened = await openPayload(reader, [keys.publicPem]);
  await reader.close?.();
  const head = readFileSync(payload).subarray(0, 24);
  const sections = {
    header: 24,
    manifest: head.readUInt32BE(12),
    signatures: head.readUInt32BE(16),
  };
  const body = opened.manifest.plans.find((p) => p.id === delta.id)!.body.size;
  const parts = `${sections.header}+${sections.manifest}+${sections.signatures} / ${body} / ${
    delta.downloadBytes - sections.header - sections.manifest - sections.signatures - body
  }`;
  sizeLater.push(() => {
    const peers = peersOn
      ? peerTools.map(
          (t) => [t, peerWanted.includes(t) ? peer(t, pair) : cachedPeer(t, pair)] as const,
        )
      : [];
    const bestPeer = Math.min(...peers.map(([, r]) => r?.bytes ?? Number.POSITIVE_INFINITY));
    sizeRows.push([
      label,
      delta.downloadBytes,
      ...peers.map(([, r]) => r?.bytes ?? "-"),
      full.downloadBytes,
      Number.isFinite(bestPeer) ? (delta.downloadBytes / bestPeer).toFixed(2) : "-",
      pct(delta.downloadBytes, full.downloadBytes),
      createSeconds.toFixed(1),
      parts,
    ]);
  });

  const target = join(WORK, "target.img");
  const bytes = size(pair.to);
  // "delta, source hash given": what the agent gets when it passes the
  // active slot's SHA-256 (it knows what it installed) instead of hashing it.
  const sourceSha = createHash("sha256").update(readFileSync(pair.from)).digest("hex");
  for (const [plan, source, sha] of [
    ["delta", pair.from, undefined],
    ["delta, source hash given", pair.from, sourceSha],
    ["full", undefined, undefined],
  ] as const) {
    // dd and apply side by side, best of the rounds for each (the box is shared).
    let dd = Number.POSITIVE_INFINITY;
    let best: ApplyRun | undefined;
    let rss = 0;
    for (let round = 0; round < rounds; round++) {
      dd = Math.min(dd, ddSeconds(pair.to, target));
      const r = applyChild(payload, target, source, pubFile, sha);
      rmSync(target, { force: true });
      if (!best || r.seconds < best.seconds) best = r;
      rss = Math.max(rss, r.rssGrowth);
    }
    speedRows.push([
      label,
      plan,
      mb(bytes / dd),
      mb(bytes / best!.writtenSeconds),
      (dd / best!.writtenSeconds).toFixed(2),
      mb(bytes / best!.seconds),
      (dd / best!.seconds).toFixed(2),
      best!.sourceSeconds.toFixed(2),
      (rss / MiB).toFixed(1),
    ]);
  }
  rmSync(target, { force: true });
  rmSync(payload, { force: true });
}

// Peers last: the cache may have gained results from runs made apart (--images-only).
for (const row of sizeLater) row();
const sizeTable = formatTable(
  [
    "pair",
    "slipway delta",
    ...(peersOn ? peerTools : []),
    "slipway full",
    "delta/best peer",
    "delta/full",
    "create s",
    "delta: header+manifest+sigs / body / data",
  ],
  sizeRows,
  new Set([1, 2, 3, 4, 5, 6, 7, 8]),
);
const speedTable = formatTable(
  [
    "pair",
    "plan",
    "dd MB/s",
    "apply MB/s written+synced",
    "/dd",
    "apply MB/s incl. read-back",
    "/dd",
    "source hash s",
    "peak RSS growth MiB",
  ],
  speedRows,
  new Set([2, 3, 4, 5, 6, 7, 8]),
);
const loadAfter = loadavg();
const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
const text = `Bytes a client downloads (payload: header, manifest, signatures, the plan's body and blobs; peers: the patch file)

${sizeTable}

Apply (child process) vs dd bs=1M conv=fsync of the same image to the same target path, side by side, best of ${rounds} round(s) each.
"written+synced": start of apply (open, signature, plan choice incl. hashing the source for a delta) until every byte is written and fdatasync'ed, like dd's figure.
"incl. read-back": plus the mandatory final read-back of the whole target and its SHA-256 check (success is reported only after it).
Peak RSS growth: VmHWM of the apply process minus its VmHWM before the apply started (worst of the rounds).

${speedTable}

Load average (1, 5, 15 min): ${load(loadBefore)} at start, ${load(loadAfter)} at end.
`;
process.stdout.write(text);
if (!smoke) {
  const md = `# Payload benchmark results\n\nGenerated by \`node bench/payload/bench.ts ${args.join(" ")}\` on ${new Date().toISOString().replace("T", " ").slice(0, 16)} UTC (2 cores, shared with other jobs). Images: erofs of the dev cache's trixie /usr (mkfs.erofs 1.8.6, -T 0, fixed -U); "upgrade" upgrades ${upgradePin.package} ${upgradePin.from} → ${upgradePin.to} (${upgradePin.suite}, as dpkg would: old files out, the .deb unpacked), "1 file" edits one line of /usr/lib/os-release, "+pkg" adds chrony (34 packages).\n\n\`\`\`\n${text}\`\`\`\n`;
  writeFileSync(new URL("./results.md", import.meta.url), md);
} else {
  rmSync(WORK, { recursive: true, force: true });
  cleanupFixture();
}
