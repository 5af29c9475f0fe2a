/** Files handed to the image builder as data, and the one way to write them into a tree. */
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export interface PlacedFile {
  /** Relative path inside the tree or partition it belongs to. */
  path: string;
  mode: number;
  /** File text, or the link target when `symlink` is set. */
  contents: string;
  symlink?: boolean;
}

/** Write `files` under `root` (creating directories; replacing what is there). */
export function placeFiles(root: string, files: readonly PlacedFile[]): void {
  for (const f of files) {
    if (f.path.startsWith("/") || f.path.split("/").includes("..")) {
      throw new Error(`placed file path must be relative and inside the tree: ${f.path}`);
    }
    const full = join(root, f.path);
    mkdirSync(dirname(full), { recursive: true });
    rmSync(full, { force: true });
    if (f.symlink) {
      symlinkSync(f.contents, full);
    } else {
      writeFileSync(full, f.contents);
      chmodSync(full, f.mode);
    }
  }
}
