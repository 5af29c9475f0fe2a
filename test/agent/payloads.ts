/** Real signed payloads (src/payload) for agent tests, made from small images in a temp dir. */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPayload, generateKeyPair } from "../../src/payload/index.ts";

export const keys = generateKeyPair("ed25519");
const work = mkdtempSync(join(process.env.SLIPWAY_TMP ?? tmpdir(), "slipway-agent-payloads-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));

export interface Release {
  version: string;
  image: Buffer;
  kernel: Buffer;
  initrd: Buffer;
  payload: Buffer;
}

/**
 * A release image derived from `base` (a few changed regions, like a real
 * update) or random; the payload carries a full plan and, with a base, a delta.
 */
export async function makeRelease(
  version: string,
  opts: { base?: Buffer; size?: number; signWith?: string; fullQuality?: number } = {},
): Promise<Release> {
  const size = opts.base?.length ?? opts.size ?? 1024 * 1024;
  const image = opts.base ? Buffer.from(opts.base) : randomBytes(size);
  if (opts.base) {
    for (let i = 0; i < 4; i++) randomBytes(64 * 1024).copy(image, Math.floor((i * size) / 4));
  }
  const dir = mkdtempSync(join(work, `${version}-`));
  const target = join(dir, "usr.img");
  writeFileSync(target, image);
  const kernel = Buffer.from(`vmlinuz ${version}`);
  const initrd = Buffer.from(`initrd ${version}`);
  writeFileSync(join(dir, "vmlinuz"), kernel);
  writeFileSync(join(dir, "initrd"), initrd);
  const sources = [];
  if (opts.base) {
    writeFileSync(join(dir, "base.img"), opts.base);
    sources.push({ path: join(dir, "base.img") });
  }
  const output = join(dir, "payload");
  await createPayload({
    target,
    sources,
    keys: [opts.signWith ?? keys.privatePem],
    output,
    version,
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd"),
    fullQuality: opts.fullQuality ?? 1,
  });
  return { version, image, kernel, initrd, payload: readFileSync(output) };
}
