/**
 * GRUB environment block codec: the 1024-byte file GRUB's `load_env` and
 * `save_env` read and rewrite in place. Layout: a fixed header line, then
 * `key=value\n` lines, then '#' padding to the block size. GRUB refuses a
 * block whose size changed, so encoding always yields exactly `size` bytes.
 */
import { InputError } from "../errors.ts";

export const GRUBENV_HEADER = "# GRUB Environment Block\n";
export const GRUBENV_SIZE = 1024;

/** Ordered variables of a grubenv block. */
export type GrubEnv = Map<string, string>;

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** GRUB escapes backslash and newline in values with a backslash. */
function escapeValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\\n");
}

function unescapeValue(v: string): string {
  return v.replace(/\\([\\\n])/g, "$1");
}

export function parseGrubEnv(bytes: Uint8Array, where = "grubenv"): GrubEnv {
  const text = Buffer.from(bytes).toString("latin1");
  if (!text.startsWith(GRUBENV_HEADER)) {
    throw new InputError("not a GRUB environment block (header missing)", { where });
  }
  if (bytes.length !== GRUBENV_SIZE) {
    throw new InputError(
      `GRUB environment block is ${bytes.length} bytes, expected ${GRUBENV_SIZE}`,
      {
        where,
      },
    );
  }
  const env: GrubEnv = new Map();
  // Split on newlines that are not escaped by a backslash.
  const body = text.slice(GRUBENV_HEADER.length);
  let line = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === "\\" && i + 1 < body.length) {
      line += c + body[i + 1]!;
      i++;
      continue;
    }
    if (c === "\n") {
      addLine(env, line, where);
      line = "";
      continue;
    }
    line += c;
  }
  // Trailing text without a newline is padding ('#...') in a valid block.
  return env;
}

function addLine(env: GrubEnv, line: string, where: string): void {
  if (line === "" || line.startsWith("#")) return;
  const eq = line.indexOf("=");
  if (eq <= 0) throw new InputError(`malformed grubenv line ${JSON.stringify(line)}`, { where });
  env.set(line.slice(0, eq), unescapeValue(line.slice(eq + 1)));
}

export function encodeGrubEnv(env: GrubEnv | Record<string, string>): Buffer {
  const entries = env instanceof Map ? [...env.entries()] : Object.entries(env);
  let text = GRUBENV_HEADER;
  for (const [k, v] of entries) {
    if (!NAME_RE.test(k))
      throw new InputError(`invalid grubenv variable name ${JSON.stringify(k)}`);
    text += `${k}=${escapeValue(v)}\n`;
  }
  const used = Buffer.byteLength(text, "latin1");
  if (used > GRUBENV_SIZE) {
    throw new InputError(
      `grubenv content is ${used} bytes, more than the ${GRUBENV_SIZE}-byte block`,
    );
  }
  return Buffer.from(text + "#".repeat(GRUBENV_SIZE - used), "latin1");
}
