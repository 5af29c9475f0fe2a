/**
 * Reboot semaphore semantics shared by every lock backend: a group has
 * `total_slots` places and a list of holders. The JSON shape is airlock's
 * (`{"total_slots":N,"holders":[…]}`) so an etcd key can be shared with it.
 * A holder keeps its place until it releases it or an operator frees it:
 * nothing expires by itself, so a host that died mid-update stays visible.
 */
import { InputError } from "../errors.ts";

export interface Semaphore {
  total_slots: number;
  holders: string[];
}

export type AcquireOutcome =
  | { kind: "acquired"; next: Semaphore }
  | { kind: "already-held" }
  | { kind: "busy"; holders: string[] };

const GROUP_RE = /^[a-zA-Z0-9.-]+$/;

export function validateGroup(group: string, where = "group"): string {
  if (!GROUP_RE.test(group)) {
    throw new InputError(`group ${JSON.stringify(group)} must match ${GROUP_RE}`, { where });
  }
  return group;
}

export function validateHolderId(id: string, where = "lock id"): string {
  if (id === "" || id.length > 256 || /[\s"]/.test(id)) {
    throw new InputError(`lock holder id ${JSON.stringify(id)} is empty or malformed`, { where });
  }
  return id;
}

export function validateMax(max: number, where = "max"): number {
  if (!Number.isInteger(max) || max < 0 || max > 10_000) {
    throw new InputError(`max holders must be an integer 0–10000, got ${max}`, { where });
  }
  return max;
}

export function newSemaphore(totalSlots: number): Semaphore {
  return { total_slots: validateMax(totalSlots), holders: [] };
}

export function parseSemaphore(text: string, where: string): Semaphore {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`semaphore value is not JSON: ${(err as Error).message}`, {
      where,
      cause: err,
    });
  }
  const obj = raw as { total_slots?: unknown; holders?: unknown };
  if (
    typeof obj !== "object" ||
    obj === null ||
    typeof obj.total_slots !== "number" ||
    !Array.isArray(obj.holders) ||
    !obj.holders.every((h) => typeof h === "string")
  ) {
    throw new InputError('semaphore value must look like {"total_slots":N,"holders":["id",…]}', {
      where,
    });
  }
  return { total_slots: obj.total_slots, holders: [...(obj.holders as string[])] };
}

export function encodeSemaphore(s: Semaphore): string {
  return JSON.stringify({ total_slots: s.total_slots, holders: s.holders });
}

export function tryAcquire(s: Semaphore, id: string): AcquireOutcome {
  if (s.holders.includes(id)) return { kind: "already-held" };
  if (s.holders.length >= s.total_slots) return { kind: "busy", holders: [...s.holders] };
  return { kind: "acquired", next: { ...s, holders: [...s.holders, id] } };
}

/** Drop `id` from the holders; undefined when it held nothing (nothing to write). */
export function release(s: Semaphore, id: string): Semaphore | undefined {
  if (!s.holders.includes(id)) return undefined;
  return { ...s, holders: s.holders.filter((h) => h !== id) };
}

/** Change the number of places; holders above the new max keep theirs until they release. */
export function setMax(s: Semaphore, max: number): Semaphore {
  return { ...s, total_slots: validateMax(max) };
}
