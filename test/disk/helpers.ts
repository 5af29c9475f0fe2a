/** Shared helpers for the GPT tests: scratch images, random tables, tool runs. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.ts";

export const SLIPWAY = new URL("../../bin/slipway", import.meta.url).pathname;

/** A scratch directory under /var/tmp, removed by the returned cleanup. */
export function scratchDir(): { dir: string; cleanup: () => void } {
  const base = process.env.SLIPWAY_TMP ?? (process.platform === "linux" ? "/var/tmp" : tmpdir());
  const dir = mkdtempSync(join(base, "gpt-test-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An all-zero sparse image file of `bytes`. */
export function sparseImage(path: string, bytes: number): string {
  writeFileSync(path, "");
  truncateSync(path, bytes);
  return path;
}

export function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Small deterministic PRNG (mulberry32) so a failing case can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/**
 * Run the slipway CLI in-process (no Node start per call), capturing what it
 * prints; same code path as bin/slipway after argument parsing.
 */
export async function cli(
  args: string[],
): Promise<{ status: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = [process.stdout.write, process.stderr.write] as const;
  process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    const status = await main(args);
    return { status, stdout: out.join(""), stderr: err.join("") };
  } finally {
    [process.stdout.write, process.stderr.write] = saved;
    process.exitCode = undefined;
  }
}
