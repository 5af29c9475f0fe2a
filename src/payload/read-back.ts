/**
 * The final read-back, overlapped with writing: a worker thread reads the
 * target back and hashes it (SHA-256, front to back) as far as it is
 * durable — the apply engine hands it each checkpoint after its fdatasync —
 * while the main thread decodes and writes the chunks after it. On a
 * 2-core host that hides most of the read-back, which otherwise costs as
 * much as a dd of the image. The worker holds one read buffer and a small
 * heap (resource limits), ~14 MB of RSS on Node 20.
 */
import { Worker } from "node:worker_threads";

/** Runs in the worker (CommonJS, as an eval'd worker script): no imports of ours. */
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync } = require("node:fs");
const { createHash } = require("node:crypto");
const { path, size, block } = workerData;
const fd = openSync(path, "r");
const buf = Buffer.allocUnsafe(block);
const hash = createHash("sha256");
let pos = 0;
let finished = false;
const finish = (sha256) => {
  finished = true;
  closeSync(fd);
  parentPort.postMessage({ sha256 });
  parentPort.close();
};
parentPort.on("message", (upTo) => {
  if (finished) return;
  const limit = Math.min(upTo, size);
  while (pos < limit) {
    const n = Math.min(block, limit - pos);
    let got = 0;
    while (got < n) {
      const r = readSync(fd, buf, got, n - got, pos + got);
      if (r === 0) return finish(null);
      got += r;
    }
    hash.update(buf.subarray(0, n));
    pos += n;
    parentPort.postMessage({ done: pos });
  }
  if (pos >= size) finish(hash.digest("hex"));
});
`;

export class ReadBack {
  private readonly worker: Worker;
  private readonly result: Promise<string | undefined>;
  /** Bytes hashed so far. */
  done = 0;
  onProgress: ((done: number) => void) | undefined;

  constructor(path: string, size: number, block = 1 << 20) {
    this.worker = new Worker(WORKER, {
      eval: true,
      // Not the parent's flags: --input-type=module would make this script ESM.
      execArgv: [],
      workerData: { path, size, block },
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 12 },
    });
    this.result = new Promise((resolve, reject) => {
      this.worker.on("message", (m: { done?: number; sha256?: string | null }) => {
        if (m.done !== undefined) {
          this.done = m.done;
          this.onProgress?.(m.done);
        } else resolve(m.sha256 ?? undefined);
      });
      this.worker.on("error", reject);
      this.worker.on("exit", () => reject(new Error("read-back worker stopped early")));
    });
    // Settled on every path; a caller that stops early does not await it.
    this.result.catch(() => {});
  }

  /** Bytes [0, upTo) are written and synced: the worker may read them. */
  advance(upTo: number): void {
    this.worker.postMessage(upTo);
  }

  /** The target's SHA-256 once `advance(size)` was called (undefined: shorter than size). */
  sha256(): Promise<string | undefined> {
    return this.result;
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}
