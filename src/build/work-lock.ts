/**
 * One build at a time per work dir: a lock file holding the builder's pid.
 * A lock whose process is gone is stale and taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { SlipwayError } from "../errors.ts";

export function acquireWorkDirLock(workDir: string): () => void {
  const file = join(workDir, ".slipway-build.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(file, "utf8").trim());
      if (pid && pid !== process.pid && alive(pid)) {
        throw new SlipwayError(`another build (pid ${pid}) is running in this work dir`, {
          where: workDir,
        });
      }
      rmSync(file, { force: true });
    }
  }
  throw new SlipwayError("could not take the build lock", { where: file });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
