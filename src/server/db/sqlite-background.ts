/**
 * The SQLite work that no request waits for, on a worker thread with its own connection:
 * batched last-check writes and WAL checkpoints. node:sqlite is synchronous, so on the serving
 * thread both cost every request in the queue behind them: a checkpoint (copying pages into
 * the database file, with an fsync) stalled it 100–230 ms, and each last-check write dirties
 * one random 4 KiB page (~20 µs per host). PASSIVE checkpoints never block readers or writers;
 * the worker's write transactions (at most 2,000 hosts each) are serialised with the serving
 * thread's by SQLite's write lock (the serving thread starts its transactions IMMEDIATE, see
 * sqlite-dialect.ts).
 */
import { Worker } from "node:worker_threads";

// Plain script (eval worker): nothing to resolve or strip at run time.
// Touches queue up and are written together, one transaction per writeMs (5 s): a host row's
// page is then written to the WAL once per transaction however many of its hosts checked (at
// 10,000 checks/s nearly every page of a 100,000-host table changes within a second, so the
// cost per check falls with the interval; a killed process loses at most that much). A PASSIVE
// checkpoint runs when the WAL has grown past checkpointBytes or checkpointMs passed: it copies
// each page once however often it changed meanwhile, where a checkpoint per second copied nearly
// every page the touches dirtied (the worker's checkpoints cost more CPU per check than its
// writes). Not much more than 8 MiB: a read of a page still in the WAL costs a pread, a page
// checkpointed into the file is read through the memory map.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { DatabaseSync } = require("node:sqlite");
const { statSync } = require("node:fs");
// Below the serving thread on a busy CPU (Linux: setpriority on a thread id is per thread):
// a second's writes or a checkpoint must not stretch the answers to checks meanwhile.
try {
  const tid = Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop());
  require("node:os").setPriority(tid, 10);
} catch {}
const db = new DatabaseSync(workerData.path);
db.exec("PRAGMA busy_timeout = 5000");
db.exec("PRAGMA synchronous = NORMAL");
db.exec("PRAGMA wal_autocheckpoint = 0");
db.exec("PRAGMA cache_size = -65536");
const touch = db.prepare(
  "UPDATE instances SET last_check_at = ? WHERE app_id = ? AND machine_id IN (SELECT value FROM json_each(?)) AND last_check_at < ?",
);
const report = (err) => parentPort.postMessage({ error: String((err && err.message) || err) });
const CHUNK = 2000;
let queued = [];
let lastCheckpoint = Date.now();
const walSize = () => {
  try {
    return statSync(workerData.path + "-wal").size;
  } catch {
    return 0;
  }
};
const checkpoint = () => {
  try {
    db.exec("PRAGMA wal_checkpoint(PASSIVE)");
  } catch (err) {
    report(err);
  }
  lastCheckpoint = Date.now();
};
const write = () => {
  if (queued.length > 0) {
    const batch = queued;
    queued = [];
    // At most CHUNK hosts per transaction: the serving thread's own transactions wait (and
    // block its event loop) while one of these holds the write lock.
    let rows = 0;
    const commit = () => {
      if (db.isTransaction) db.exec("COMMIT");
      rows = 0;
    };
    try {
      for (const m of batch) {
        for (let i = 0; i < m.machineIds.length; i += CHUNK) {
          if (!db.isTransaction) db.exec("BEGIN IMMEDIATE");
          const ids = m.machineIds.slice(i, i + CHUNK);
          touch.run(m.at, m.appId, JSON.stringify(ids), m.at);
          rows += ids.length;
          if (rows >= CHUNK) commit();
        }
      }
      commit();
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      report(err);
    }
    parentPort.postMessage({ done: batch.length });
  }
  if (walSize() >= workerData.checkpointBytes || Date.now() - lastCheckpoint >= workerData.checkpointMs)
    checkpoint();
};
const timer = setInterval(write, workerData.writeMs);
parentPort.on("message", (m) => {
  if (m.type === "touch") {
    queued.push(m);
  } else if (m.type === "stop") {
    clearInterval(timer);
    write();
    checkpoint();
    db.close();
    parentPort.close();
  }
});
`;

export interface SqliteBackground {
  /**
   * Queue last_check_at = at for these hosts (never backwards). Resolves at once: the worker
   * writes them within writeMs, or when stopped (the process stays alive until then).
   */
  touch(appId: string, machineIds: string[], at: number): Promise<void>;
  /** Finish queued writes, then close the worker's connection. */
  stop(): Promise<void>;
}

export function startSqliteBackground(
  path: string,
  opts: {
    writeMs?: number;
    checkpointMs?: number;
    checkpointBytes?: number;
    onError?: (message: string) => void;
  } = {},
): SqliteBackground {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      path,
      writeMs: opts.writeMs ?? 5000,
      checkpointMs: opts.checkpointMs ?? 30_000,
      checkpointBytes: opts.checkpointBytes ?? 8 * 1024 * 1024,
    },
  });
  /** Batches handed over and not written yet: the worker keeps the process alive meanwhile. */
  let unwritten = 0;
  let exited = false;
  let stopping = false;
  worker.on("message", (m: { error?: string; done?: number }) => {
    if (m.error) opts.onError?.(m.error);
    if (m.done === undefined) return;
    unwritten -= m.done;
    if (unwritten === 0 && !stopping) worker.unref();
  });
  const gone = new Promise<void>((resolve) =>
    worker.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  worker.on("error", (err) => opts.onError?.(err.message));
  worker.unref();
  return {
    touch(appId, machineIds, at) {
      if (exited) return Promise.resolve();
      // Written up to writeMs later (a shutdown flushes). Nobody waits for the write: the
      // serving thread hands its batch over and is done with it.
      if (unwritten++ === 0) worker.ref();
      worker.postMessage({ type: "touch", appId, machineIds, at });
      return Promise.resolve();
    },
    async stop() {
      if (exited) return;
      // Messages are handled in order: queued writes finish before the connection closes.
      // Keep this process alive until they have.
      stopping = true;
      worker.ref();
      worker.postMessage({ type: "stop" });
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000).unref())]);
      await worker.terminate();
    },
  };
}
