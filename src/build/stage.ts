/**
 * The stage framework (mkosi style). A stage declares what its output
 * depends on (`key`), and writes only into its own output directory; the
 * runner hashes the key, reuses a cached output when the hash matches, and
 * otherwise runs the stage in a scratch directory and publishes it into the
 * cache with a rename. Stages see each other only through `StageResult`s:
 * read-only directories plus a JSON value, never another stage's temp files.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SlipwayError } from "../errors.ts";
import type { StageCache } from "./cache.ts";
import { type ExecOptions, exec } from "./exec.ts";
import { hashJson } from "./hash.ts";
import type { HostTool } from "./host-tools.ts";
import type { ProgressReporter } from "./progress.ts";

export interface StageContext {
  /** Empty directory for the stage's outputs; it becomes the cache entry (read-only after). */
  outDir: string;
  /** Scratch space, removed when the stage ends. */
  tmpDir: string;
  /** A line for the stage log. */
  log(line: string): void;
  /** A short status for the progress display (also logged). */
  progress(message: string): void;
  /** Run a command; its output goes to the stage log, its last line to progress. */
  exec(cmd: string, args: string[], opts?: ExecOptions): Promise<string>;
  /**
   * Also file this output under the key `input` would have had: e.g. the
   * rootfs built without a lockfile is exactly what building from the
   * lockfile it wrote would give.
   */
  alsoKnownAs(keyMaterial: unknown): void;
}

export interface Stage<I, O> {
  name: string;
  /** What the stage does, for the progress display. */
  title: string;
  /** Bump when the stage's code changes what it produces: old cache entries stop matching. */
  version: number;
  tools: readonly HostTool[];
  /**
   * Everything the output depends on, as JSON. `StageResult`s inside count
   * by their key; files and directories must be given as content hashes.
   */
  key(input: I): unknown | Promise<unknown>;
  run(input: I, ctx: StageContext): Promise<O>;
}

/** A stage's published output: read-only files under `dir` and a JSON value. */
export class StageResult<O> {
  readonly stage: string;
  readonly key: string;
  readonly dir: string;
  readonly value: O;
  readonly cached: boolean;
  readonly seconds: number;
  /** On-disk size of the output directory. */
  readonly bytes: number;
  constructor(init: {
    stage: string;
    key: string;
    dir: string;
    value: O;
    cached: boolean;
    seconds: number;
    bytes: number;
  }) {
    this.stage = init.stage;
    this.key = init.key;
    this.dir = init.dir;
    this.value = init.value;
    this.cached = init.cached;
    this.seconds = init.seconds;
    this.bytes = init.bytes;
  }
  /** Absolute path of a file the stage wrote (given relative to its output dir). */
  path(rel: string): string {
    return join(this.dir, rel);
  }
  toJSON(): unknown {
    return { stageRef: this.stage, key: this.key };
  }
}

export class StageFailedError extends SlipwayError {
  readonly stage: string;
  readonly logTail: string[];
  constructor(stage: string, message: string, logTail: string[], cause: unknown) {
    super(
      `stage ${stage} failed: ${message}${logTail.length ? `\n  ${logTail.join("\n  ")}` : ""}`,
      {
        cause,
      },
    );
    this.stage = stage;
    this.logTail = logTail;
  }
}

export interface StageTiming {
  stage: string;
  key: string;
  cached: boolean;
  seconds: number;
  bytes: number;
}

export interface RunnerOptions {
  cache: StageCache;
  reporter: ProgressReporter;
  /** The build log every stage appends to. */
  buildLog: string;
  /** Ignore cached outputs (still stores new ones). */
  force?: boolean;
  /** Test hook: the stage of this name fails on purpose. */
  failStage?: string;
}

export class StageRunner {
  readonly timings: StageTiming[] = [];
  private readonly opts: RunnerOptions;
  constructor(opts: RunnerOptions) {
    this.opts = opts;
  }

  async keyOf<I, O>(stage: Stage<I, O>, input: I): Promise<string> {
    return hashJson({ stage: stage.name, version: stage.version, key: await stage.key(input) });
  }

  async run<I, O>(stage: Stage<I, O>, input: I): Promise<StageResult<O>> {
    const { cache, reporter, buildLog } = this.opts;
    const key = await this.keyOf(stage, input);
    const started = Date.now();
    reporter.emit({ type: "stage-start", stage: stage.name, title: stage.title });
    appendFileSync(buildLog, `== stage ${stage.name} (key ${key})\n`);

    const hit = this.opts.force ? undefined : cache.lookup<O>(stage.name, key);
    if (hit && this.opts.failStage !== stage.name) {
      appendFileSync(buildLog, `cached: ${hit.dir}\n`);
      // Downstream keys use the entry's own key, so an alias hit changes nothing after it.
      const result = new StageResult<O>({
        stage: stage.name,
        key: hit.key,
        dir: hit.dir,
        value: hit.value,
        cached: true,
        seconds: hit.seconds,
        bytes: hit.bytes,
      });
      this.record(result);
      reporter.emit({
        type: "stage-end",
        stage: stage.name,
        cached: true,
        seconds: 0,
        bytes: hit.bytes,
      });
      return result;
    }

    const entry = cache.begin(stage.name, key);
    const logFile = join(entry.root, "stage.log");
    writeFileSync(logFile, "");
    const aliases: string[] = [];
    const log = (line: string) => {
      appendFileSync(logFile, `${line}\n`);
      appendFileSync(buildLog, `${line}\n`);
    };
    const ctx: StageContext = {
      outDir: entry.outDir,
      tmpDir: entry.tmpDir,
      log,
      progress: (message) => {
        log(`-- ${message}`);
        reporter.emit({ type: "stage-progress", stage: stage.name, message });
      },
      exec: (cmd, args, execOpts = {}) => {
        log(`$ ${cmd} ${args.join(" ")}`);
        return exec(cmd, args, {
          ...execOpts,
          onLine: (line) => {
            log(line);
            reporter.emit({
              type: "stage-progress",
              stage: stage.name,
              message: line.slice(0, 200),
            });
            execOpts.onLine?.(line);
          },
        });
      },
      alsoKnownAs: (material) => {
        aliases.push(hashJson({ stage: stage.name, version: stage.version, key: material }));
      },
    };
    let value: O;
    try {
      if (this.opts.failStage === stage.name) {
        log("failing on purpose (SLIPWAY_FAIL_STAGE)");
        throw new SlipwayError(`injected failure in ${stage.name}`);
      }
      value = await stage.run(input, ctx);
    } catch (err) {
      const seconds = (Date.now() - started) / 1000;
      const tail = readTail(logFile, 20);
      cache.abandon(entry);
      const message = err instanceof Error ? err.message : String(err);
      reporter.emit({
        type: "stage-failed",
        stage: stage.name,
        seconds,
        error: message,
        logTail: tail,
      });
      throw new StageFailedError(stage.name, message, tail, err);
    }
    const seconds = (Date.now() - started) / 1000;
    const published = cache.commit(entry, value, seconds, aliases);
    const result = new StageResult<O>({
      stage: stage.name,
      key,
      dir: published.dir,
      value,
      cached: false,
      seconds,
      bytes: published.bytes,
    });
    this.record(result);
    reporter.emit({
      type: "stage-end",
      stage: stage.name,
      cached: false,
      seconds,
      bytes: published.bytes,
    });
    return result;
  }

  private record(r: StageResult<unknown>): void {
    this.timings.push({
      stage: r.stage,
      key: r.key,
      cached: r.cached,
      seconds: r.seconds,
      bytes: r.bytes,
    });
  }
}

function readTail(file: string, lines: number): string[] {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines);
  } catch {
    return [];
  }
}

/** Remove a scratch directory, ignoring that it may be gone already. */
export function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
