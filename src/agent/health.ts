/**
 * The post-boot health gate: systemd reached its target without failed
 * units (`systemctl is-system-running --wait` says "running"), and every
 * executable in /usr/lib/slipway/health.d/ (shipped with the image) and
 * /etc/slipway/health.d/ (the host's own; same name overrides) exits 0.
 * Only then is a new slot marked successful.
 */
import { execFile } from "node:child_process";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

export interface HealthResult {
  healthy: boolean;
  problems: string[];
}

/** Returns systemd's overall state word ("running", "degraded", …). */
export type SystemStateProbe = () => Promise<string>;

export function runCommand(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      const code =
        err === null
          ? 0
          : typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : 127;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (err?.message ?? "")) });
    });
  });
}

export const systemctlProbe: SystemStateProbe = async () => {
  const r = await runCommand("systemctl", ["is-system-running", "--wait"], 15 * 60_000);
  return r.stdout.trim() || `unknown (${r.stderr.trim()})`;
};

export async function checkHealth(
  healthDirs: string | string[],
  probe: SystemStateProbe,
  checkTimeoutMs = 120_000,
): Promise<HealthResult> {
  const problems: string[] = [];
  const state = await probe();
  if (state !== "running") problems.push(`systemd state is "${state}", not "running"`);
  // Later directories override earlier ones by file name (/etc over /usr, as in systemd).
  const checks = new Map<string, string>();
  for (const dir of typeof healthDirs === "string" ? [healthDirs] : healthDirs) {
    try {
      for (const name of await readdir(dir)) checks.set(name, join(dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        problems.push(`${dir}: ${(err as Error).message}`);
      }
    }
  }
  for (const name of [...checks.keys()].sort()) {
    const path = checks.get(name)!;
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile() || (st.mode & 0o111) === 0) continue;
    const r = await runCommand(path, [], checkTimeoutMs);
    if (r.code !== 0) {
      problems.push(`${path} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
    }
  }
  return { healthy: problems.length === 0, problems };
}
