/**
 * `slipway gpt` as users call it: the happy path once through the real binary,
 * and a matrix of bad input run in-process (exit 2, the disk named, the file
 * unchanged).
 */
import assert from "node:assert/strict";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { readGpt } from "../../src/disk/gpt.ts";
import { cli, run, SLIPWAY, scratchDir, sparseImage } from "./helpers.ts";

let dir: string;
let cleanup: () => void;
before(() => ({ dir, cleanup } = scratchDir()));
after(() => cleanup());

test("create, add, show, resize, delete (create and show through the real binary)", async () => {
  const img = `${dir}/cli.img`;
  const steps = [
    ["create", img, "--size", "64MiB"],
    ["add", img, "-i", "1", "-t", "efi", "-l", "EFI-SYSTEM", "-s", "8MiB"],
    [
      "add",
      img,
      "-i",
      "3",
      "-t",
      "coreos-rootfs",
      "-l",
      "USR-A",
      "-s",
      "16MiB",
      "-P",
      "1",
      "-S",
      "1",
    ],
    ["add", img, "-i", "9", "-t", "coreos-resize", "-l", "ROOT", "-s", "8MiB"],
    ["resize", img, "-i", "9", "-s", "16384"],
    ["delete", img, "-i", "1"],
  ];
  // The binary for the first and last steps; in-process in between (a Node start costs ~1 s under load).
  for (const [i, s] of steps.entries()) {
    const r = i === 0 ? run(SLIPWAY, ["gpt", ...s]) : await cli(["gpt", ...s]);
    assert.equal(r.status, 0, `${s.join(" ")}: ${r.stderr}`);
  }
  const human = run(SLIPWAY, ["gpt", "show", img]);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /131072 sectors of 512 bytes/);
  assert.match(
    human.stdout,
    /^\s*18432\s+32768\s+3\s+USR-A\s+coreos-rootfs\s+[0-9a-f-]{36}\s+1\s+0\s+1$/m,
  );
  assert.match(human.stdout, /^\s*51200\s+16384\s+9\s+ROOT\s+coreos-resize\s/m);
  assert.doesNotMatch(human.stdout, /EFI-SYSTEM/);
  const one = JSON.parse((await cli(["gpt", "show", img, "-i", "3", "--json"])).stdout);
  assert.deepEqual(
    {
      label: one.label,
      typeAlias: one.typeAlias,
      firstLba: one.firstLba,
      sizeLba: one.sizeLba,
      priority: one.priority,
      successful: one.successful,
    },
    {
      label: "USR-A",
      typeAlias: "coreos-rootfs",
      firstLba: 18432,
      sizeLba: 32768,
      priority: 1,
      successful: 1,
    },
  );
  assert.match(run("sgdisk", ["-v", img]).stdout, /No problems found/);
});

test("bad input: exit 2, the disk named, nothing written", async () => {
  const good = `${dir}/good.img`;
  sparseImage(good, 16 << 20);
  assert.equal((await cli(["gpt", "create", good])).status, 0);
  assert.equal((await cli(["gpt", "add", good, "-i", "1", "-s", "4MiB", "-l", "A"])).status, 0);
  assert.equal((await cli(["gpt", "add", good, "-i", "2", "-s", "4MiB", "-l", "B"])).status, 0);

  const blank = sparseImage(`${dir}/blank.img`, 8 << 20);
  const truncated = `${dir}/truncated.img`;
  writeFileSync(truncated, readFileSync(good).subarray(0, 10 * 1024));
  const badCrc = `${dir}/badcrc.img`;
  writeFileSync(badCrc, readFileSync(good));
  const damaged = readFileSync(badCrc);
  damaged.writeUInt32LE((damaged.readUInt32LE(512 + 16) ^ 1) >>> 0, 512 + 16);
  damaged.writeUInt32LE(
    (damaged.readUInt32LE(damaged.length - 512 + 16) ^ 1) >>> 0,
    damaged.length - 512 + 16,
  );
  writeFileSync(badCrc, damaged);
  const tiny = `${dir}/tiny.img`;
  writeFileSync(tiny, "");
  truncateSync(tiny, 4096);

  const cases: [string[], RegExp][] = [
    [["show", blank], /no valid GPT .*no GPT signature/],
    [["show", truncated], /no valid GPT/],
    [["show", badCrc, "--json"], /header CRC32 mismatch/],
    [["show", `${dir}/missing.img`], /cannot open disk \(ENOENT\)/],
    [["create", tiny], /too small/],
    [["add", good, "-i", "3", "-b", "2048", "-s", "100"], /partitions 1 and 3 overlap/],
    [["add", good, "-i", "3", "-b", "200000", "-s", "100"], /outside the usable range/],
    [["add", good, "-i", "3", "-s", "1GiB"], /no aligned free space/],
    [["add", good, "-i", "1", "-P", "16"], /priority 16 is out of range \(0–15\)/],
    [["add", good, "-i", "1", "-T", "abc"], /tries "abc" is not a whole number/],
    [["add", good, "-i", "1", "-S", "2"], /successful 2 is out of range/],
    [["add", good, "-i", "1", "-t", "ntfs"], /unknown partition type "ntfs"/],
    [["add", good, "-i", "1", "-l", "x".repeat(37)], /label is 37 UTF-16 units long/],
    [["add", good, "-i", "1", "-u", "not-a-guid"], /not a GUID/],
    [["add", good, "-i", "129", "-s", "8"], /partition number 129 is out of range/],
    [["add", good, "-i", "3", "-s", "1000B"], /not a whole number of 512-byte sectors/],
    [["resize", good, "-i", "1", "-s", "32MiB"], /overlap/],
    [["resize", good, "-i", "5", "-s", "8"], /partition 5 does not exist/],
    [["delete", good, "-i", "7"], /partition 7 does not exist/],
    [["prioritize", good, "-i", "1", "-P", "0"], /priority 0 is out of range \(1–15\)/],
    [["show", good, "-i", "1", "-P", "-T"], /at most one of/],
  ];
  for (const [args, message] of cases) {
    const disk = args[1]!;
    const before = (() => {
      try {
        return readFileSync(disk);
      } catch {
        return undefined;
      }
    })();
    const r = await cli(["gpt", ...args]);
    assert.equal(r.status, 2, `${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
    assert.ok(
      r.stderr.includes(`slipway: ${disk}: `),
      `${args.join(" ")}: disk named: ${r.stderr}`,
    );
    assert.match(r.stderr, message, args.join(" "));
    if (before) assert.ok(readFileSync(disk).equals(before), `${args.join(" ")}: file unchanged`);
  }
  assert.equal(readGpt(good).partitions.length, 2);
});
