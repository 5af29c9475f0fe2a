/**
 * ssh from the harness into a test VM: one throwaway ed25519 key per run, a free loopback port
 * forwarded to the guest's port 22, and the OpenSSH client with host-key checks off (every VM
 * of a run is new, and the port only reaches 127.0.0.1).
 */
import { execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { SlipwayError } from "../../errors.ts";

export interface SshKey {
  /** Private key file (mode 0600). */
  path: string;
  /** The `ssh-ed25519 AAAA… comment` line. */
  publicKey: string;
}

export async function generateSshKey(dir: string): Promise<SshKey> {
  const path = join(dir, "id_ed25519");
  await new Promise<void>((res, rej) =>
    execFile(
      "ssh-keygen",
      ["-q", "-t", "ed25519", "-N", "", "-C", "slipway-test", "-f", path],
      (err, _o, stderr) =>
        err ? rej(new SlipwayError(`ssh-keygen failed: ${stderr.trim() || err.message}`)) : res(),
    ),
  );
  return { path, publicKey: (await readFile(`${path}.pub`, "utf8")).trim() };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

export interface SshTarget {
  port: number;
  key: string;
  user: string;
}

/** ssh arguments up to and including the destination. */
export function sshArgs(t: SshTarget, connectTimeoutS = 10): string[] {
  return [
    "-i",
    t.key,
    "-p",
    String(t.port),
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    `ConnectTimeout=${connectTimeoutS}`,
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=6",
    `${t.user}@127.0.0.1`,
  ];
}

/** The command line a person pastes to log in. */
export function sshCommandLine(t: SshTarget): string {
  return ["ssh", ...sshArgs(t).map((a) => (/[\s"'$]/.test(a) ? `'${a}'` : a))].join(" ");
}

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `command` (a shell string, run by the guest's login shell). Exit 255 = ssh itself failed. */
export async function sshRun(
  t: SshTarget,
  command: string,
  opts: { timeoutMs?: number; input?: string; connectTimeoutS?: number } = {},
): Promise<SshResult> {
  return await new Promise((res) => {
    const child = spawn("ssh", [...sshArgs(t, opts.connectTimeoutS), command], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => {
      stderr += `\n(slipway: ssh command timed out after ${(opts.timeoutMs ?? 0) / 1000} s)`;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 120_000);
    child.on("error", (e) => {
      stderr += String(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      res({ code: code ?? 255, stdout, stderr });
    });
    // ssh may exit before reading its input (connection refused): not an error here.
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}
