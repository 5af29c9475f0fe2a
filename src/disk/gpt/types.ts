/** Partition type GUIDs Slipway knows by name (DESIGN §4 plus the usual ones). */
import { InputError } from "../../errors.ts";
import { isGuid } from "./guid.ts";

export const PARTITION_TYPES: Readonly<Record<string, string>> = Object.freeze({
  efi: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
  bios: "21686148-6449-6e6f-744e-656564454649",
  "linux-data": "0fc63daf-8483-4772-8e79-3d69d8477de4",
  "coreos-rootfs": "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6",
  "coreos-resize": "3884dd41-8582-4404-b9a8-e9b84f2df50e",
  "coreos-reserved": "c95dc21a-df0e-4340-8d7b-26cbfa9a03e0",
  "chromeos-kernel": "fe3a2a5d-4f32-41a7-b725-accc3285a309",
});

const ALIAS_BY_GUID = new Map(Object.entries(PARTITION_TYPES).map(([a, g]) => [g, a]));

/** An alias or a GUID → the lowercase type GUID. Throws InputError for anything else. */
export function resolvePartitionType(aliasOrGuid: string): string {
  const key = aliasOrGuid.trim().toLowerCase();
  const byAlias = PARTITION_TYPES[key];
  if (byAlias) return byAlias;
  if (isGuid(key)) return key;
  throw new InputError(
    `unknown partition type "${aliasOrGuid}" (use a GUID or one of: ${Object.keys(PARTITION_TYPES).join(", ")})`,
  );
}

export function partitionTypeAlias(guid: string): string | undefined {
  return ALIAS_BY_GUID.get(guid.toLowerCase());
}
