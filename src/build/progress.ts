/**
 * Build progress for people and machines: a live line per stage on a TTY,
 * plain lines in CI logs, JSON lines with `--json`. Stages report events;
 * the reporter decides how they look.
 */

export type BuildEvent =
  | { type: "build-start"; name: string; version: string; workDir: string }
  | { type: "stage-start"; stage: string; title: string }
  | { type: "stage-progress"; stage: string; message: string }
  | { type: "stage-end"; stage: string; cached: boolean; seconds: number; bytes: number }
  | { type: "stage-failed"; stage: string; seconds: number; error: string; logTail: string[] }
  | { type: "up-to-date"; version: string; seconds: number }
  | { type: "build-end"; version: string; dir: string; seconds: number }
  | { type: "note"; message: string };

export interface ProgressReporter {
  emit(event: BuildEvent): void;
  /** Stop timers; called once at the end, success or not. */
  close(): void;
}

export type ProgressMode = "tty" | "plain" | "json" | "quiet";

export function chooseMode(
  json: boolean,
  stream: NodeJS.WriteStream = process.stderr,
): ProgressMode {
  if (json) return "json";
  return stream.isTTY && process.env.CI === undefined ? "tty" : "plain";
}

export function createReporter(mode: ProgressMode): ProgressReporter {
  switch (mode) {
    case "json":
      return new JsonReporter();
    case "tty":
      return new TtyReporter(process.stderr);
    case "plain":
      return new PlainReporter(process.stderr);
    case "quiet":
      return { emit() {}, close() {} };
  }
}

function fmtSeconds(s: number): string {
  return s < 10 ? `${s.toFixed(1)}s` : `${Math.round(s)}s`;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Lines people read: shared by the plain and TTY reporters. */
function describe(e: BuildEvent): string | undefined {
  switch (e.type) {
    case "build-start":
      return `building ${e.name} ${e.version} in ${e.workDir}`;
    case "stage-start":
      return `[${e.stage}] ${e.title}`;
    case "stage-progress":
      return `[${e.stage}] ${e.message}`;
    case "stage-end":
      return e.cached
        ? `[${e.stage}] cached (${fmtBytes(e.bytes)})`
        : `[${e.stage}] done in ${fmtSeconds(e.seconds)} (${fmtBytes(e.bytes)})`;
    case "stage-failed":
      return `[${e.stage}] FAILED after ${fmtSeconds(e.seconds)}: ${e.error}${
        e.logTail.length ? `\n  ${e.logTail.join("\n  ")}` : ""
      }`;
    case "up-to-date":
      return `nothing changed since ${e.version}; no rebuild (${fmtSeconds(e.seconds)}). Use --force to rebuild.`;
    case "build-end":
      return `built ${e.version} in ${fmtSeconds(e.seconds)}: ${e.dir}`;
    case "note":
      return e.message;
  }
}

class PlainReporter implements ProgressReporter {
  private readonly out: NodeJS.WritableStream;
  private lastProgress = 0;
  constructor(out: NodeJS.WritableStream) {
    this.out = out;
  }
  emit(e: BuildEvent): void {
    // Stage output can be chatty; CI logs get at most one progress line every 5 s.
    if (e.type === "stage-progress") {
      const now = Date.now();
      if (now - this.lastProgress < 5000) return;
      this.lastProgress = now;
    }
    const line = describe(e);
    if (line) this.out.write(`${line}\n`);
  }
  close(): void {}
}

class JsonReporter implements ProgressReporter {
  emit(e: BuildEvent): void {
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
  }
  close(): void {}
}

/** One live status line for the running stage, redrawn with its elapsed time. */
class TtyReporter implements ProgressReporter {
  private readonly out: NodeJS.WriteStream;
  private current: { stage: string; title: string; started: number; message: string } | undefined;
  private readonly timer: NodeJS.Timeout;
  constructor(out: NodeJS.WriteStream) {
    this.out = out;
    this.timer = setInterval(() => this.redraw(), 200);
    this.timer.unref();
  }
  private redraw(): void {
    if (!this.current) return;
    const { stage, title, started, message } = this.current;
    const elapsed = fmtSeconds((Date.now() - started) / 1000);
    const width = (this.out.columns ?? 100) - 1;
    const text = `[${stage}] ${elapsed} ${title}${message ? `: ${message}` : ""}`;
    this.out.write(`\r\x1b[2K${text.slice(0, width)}`);
  }
  emit(e: BuildEvent): void {
    if (e.type === "stage-start") {
      this.current = { stage: e.stage, title: e.title, started: Date.now(), message: "" };
      this.redraw();
      return;
    }
    if (e.type === "stage-progress") {
      if (this.current) this.current.message = e.message;
      return;
    }
    if (this.current) this.out.write("\r\x1b[2K");
    if (e.type === "stage-end" || e.type === "stage-failed") this.current = undefined;
    const line = describe(e);
    if (line) this.out.write(`${line}\n`);
  }
  close(): void {
    clearInterval(this.timer);
    if (this.current) this.out.write("\n");
  }
}
