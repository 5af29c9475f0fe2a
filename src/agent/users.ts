/**
 * Logged-in users, from utmp (glibc x86_64 layout: 384-byte records, ut_type
 * at 0, ut_user at 44), and the `wall` warning before a reboot.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";

const RECORD = 384;
const USER_PROCESS = 7;

export function loggedInUsers(utmpPath: string): string[] {
  let buf: Buffer;
  try {
    buf = readFileSync(utmpPath);
  } catch {
    return [];
  }
  const users = new Set<string>();
  for (let off = 0; off + RECORD <= buf.length; off += RECORD) {
    if (buf.readInt16LE(off) !== USER_PROCESS) continue;
    const raw = buf.subarray(off + 44, off + 44 + 32);
    const end = raw.indexOf(0);
    const name = raw.subarray(0, end < 0 ? raw.length : end).toString("utf8");
    if (name) users.add(name);
  }
  return [...users].sort();
}

/** Best effort: a missing `wall` must not stop a reboot. */
export function wall(message: string): Promise<void> {
  return new Promise((resolve) => {
    execFile("wall", [message], { timeout: 10_000 }, () => resolve());
  });
}
