/**
 * The ChromeOS/CoreOS boot-slot fields in the GPT attribute word (cgpt's
 * layout): priority bits 48–51, tries 52–55, successful bit 56. Every other
 * bit is preserved untouched.
 */

import { InputError } from "../../errors.ts";

const PRIORITY_SHIFT = 48n;
const TRIES_SHIFT = 52n;
const SUCCESSFUL_SHIFT = 56n;
const NIBBLE = 0xfn;

export interface SlotAttributes {
  priority: number;
  tries: number;
  successful: number;
}

export function getSlotAttributes(attributes: bigint): SlotAttributes {
  return {
    priority: Number((attributes >> PRIORITY_SHIFT) & NIBBLE),
    tries: Number((attributes >> TRIES_SHIFT) & NIBBLE),
    successful: Number((attributes >> SUCCESSFUL_SHIFT) & 1n),
  };
}

/** Range problem with a slot value, or undefined when all given values fit. */
export function slotAttributeProblem(s: Partial<SlotAttributes>): string | undefined {
  for (const [name, max] of [
    ["priority", 15],
    ["tries", 15],
    ["successful", 1],
  ] as const) {
    const v = s[name];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > max)) {
      return `${name} ${v} is out of range (0–${max})`;
    }
  }
  return undefined;
}

export function setSlotAttributes(attributes: bigint, s: Partial<SlotAttributes>): bigint {
  const problem = slotAttributeProblem(s);
  if (problem) throw new InputError(problem);
  let a = BigInt.asUintN(64, attributes);
  const put = (shift: bigint, mask: bigint, v: number | undefined) => {
    if (v === undefined) return;
    a = (a & ~(mask << shift)) | (BigInt(v) << shift);
  };
  put(PRIORITY_SHIFT, NIBBLE, s.priority);
  put(TRIES_SHIFT, NIBBLE, s.tries);
  put(SUCCESSFUL_SHIFT, 1n, s.successful);
  return BigInt.asUintN(64, a);
}
