/**
 * Host tools the build needs, each with the Debian package that ships it, so
 * a missing tool ends in one message: "apt-get install <exactly these>".
 */
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { SlipwayError } from "../errors.ts";

export interface HostTool {
  /** A command looked up on PATH, or an absolute path to a file or directory. */
  command: string;
  /** The Debian package that provides it. */
  debianPackage: string;
}

export const tool = (command: string, debianPackage: string): HostTool => ({
  command,
  debianPackage,
});

/** Tools slipway's own stages use (the boot stages declare theirs). */
export const TOOLS = {
  mmdebstrap: tool("mmdebstrap", "mmdebstrap"),
  keyring: tool("/usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring"),
  dpkgQuery: tool("dpkg-query", "dpkg"),
  cp: tool("cp", "coreutils"),
  tar: tool("tar", "tar"),
  qemuImg: tool("qemu-img", "qemu-utils"),
} as const;

export function findOnPath(command: string, path = process.env.PATH ?? ""): string | undefined {
  if (command.startsWith("/")) return existsSync(command) ? command : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export function missingTools(tools: readonly HostTool[], path?: string): HostTool[] {
  const seen = new Set<string>();
  const missing: HostTool[] = [];
  for (const t of tools) {
    if (seen.has(t.command)) continue;
    seen.add(t.command);
    if (!findOnPath(t.command, path)) missing.push(t);
  }
  return missing;
}

export class MissingToolsError extends SlipwayError {
  readonly missing: HostTool[];
  constructor(missing: HostTool[]) {
    const pkgs = [...new Set(missing.map((t) => t.debianPackage))].sort();
    super(
      `missing host tools: ${missing.map((t) => t.command).join(", ")}\n` +
        `install them with: apt-get install ${pkgs.join(" ")}`,
    );
    this.missing = missing;
  }
}

export function requireTools(tools: readonly HostTool[]): void {
  const missing = missingTools(tools);
  if (missing.length > 0) throw new MissingToolsError(missing);
}
