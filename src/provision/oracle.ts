/**
 * Ignition's own validator (`ignition-validate` from Debian's `ignition` package), run as a
 * second opinion on rendered configs. Its lines look like
 * `error at $.storage.files.0.path, line 1 col 61: path not absolute`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const IGNITION_VALIDATE = "ignition-validate";

export interface OracleVerdict {
  ok: boolean;
  findings: { severity: "error" | "warning"; path: string | undefined; message: string }[];
  /** Everything the tool printed, for reports. */
  output: string;
}

/** True when the binary is on PATH (Debian: /usr/bin/ignition-validate). */
export function oracleAvailable(): boolean {
  const r = spawnSync(IGNITION_VALIDATE, ["-version"], { encoding: "utf8" });
  return r.error === undefined;
}

export function runOracle(json: string): OracleVerdict {
  const dir = mkdtempSync(join(tmpdir(), "slipway-ign-"));
  try {
    const file = join(dir, "config.ign");
    writeFileSync(file, json);
    const r = spawnSync(IGNITION_VALIDATE, [file], { encoding: "utf8", timeout: 30_000 });
    if (r.error) throw r.error;
    const output = `${r.stdout}${r.stderr}`;
    const findings = output
      .split("\n")
      .map((line) => /^(error|warning) at (\$[^,]*)?,? ?(?:line \d+ col \d+: )?(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({
        severity: m[1] as "error" | "warning",
        path: m[2] || undefined,
        message: m[3] ?? "",
      }));
    return { ok: r.status === 0, findings, output: output.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
