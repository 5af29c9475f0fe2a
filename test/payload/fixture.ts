/**
 * Small real erofs images for the payload tests, built with the host's
 * mkfs.erofs from generated trees: "base", "added" (base + new files, as a
 * package install does) and "edited" (one config file changed).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair } from "../../src/payload/index.ts";

/** Deterministic pseudo-random bytes (xorshift), half of them text-like so they compress. */
export function bytes(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed * 2654435761 + 1;
  const words = ["usr", "lib", "systemd", "Debian", "config", "=", "\n", "service", " "];
  let i = 0;
  if (seed % 2 === 0) {
    while (i < length) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const w = words[(x >>> 0) % words.length]!;
      i += out.write(w, i);
    }
    return out;
  }
  for (; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

function writeTree(dir: string, files: number, extra: number, edit: boolean): void {
  for (let f = 0; f < files + extra; f++) {
    const sub = join(dir, `d${f % 7}`, `s${f % 3}`);
    mkdirSync(sub, { recursive: true });
    const size = 100 + ((f * 7919) % 60000);
    writeFileSync(join(sub, `file${f}`), bytes(f + 1, size));
  }
  mkdirSync(join(dir, "etc-defaults"), { recursive: true });
  writeFileSync(join(dir, "etc-defaults", "os.conf"), `NAME=slipway\nVERSION=${edit ? 2 : 1}\n`);
}

export interface Fixture {
  dir: string;
  base: string;
  added: string;
  edited: string;
  key: string;
  pub: string;
  otherKey: string;
  otherPub: string;
  cleanup(): void;
}

export function mkfsErofs(tree: string, out: string): void {
  execFileSync(
    "mkfs.erofs",
    ["-U", "6c7ee1b8-4a44-4e2b-9d9c-3b1f5a5f0001", "-T", "0", "--all-root", out, tree],
    {
      stdio: "ignore",
    },
  );
}

export function makeFixture(files = 160): Fixture {
  const dir = mkdtempSync(join(tmpdir(), "slipway-payload-test-"));
  const images: Record<string, string> = {};
  for (const [name, extra, edit] of [
    ["base", 0, false],
    ["added", 12, false],
    ["edited", 0, true],
  ] as const) {
    const tree = join(dir, `tree-${name}`);
    writeTree(tree, files, extra, edit);
    images[name] = join(dir, `${name}.erofs`);
    mkfsErofs(tree, images[name]);
    rmSync(tree, { recursive: true });
  }
  const k1 = generateKeyPair("ed25519");
  const k2 = generateKeyPair("rsa");
  const w = (n: string, s: string) => {
    writeFileSync(join(dir, n), s);
    return join(dir, n);
  };
  return {
    dir,
    base: images.base!,
    added: images.added!,
    edited: images.edited!,
    key: w("k1.key", k1.privatePem),
    pub: w("k1.pub", k1.publicPem),
    otherKey: w("k2.key", k2.privatePem),
    otherPub: w("k2.pub", k2.publicPem),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function sha256File(path: string, size?: number): string {
  const b = readFileSync(path);
  return createHash("sha256")
    .update(size === undefined ? b : b.subarray(0, size))
    .digest("hex");
}
