/**
 * Boot-slot state (DESIGN §3): per USR slot a priority (0–15), tries left
 * (0–15) and a successful flag. The boot-time truth is the grubenv; GRUB
 * picks the bootable slot (successful, or tries > 0) with the highest
 * priority. The verbs follow RAUC's names so agent code reads naturally.
 */
import { InputError } from "../errors.ts";
import type { GrubEnv } from "./grubenv.ts";

export const SLOTS = ["A", "B"] as const;
export type SlotName = (typeof SLOTS)[number];

export interface SlotState {
  priority: number;
  tries: number;
  successful: number;
}

export type BootState = Record<SlotName, SlotState>;

/** The state a freshly built image starts in: A proven, B empty. */
export function initialBootState(): BootState {
  return {
    A: { priority: 1, tries: 0, successful: 1 },
    B: { priority: 0, tries: 0, successful: 0 },
  };
}

/** GPT partition numbers of the slots (DESIGN §4). */
export const SLOT_PARTITION: Record<SlotName, number> = { A: 3, B: 4 };
/** GPT partition labels of the slots. */
export const SLOT_LABEL: Record<SlotName, string> = { A: "USR-A", B: "USR-B" };

/** grubenv variable names for a slot's fields, e.g. `usr_a_priority`. */
export function slotKeys(slot: SlotName): { priority: string; tries: string; successful: string } {
  const p = `usr_${slot.toLowerCase()}`;
  return { priority: `${p}_priority`, tries: `${p}_tries`, successful: `${p}_successful` };
}

export function otherSlot(slot: SlotName): SlotName {
  return slot === "A" ? "B" : "A";
}

export function parseSlotName(s: string, where = "slot"): SlotName {
  const u = s.toUpperCase().replace(/^USR-?/, "");
  if (u === "A" || u === "B") return u;
  throw new InputError(`unknown slot ${JSON.stringify(s)} (expected A, B, USR-A or USR-B)`, {
    where,
  });
}

function checkField(name: string, v: number, max: number, where: string): number {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new InputError(`${name} must be an integer 0–${max}, got ${v}`, { where });
  }
  return v;
}

export function validateSlotState(s: SlotState, where = "slot"): SlotState {
  return {
    priority: checkField("priority", s.priority, 15, where),
    tries: checkField("tries", s.tries, 15, where),
    successful: checkField("successful", s.successful, 1, where),
  };
}

/** Read the slot state from a grubenv; missing keys count as 0. */
export function bootStateFromEnv(env: GrubEnv, where = "grubenv"): BootState {
  const read = (key: string, max: number): number => {
    const raw = env.get(key);
    if (raw === undefined || raw === "") return 0;
    if (!/^\d+$/.test(raw))
      throw new InputError(`${key}=${JSON.stringify(raw)} is not a number`, { where });
    return checkField(key, Number(raw), max, where);
  };
  const state = {} as BootState;
  for (const slot of SLOTS) {
    const k = slotKeys(slot);
    state[slot] = {
      priority: read(k.priority, 15),
      tries: read(k.tries, 15),
      successful: read(k.successful, 1),
    };
  }
  return state;
}

/** Write the slot state into a grubenv, keeping every other variable. */
export function bootStateToEnv(state: BootState, env: GrubEnv = new Map()): GrubEnv {
  const out: GrubEnv = new Map(env);
  for (const slot of SLOTS) {
    const s = validateSlotState(state[slot], `slot ${slot}`);
    const k = slotKeys(slot);
    out.set(k.priority, String(s.priority));
    out.set(k.tries, String(s.tries));
    out.set(k.successful, String(s.successful));
  }
  return out;
}

function clone(state: BootState): BootState {
  return { A: { ...state.A }, B: { ...state.B } };
}

/** The booted slot proved itself: keep booting it without counting tries. */
export function markGood(state: BootState, slot: SlotName): BootState {
  const next = clone(state);
  next[slot] = { ...next[slot], successful: 1, tries: 0 };
  return next;
}

/** The slot must not be booted again until it is rewritten. */
export function markBad(state: BootState, slot: SlotName): BootState {
  const next = clone(state);
  next[slot] = { priority: 0, tries: 0, successful: 0 };
  return next;
}

/**
 * Make `slot` the one to try next: highest priority, `tries` attempts
 * (default 1), not yet successful. The other slot keeps its flags but drops
 * below, so it stays the fallback.
 */
export function setPrimary(
  state: BootState,
  slot: SlotName,
  opts: { tries?: number } = {},
): BootState {
  const tries = checkField("tries", opts.tries ?? 1, 15, `slot ${slot}`);
  if (tries === 0)
    throw new InputError("a new primary slot needs at least one try", { where: `slot ${slot}` });
  const next = clone(state);
  const other = otherSlot(slot);
  const otherPriority = Math.min(next[other].priority, 14);
  next[other] = { ...next[other], priority: otherPriority };
  next[slot] = { priority: otherPriority + 1, tries, successful: 0 };
  return next;
}

/** The slot GRUB would boot for this state, or undefined when none is bootable. */
export function selectBootSlot(state: BootState): SlotName | undefined {
  let best: SlotName | undefined;
  for (const slot of SLOTS) {
    const s = state[slot];
    const bootable = s.successful === 1 || s.tries > 0;
    if (!bootable || s.priority === 0) continue;
    if (best === undefined || s.priority > state[best].priority) best = slot;
  }
  return best;
}

/**
 * Model of one GRUB boot attempt: select a slot and, if it is still on
 * trial, consume one try (GRUB saves this before loading the kernel).
 */
export function simulateBootAttempt(state: BootState): {
  slot: SlotName | undefined;
  next: BootState;
} {
  const slot = selectBootSlot(state);
  const next = clone(state);
  if (slot !== undefined && next[slot].successful !== 1) next[slot].tries -= 1;
  return { slot, next };
}
