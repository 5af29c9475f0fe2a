/**
 * Run a build command with its output going to the stage log, and its last
 * line to the progress display. Failures keep the log; the stage runner
 * shows its tail.
 */
import { spawn } from "node:child_process";
import { SlipwayError } from "../errors.ts";

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Receives every output line (the stage log and progress). */
  onLine?: (line: string) => void;
  /** Collect stdout and return it (otherwise it only goes to onLine). */
  captureStdout?: boolean;
  input?: string;
}

export async function exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: "C.UTF-8", ...opts.env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const captured: Buffer[] = [];
    const lineSplitter = () => {
      let rest = "";
      return {
        push(b: Buffer) {
          rest += b.toString("utf8");
          const lines = rest.split(/\r?\n|\r/);
          rest = lines.pop() ?? "";
          for (const l of lines) if (l.trim()) opts.onLine?.(l);
        },
        end() {
          if (rest.trim()) opts.onLine?.(rest);
        },
      };
    };
    const outLines = lineSplitter();
    const errLines = lineSplitter();
    child.stdout?.on("data", (b: Buffer) => {
      if (opts.captureStdout) captured.push(b);
      else outLines.push(b);
    });
    child.stderr?.on("data", (b: Buffer) => errLines.push(b));
    child.on("error", (e) => {
      reject(
        new SlipwayError(
          (e as NodeJS.ErrnoException).code === "ENOENT" ? `${cmd} is not installed` : e.message,
          { cause: e },
        ),
      );
    });
    child.on("close", (code, signal) => {
      outLines.end();
      errLines.end();
      if (code === 0) resolve(Buffer.concat(captured).toString("utf8"));
      else reject(new SlipwayError(`${cmd} failed (${signal ?? `exit ${code}`})`));
    });
    if (child.stdin) {
      // A child that exits without reading its input must not crash the build.
      child.stdin.on("error", () => {});
      child.stdin.end(opts.input);
    }
  });
}
