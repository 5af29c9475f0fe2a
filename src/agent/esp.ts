/**
 * Files on the EFI system partition. Two backends: a mounted (or test)
 * directory, written as temp file + fsync + rename + directory fsync; and a
 * FAT partition or image edited in place with mtools (no mount, no vfat
 * driver needed), where a file is copied under a temp name, then swapped in.
 */
import { execFile } from "node:child_process";
import { closeSync, fsyncSync, openSync, statSync } from "node:fs";
import { mkdir, readFile, rename, rm, statfs, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { assertEspFits, type FatSpace, fatSpace } from "../boot/esp.ts";
import { SlipwayError } from "../errors.ts";

const run = promisify(execFile);

export interface EspStore {
  readonly describe: string;
  /** undefined when the file does not exist. */
  read(path: string): Promise<Buffer | undefined>;
  /** Replace `path` with `data` so a crash leaves the old or the new file, never a mix. */
  write(path: string, data: Uint8Array): Promise<void>;
  /**
   * Replace several files (a slot's kernel and initrd) together. When the new
   * files do not fit beside the old ones this fails with "ESP full: <what>
   * need …" before anything is written; otherwise every new file is complete
   * under a temp name before the first old one goes.
   */
  writeFiles(files: [string, Uint8Array][], what: string): Promise<void>;
  /**
   * Rewrite a small fixed-size file (grubenv) in place, as GRUB's save_env
   * does; on FAT this never leaves a moment without the file.
   */
  overwrite(path: string, data: Uint8Array): Promise<void>;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** How a backend stages a file under a temp name and swaps it in. */
interface StagedWrites {
  readonly describe: string;
  space(): Promise<FatSpace>;
  stage(path: string, data: Uint8Array): Promise<void>;
  commit(path: string): Promise<void>;
  discard(path: string): Promise<void>;
}

async function writeTogether(
  esp: StagedWrites,
  files: [string, Uint8Array][],
  what: string,
): Promise<void> {
  if (files.length === 0) return;
  assertEspFits(
    what,
    files.map(([, d]) => d.length),
    await esp.space(),
    esp.describe,
  );
  const staged: string[] = [];
  try {
    for (const [path, data] of files) {
      staged.push(path);
      await esp.stage(path, data);
    }
  } catch (err) {
    // The old files were not touched: drop the new ones written so far.
    for (const path of staged) await esp.discard(path).catch(() => undefined);
    throw err;
  }
  for (const [path] of files) await esp.commit(path);
}

export class DirEsp implements EspStore, StagedWrites {
  readonly describe: string;
  private readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
    this.describe = `ESP directory ${dir}`;
  }

  async read(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(join(this.dir, path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    await this.stage(path, data);
    await this.commit(path);
  }

  writeFiles(files: [string, Uint8Array][], what: string): Promise<void> {
    return writeTogether(this, files, what);
  }

  async space(): Promise<FatSpace> {
    const s = await statfs(this.dir);
    return { freeBytes: s.bavail * s.bsize, clusterBytes: s.bsize };
  }

  async stage(path: string, data: Uint8Array): Promise<void> {
    const tmp = `${join(this.dir, path)}.slipway-new`;
    await mkdir(dirname(tmp), { recursive: true });
    await writeFile(tmp, data);
    fsyncPath(tmp);
  }

  async commit(path: string): Promise<void> {
    const target = join(this.dir, path);
    await rename(`${target}.slipway-new`, target);
    fsyncPath(dirname(target));
  }

  async discard(path: string): Promise<void> {
    await rm(`${join(this.dir, path)}.slipway-new`, { force: true });
  }

  overwrite(path: string, data: Uint8Array): Promise<void> {
    return this.write(path, data);
  }
}

/** FAT image or partition, optionally at a byte offset inside a whole-disk image. */
export class FatEsp implements EspStore, StagedWrites {
  readonly describe: string;
  private readonly image: string;
  private readonly tmpDir: string;
  constructor(path: string, tmpDir: string, offset = 0) {
    this.tmpDir = tmpDir;
    this.image = offset > 0 ? `${path}@@${offset}` : path;
    this.describe = `ESP FAT ${this.image}`;
  }

  private async mtools(tool: string, args: string[]): Promise<string> {
    try {
      const { stdout } = await run(tool, ["-i", this.image, ...args], {
        env: { ...process.env, MTOOLS_SKIP_CHECK: "1" },
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new SlipwayError(`${tool} failed: ${(e.stderr ?? e.message).trim()}`, {
        where: this.image,
        cause: err,
      });
    }
  }

  private async exists(path: string): Promise<boolean> {
    try {
      await this.mtools("mdir", ["-b", `::${path}`]);
      return true;
    } catch {
      return false;
    }
  }

  async read(path: string): Promise<Buffer | undefined> {
    if (!(await this.exists(path))) return undefined;
    await mkdir(this.tmpDir, { recursive: true });
    const local = join(this.tmpDir, `esp-read-${process.pid}-${Date.now()}`);
    try {
      await this.mtools("mcopy", ["-n", `::${path}`, local]);
      return await readFile(local);
    } finally {
      await rm(local, { force: true });
    }
  }

  private async mkdirs(path: string): Promise<void> {
    const parts = dirname(path).split("/").filter(Boolean);
    let cur = "";
    for (const p of parts) {
      cur += `/${p}`;
      if (!(await this.exists(cur))) await this.mtools("mmd", [`::${cur}`]);
    }
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    await this.stage(path, data);
    await this.commit(path);
  }

  writeFiles(files: [string, Uint8Array][], what: string): Promise<void> {
    return writeTogether(this, files, what);
  }

  space(): Promise<FatSpace> {
    return fatSpace(this.image);
  }

  // FAT has no atomic replace: the full new file is in place under a temp
  // name before the old one goes, so a crash loses at most the name swap
  // (the boot slot is marked unbootable while its files change).
  async stage(path: string, data: Uint8Array): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    const local = join(this.tmpDir, `esp-write-${process.pid}-${Date.now()}`);
    await writeFile(local, data);
    try {
      await this.mkdirs(path);
      await this.mtools("mcopy", ["-o", "-n", local, `::${path}.new`]);
    } catch (err) {
      // A copy cut short (disk full) may leave a partial file behind.
      await this.discard(path).catch(() => undefined);
      throw err;
    } finally {
      await rm(local, { force: true });
    }
  }

  async commit(path: string): Promise<void> {
    if (await this.exists(path)) await this.mtools("mdel", [`::${path}`]);
    await this.mtools("mren", [`::${path}.new`, `::${path}`]);
  }

  async discard(path: string): Promise<void> {
    if (await this.exists(`${path}.new`)) await this.mtools("mdel", [`::${path}.new`]);
  }

  /** Overwrite a file in place (grubenv: fixed size, like GRUB's own save_env). */
  async overwrite(path: string, data: Uint8Array): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    const local = join(this.tmpDir, `esp-over-${process.pid}-${Date.now()}`);
    await writeFile(local, data);
    try {
      await this.mkdirs(path);
      await this.mtools("mcopy", ["-o", "-n", local, `::${path}`]);
    } finally {
      await rm(local, { force: true });
    }
  }
}

export function openEsp(path: string, tmpDir: string): EspStore {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new SlipwayError(`ESP not found: ${(err as Error).message}`, { where: path });
  }
  return isDir ? new DirEsp(path) : new FatEsp(path, tmpDir);
}
