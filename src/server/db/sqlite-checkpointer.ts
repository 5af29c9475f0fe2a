/**
 * WAL checkpoints of the SQLite database on a worker thread. node:sqlite is synchronous, and a
 * checkpoint copies pages into the database file and fsyncs it: run by the serving thread
 * (SQLite's automatic checkpoint at commit) it stalled every request for 100–200 ms on a busy
 * instance table. A PASSIVE checkpoint never blocks writers or readers, so the worker can run
 * it at any time on its own connection. The serving connections set wal_autocheckpoint = 0.
 */
import { Worker } from "node:worker_threads";

// Plain script (eval worker): nothing to resolve or strip at run time.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { DatabaseSync } = require("node:sqlite");
const db = new DatabaseSync(workerData.path);
db.exec("PRAGMA busy_timeout = 5000");
const timer = setInterval(() => {
  try {
    db.exec("PRAGMA wal_checkpoint(PASSIVE)");
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
}, workerData.intervalMs);
parentPort.on("message", () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(
  path: string,
  opts: { intervalMs?: number; onError?: (message: string) => void } = {},
): Checkpointer {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path, intervalMs: opts.intervalMs ?? 1000 },
  });
  worker.on("message", (m: { error?: string }) => {
    if (m.error) opts.onError?.(m.error);
  });
  worker.on("error", (err) => opts.onError?.(err.message));
  worker.unref();
  return {
    async stop() {
      const exited = new Promise((r) => worker.once("exit", r));
      worker.postMessage("stop");
      // A worker that is already gone (crashed) has nothing to close.
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
      await worker.terminate();
    },
  };
}
