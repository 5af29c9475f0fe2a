/**
 * Mirror the grubenv slot state into the GPT attribute bits of USR-A/USR-B
 * (cgpt's layout), so `cgpt show` and `slipway gpt show` tell the truth.
 * grubenv stays the boot-time truth; this is a copy.
 */
import {
  type GptTable,
  getSlotAttributes,
  readGpt,
  setSlotAttributes,
  writeGpt,
} from "../disk/gpt.ts";
import { InputError } from "../errors.ts";
import { type BootState, SLOT_LABEL, SLOT_PARTITION, SLOTS } from "./slots.ts";

/** A copy of `table` whose USR-A/USR-B attributes carry `state`. */
export function mirrorBootStateToTable(table: GptTable, state: BootState): GptTable {
  const partitions = table.partitions.map((p) => ({ ...p }));
  for (const slot of SLOTS) {
    const p = partitions.find((x) => x.number === SLOT_PARTITION[slot]);
    if (!p)
      throw new InputError(`GPT has no partition ${SLOT_PARTITION[slot]} (${SLOT_LABEL[slot]})`);
    p.attributes = setSlotAttributes(p.attributes, state[slot]);
  }
  return { ...table, partitions };
}

/** Read the mirrored state back from a table (for reconciling with grubenv). */
export function bootStateFromTable(table: GptTable): BootState {
  const state = {} as BootState;
  for (const slot of SLOTS) {
    const p = table.partitions.find((x) => x.number === SLOT_PARTITION[slot]);
    if (!p)
      throw new InputError(`GPT has no partition ${SLOT_PARTITION[slot]} (${SLOT_LABEL[slot]})`);
    state[slot] = getSlotAttributes(p.attributes);
  }
  return state;
}

/** Rewrite the GPT of a disk (image or device) so its slot attributes equal `state`. */
export function mirrorBootStateToDisk(disk: string, state: BootState): void {
  writeGpt(disk, mirrorBootStateToTable(readGpt(disk), state));
}
