/**
 * What the agent must remember across restarts and reboots, in one JSON
 * file under /var/lib/slipway, replaced atomically (temp + fsync + rename).
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { dirname } from "node:path";
import { SLOTS, type SlotName } from "../boot/slots.ts";
import { InputError } from "../errors.ts";
import type { RequestEvent } from "../omaha/index.ts";

export interface PendingUpdate {
  version: string;
  previousVersion: string;
  slot: SlotName;
  stagedAt: string;
  /** Kernel boot id when staged: the same id after a restart means no reboot happened yet. */
  bootId: string;
}

export interface PersistedState {
  /** An update written to the passive slot, waiting for its first boot. */
  pending: PendingUpdate | undefined;
  /** Versions that failed to boot here: not retried until the server offers a newer one. */
  failedVersions: string[];
  /** This host holds a fleet reboot place that must be given back once healthy. */
  lockHeld: boolean;
  /** Events the server has not acknowledged yet, sent before the next check. */
  outbox: RequestEvent[];
  /**
   * SHA-256 of each slot as the agent last wrote and verified it; dropped
   * before the slot is written again. Passed as a delta's source hash.
   */
  slotSha256: Partial<Record<SlotName, string>>;
  /**
   * A delta did not fit the active slot: the next check says delta_okay=false
   * (the server then grants one try with the full payload). Cleared by an install.
   */
  fullPayloadNext: boolean;
}

export function emptyState(): PersistedState {
  return {
    pending: undefined,
    failedVersions: [],
    lockHeld: false,
    outbox: [],
    slotSha256: {},
    fullPayloadNext: false,
  };
}

export function loadState(path: string): PersistedState {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return emptyState();
    throw err;
  }
  try {
    const raw = JSON.parse(text) as Partial<PersistedState>;
    return {
      pending: raw.pending ?? undefined,
      failedVersions: Array.isArray(raw.failedVersions) ? raw.failedVersions : [],
      lockHeld: raw.lockHeld === true,
      outbox: Array.isArray(raw.outbox) ? raw.outbox : [],
      slotSha256: slotHashes(raw.slotSha256),
      fullPayloadNext: raw.fullPayloadNext === true,
    };
  } catch (err) {
    throw new InputError(`agent state is not valid JSON: ${(err as Error).message}`, {
      where: path,
    });
  }
}

function slotHashes(raw: unknown): Partial<Record<SlotName, string>> {
  const out: Partial<Record<SlotName, string>> = {};
  if (typeof raw !== "object" || raw === null) return out;
  for (const slot of SLOTS) {
    const v = (raw as Record<string, unknown>)[slot];
    if (typeof v === "string" && /^[0-9a-f]{64}$/.test(v)) out[slot] = v;
  }
  return out;
}

export function saveState(path: string, state: PersistedState): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.new`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  const fd = openSync(tmp, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
