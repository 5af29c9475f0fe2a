/**
 * The stage cache under the work dir: `cache/<stage>/<key>/` holds `out/`
 * (the stage's files), `result.json` (its value, time and size) and
 * `stage.log`. Entries are published by rename, so a crash never leaves a
 * half entry that looks whole. Each stage keeps only its newest few entries.
 */

import { spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

interface StoredResult {
  value: unknown;
  seconds: number;
  bytes: number;
  created: string;
}

export interface CacheHit<O> {
  /** The entry's own key (differs from the looked-up key when that is an alias). */
  key: string;
  dir: string;
  value: O;
  seconds: number;
  bytes: number;
}

export interface PendingEntry {
  stage: string;
  key: string;
  /** Scratch root: out/, tmp/, stage.log. */
  root: string;
  outDir: string;
  tmpDir: string;
}

export class StageCache {
  readonly dir: string;
  /** Entries kept per stage (older ones are removed after each new entry). */
  readonly keep: number;
  constructor(dir: string, keep = 3) {
    this.dir = dir;
    this.keep = keep;
  }

  private entryDir(stage: string, key: string): string {
    return join(this.dir, stage, key);
  }

  lookup<O>(stage: string, key: string): CacheHit<O> | undefined {
    let dir = this.entryDir(stage, key);
    let canonical = key;
    try {
      if (lstatSync(dir).isSymbolicLink()) {
        canonical = readlinkSync(dir);
        dir = join(this.dir, stage, canonical);
      }
      const stored = JSON.parse(readFileSync(join(dir, "result.json"), "utf8")) as StoredResult;
      const now = new Date();
      utimesSync(join(dir, "result.json"), now, now); // most recently used
      return {
        key: canonical,
        dir: join(dir, "out"),
        value: stored.value as O,
        seconds: stored.seconds,
        bytes: stored.bytes,
      };
    } catch {
      return undefined;
    }
  }

  begin(stage: string, key: string): PendingEntry {
    const root = join(this.dir, stage, `.tmp-${key.slice(0, 16)}-${process.pid}-${Date.now()}`);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(join(root, "out"), { recursive: true });
    mkdirSync(join(root, "tmp"), { recursive: true });
    return { stage, key, root, outDir: join(root, "out"), tmpDir: join(root, "tmp") };
  }

  abandon(entry: PendingEntry): void {
    rmSync(entry.root, { recursive: true, force: true });
  }

  commit(
    entry: PendingEntry,
    value: unknown,
    seconds: number,
    aliases: string[] = [],
  ): { dir: string; bytes: number } {
    rmSync(entry.tmpDir, { recursive: true, force: true });
    const bytes = diskUsage(entry.outDir);
    const stored: StoredResult = { value, seconds, bytes, created: new Date().toISOString() };
    writeFileSync(join(entry.root, "result.json"), `${JSON.stringify(stored, null, 2)}\n`);
    const final = this.entryDir(entry.stage, entry.key);
    rmSync(final, { recursive: true, force: true });
    renameSync(entry.root, final);
    for (const alias of aliases) {
      if (alias === entry.key) continue;
      const link = this.entryDir(entry.stage, alias);
      rmSync(link, { recursive: true, force: true });
      symlinkSync(entry.key, link);
    }
    return { dir: join(final, "out"), bytes };
  }

  /** Prune every stage (at the end of a build, off the path of the stages). */
  pruneAll(): void {
    if (!existsSync(this.dir)) return;
    for (const stage of readdirSync(this.dir)) this.prune(stage);
  }

  /** Keep the `keep` most recently used entries of a stage; drop stale scratch dirs and links. */
  prune(stage: string): void {
    const base = join(this.dir, stage);
    if (!existsSync(base)) return;
    const entries: { name: string; used: number }[] = [];
    const links: string[] = [];
    for (const name of readdirSync(base)) {
      const p = join(base, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) links.push(name);
      else if (name.startsWith(".tmp-")) {
        const pid = Number(name.split("-")[2]);
        if (!isAlive(pid)) removeWithinFilesystem(p);
      } else {
        let used = 0;
        try {
          used = statSync(join(p, "result.json")).mtimeMs;
        } catch {}
        entries.push({ name, used });
      }
    }
    entries.sort((a, b) => b.used - a.used);
    for (const old of entries.slice(this.keep))
      rmSync(join(base, old.name), { recursive: true, force: true });
    for (const l of links) {
      if (!existsSync(join(base, l))) rmSync(join(base, l), { force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Bytes a tree takes on disk (allocated blocks, so sparse images count what they use). */
export function diskUsage(path: string): number {
  let total = 0;
  const walk = (p: string) => {
    const st = lstatSync(p);
    total += st.blocks * 512;
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  if (existsSync(path)) walk(path);
  return total;
}

/**
 * rm -rf that never crosses into another filesystem: a build killed while
 * dracut ran chrooted leaves /proc, /sys and /dev bind-mounted in its
 * scratch tree, and deleting through those would hit the host's.
 */
export function removeWithinFilesystem(path: string): void {
  spawnSync("rm", ["-rf", "--one-file-system", path], { stdio: "ignore" });
}
