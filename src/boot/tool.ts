/**
 * Running the external tools the boot chain needs (grub-mkimage, mkfs.*,
 * mtools, dracut in a chroot). A failure names the tool and shows its
 * stderr, so the user sees why an image could not be made.
 */
import { spawn } from "node:child_process";
import { SlipwayError } from "../errors.ts";

export interface ToolOptions {
  cwd?: string;
  env?: Record<string, string>;
  input?: string | Buffer;
  /** Where the problem is, for the error message (an image, a tree). */
  where?: string;
}

export async function runTool(
  cmd: string,
  args: string[],
  opts: ToolOptions = {},
): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: "C", ...opts.env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
      reject(
        new SlipwayError(
          missing ? `${cmd} is not installed` : `${cmd} could not start: ${e.message}`,
          {
            where: opts.where,
            cause: e,
          },
        ),
      );
    });
    child.on("close", (code, signal) => {
      if (code === 0) return resolve(Buffer.concat(out).toString("utf8"));
      const tail = Buffer.concat(err).toString("utf8").trim().split("\n").slice(-15).join("\n");
      reject(
        new SlipwayError(
          `${cmd} ${args.join(" ")} failed (${signal ?? `exit ${code}`})${tail ? `:\n${tail}` : ""}`,
          { where: opts.where },
        ),
      );
    });
    if (child.stdin) {
      child.stdin.on("error", () => undefined); // the tool may exit without reading
      child.stdin.end(opts.input);
    }
  });
}
