/**
 * Content hashes for cache keys: JSON values in a canonical form, and
 * directory trees by path, type, mode and content (not mtime, so a fresh
 * checkout of the same overlay hits the cache).
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, lstatSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/** JSON with object keys sorted, so equal values hash equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

export function hashJson(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex");
}

async function hashFileInto(h: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  await hashFileInto(h, path);
  return h.digest("hex");
}

/** Hash of a file or directory tree (missing paths hash as "missing"). */
export async function hashPath(path: string): Promise<string> {
  const h = createHash("sha256");
  const walk = async (abs: string, rel: string): Promise<void> => {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(abs);
    } catch {
      h.update(`missing ${rel}\0`);
      return;
    }
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      h.update(`dir ${rel} ${mode}\0`);
      for (const name of readdirSync(abs).sort()) await walk(join(abs, name), `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      h.update(`link ${rel} ${readlinkSync(abs)}\0`);
    } else if (st.isFile()) {
      h.update(`file ${rel} ${mode} ${st.size}\0`);
      await hashFileInto(h, abs);
    } else {
      h.update(`other ${rel} ${mode}\0`);
    }
  };
  await walk(path, ".");
  return h.digest("hex");
}
