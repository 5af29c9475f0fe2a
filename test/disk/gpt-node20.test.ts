/**
 * The GPT module is bundled into the update agent, which runs on the image's
 * Node 20: bundle it with esbuild and drive it with the system Node 20.
 */
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { readGpt } from "../../src/disk/gpt.ts";
import { run, scratchDir, sparseImage } from "./helpers.ts";

const NODE20 = "/usr/bin/node";
const ESBUILD = new URL("../../node_modules/.bin/esbuild", import.meta.url).pathname;
const GPT_MODULE = new URL("../../src/disk/gpt.ts", import.meta.url).pathname;
const node20 = existsSync(NODE20) && /^v20\./.test(run(NODE20, ["--version"]).stdout);

let dir: string;
let cleanup: () => void;
before(() => ({ dir, cleanup } = scratchDir()));
after(() => cleanup());

test("the bundled GPT module creates, edits and reads a table on Node 20", {
  skip: !node20 && "no Node 20 at /usr/bin/node",
}, () => {
  const img = sparseImage(`${dir}/agent.img`, 32 << 20);
  const entry = `${dir}/entry.ts`;
  writeFileSync(
    entry,
    `import { addPartition, createGpt, prioritize, readGpt, writeGpt, getSlotAttributes } from ${JSON.stringify(GPT_MODULE)};
const disk = process.argv[2];
let t = createGpt(disk);
t = addPartition(t, { number: 3, type: "coreos-rootfs", label: "USR-A", sizeLba: 8192n, priority: 1, successful: 1 });
t = addPartition(t, { number: 4, type: "coreos-rootfs", label: "USR-B", sizeLba: 8192n });
writeGpt(disk, prioritize(t, 4));
const back = readGpt(disk);
console.log(JSON.stringify(back.partitions.map((p) => [p.number, getSlotAttributes(p.attributes).priority])));
`,
  );
  const bundle = `${dir}/gpt.bundle.mjs`;
  const b = run(ESBUILD, [
    entry,
    "--bundle",
    "--platform=node",
    "--target=node20",
    "--format=esm",
    `--outfile=${bundle}`,
    "--log-level=error",
  ]);
  assert.equal(b.status, 0, b.stderr);
  const r = run(NODE20, [bundle, img]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "[[3,1],[4,2]]");
  assert.equal(readGpt(img).partitions.length, 2);
  assert.match(run("sgdisk", ["-v", img]).stdout, /No problems found/);
});
