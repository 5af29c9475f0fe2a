/**
 * Files on the EFI system partition. Two backends: a mounted (or test)
 * directory, written as temp file + fsync + rename + directory fsync; and a
 * FAT partition or image edited in place with mtools (no mount, no vfat
 * driver needed), where a file is copied under a temp name, then swapped in.
 */
import { execFile } from "node:child_process";
import { closeSync, fsyncSync, openSync, statSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { SlipwayError } from "../errors.ts";

const run = promisify(execFile);

export interface EspStore {
  readonly describe: string;
  /** undefined when the file does not exist. */
  read(path: string): Promise<Buffer | undefined>;
  /** Replace `path` with `data` so a crash leaves the old or the new file, never a mix. */
  write(path: string, data: Uint8Array): Promise<void>;
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

export class DirEsp implements EspStore {
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
    const target = join(this.dir, path);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.slipway-new`;
    await writeFile(tmp, data);
    fsyncPath(tmp);
    await rename(tmp, target);
    fsyncPath(dirname(target));
  }

  overwrite(path: string, data: Uint8Array): Promise<void> {
    return this.write(path, data);
  }
}

/** FAT image or partition, optionally at a byte offset inside a whole-disk image. */
export class FatEsp implements EspStore {
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
    await mkdir(this.tmpDir, { recursive: true });
    const local = join(this.tmpDir, `esp-write-${process.pid}-${Date.now()}`);
    await writeFile(local, data);
    try {
      await this.mkdirs(path);
      const staged = `${path}.new`;
      // FAT has no atomic replace: the full new file is in place under a temp
      // name before the old one goes, so a crash loses at most the name swap
      // (the boot slot is marked unbootable while its files change).
      await this.mtools("mcopy", ["-o", "-n", local, `::${staged}`]);
      if (await this.exists(path)) await this.mtools("mdel", [`::${path}`]);
      await this.mtools("mren", [`::${staged}`, `::${path}`]);
    } finally {
      await rm(local, { force: true });
    }
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
