/**
 * The SQLite work that no request waits for, on a worker thread with its own connection:
 * batched last-check writes and WAL checkpoints. node:sqlite is synchronous, so on the serving
 * thread both cost every request in the queue behind them: a checkpoint (copying pages into
 * the database file, with an fsync) stalled it 100–230 ms, and each last-check write dirties
 * one random 4 KiB page (~20 µs per host). PASSIVE checkpoints never block readers or writers;
 * the worker's short write transactions are serialised with the serving thread's by SQLite's
 * write lock (the serving thread starts its transactions IMMEDIATE, see sqlite-dialect.ts).
 */
import { Worker } from "node:worker_threads";

// Plain script (eval worker): nothing to resolve or strip at run time.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { DatabaseSync } = require("node:sqlite");
const db = new DatabaseSync(workerData.path);
db.exec("PRAGMA busy_timeout = 5000");
db.exec("PRAGMA synchronous = NORMAL");
db.exec("PRAGMA wal_autocheckpoint = 0");
const touch = db.prepare(
  "UPDATE instances SET last_check_at = ? WHERE app_id = ? AND machine_id IN (SELECT value FROM json_each(?)) AND last_check_at < ?",
);
const report = (err) => parentPort.postMessage({ error: String((err && err.message) || err) });
const timer = setInterval(() => {
  try {
    db.exec("PRAGMA wal_checkpoint(PASSIVE)");
  } catch (err) {
    report(err);
  }
}, workerData.checkpointMs);
parentPort.on("message", (m) => {
  if (m.type === "touch") {
    try {
      touch.run(m.at, m.appId, m.machineIds, m.at);
    } catch (err) {
      report(err);
    }
    parentPort.postMessage({ done: m.id });
  } else if (m.type === "stop") {
    clearInterval(timer);
    db.close();
    parentPort.close();
  }
});
`;

export interface SqliteBackground {
  /** Set last_check_at = at for these hosts (never backwards); resolves once written. */
  touch(appId: string, machineIds: string[], at: number): Promise<void>;
  /** Finish queued writes, then close the worker's connection. */
  stop(): Promise<void>;
}

export function startSqliteBackground(
  path: string,
  opts: { checkpointMs?: number; onError?: (message: string) => void } = {},
): SqliteBackground {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path, checkpointMs: opts.checkpointMs ?? 1000 },
  });
  const waiting = new Map<number, () => void>();
  let nextId = 1;
  let exited = false;
  worker.on("message", (m: { error?: string; done?: number }) => {
    if (m.error) opts.onError?.(m.error);
    if (m.done !== undefined) {
      waiting.get(m.done)?.();
      waiting.delete(m.done);
    }
  });
  const gone = new Promise<void>((resolve) =>
    worker.once("exit", () => {
      exited = true;
      for (const done of waiting.values()) done();
      waiting.clear();
      resolve();
    }),
  );
  worker.on("error", (err) => opts.onError?.(err.message));
  worker.unref();
  return {
    touch(appId, machineIds, at) {
      if (exited) return Promise.resolve();
      const id = nextId++;
      return new Promise<void>((resolve) => {
        waiting.set(id, resolve);
        worker.postMessage({
          type: "touch",
          id,
          appId,
          machineIds: JSON.stringify(machineIds),
          at,
        });
      });
    },
    async stop() {
      if (exited) return;
      // Messages are handled in order: queued writes finish before the connection closes.
      // Keep this process alive until they have.
      worker.ref();
      worker.postMessage({ type: "stop" });
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000).unref())]);
      await worker.terminate();
    },
  };
}
