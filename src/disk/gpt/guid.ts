/**
 * GUIDs as GPT stores them: 16 bytes where the first three fields are
 * little-endian and the last two are big-endian ("mixed-endian").
 * Text form is always lowercase here.
 */
import { randomUUID } from "node:crypto";

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const ZERO_GUID = "00000000-0000-0000-0000-000000000000";

export function isGuid(text: string): boolean {
  return GUID_RE.test(text.toLowerCase());
}

export function randomGuid(): string {
  return randomUUID();
}

/** Decode the 16 bytes at `offset` of `buf`. */
export function decodeGuid(buf: Uint8Array, offset: number): string {
  const b = (i: number) => buf[offset + i]!.toString(16).padStart(2, "0");
  const seq = (idx: number[]) => idx.map(b).join("");
  return [
    seq([3, 2, 1, 0]),
    seq([5, 4]),
    seq([7, 6]),
    seq([8, 9]),
    seq([10, 11, 12, 13, 14, 15]),
  ].join("-");
}

/** Encode `guid` (text form) into `buf` at `offset`. */
export function encodeGuid(guid: string, buf: Uint8Array, offset: number): void {
  const hex = guid.toLowerCase().replaceAll("-", "");
  if (!isGuid(guid)) throw new Error(`not a GUID: ${guid}`);
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  for (let i = 0; i < 16; i++) {
    buf[offset + order[i]!] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  }
}
