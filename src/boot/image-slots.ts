/**
 * Slot operations on a disk image file (offline: tests, `slipway` tooling):
 * read and write the boot state (grubenv on the ESP + the GPT mirror) and
 * install a /usr image with its kernel and initrd into a slot. The update
 * agent does the same on a live disk through its mounted ESP.
 */

import { statSync } from "node:fs";
import { copyInto } from "../disk/assemble.ts";
import { readGpt } from "../disk/gpt.ts";
import { InputError } from "../errors.ts";
import { assertEspFits, fatSpace, mtoolsGet, mtoolsPut } from "./esp.ts";
import { ESP_GRUB_DIR, espSlotDir, type SlotBootOptions, slotConfig } from "./grubcfg.ts";
import { encodeGrubEnv, parseGrubEnv } from "./grubenv.ts";
import { mirrorBootStateToDisk } from "./slot-mirror.ts";
import {
  type BootState,
  bootStateFromEnv,
  bootStateToEnv,
  SLOT_LABEL,
  SLOT_PARTITION,
  type SlotName,
} from "./slots.ts";

const ESP_PARTITION = 1;

function partitionRange(
  disk: string,
  number: number,
  what: string,
): { offset: bigint; size: bigint; uniqueGuid: string } {
  const t = readGpt(disk);
  const p = t.partitions.find((x) => x.number === number);
  if (!p) throw new InputError(`no partition ${number} (${what})`, { where: disk });
  const ss = BigInt(t.sectorSize);
  return {
    offset: p.firstLba * ss,
    size: (p.lastLba - p.firstLba + 1n) * ss,
    uniqueGuid: p.uniqueGuid,
  };
}

/** mtools' name for the ESP inside a whole-disk image. */
export function espImageSpec(disk: string): string {
  return `${disk}@@${partitionRange(disk, ESP_PARTITION, "EFI-SYSTEM").offset}`;
}

export async function readGrubEnvFromDisk(disk: string): Promise<Map<string, string>> {
  return parseGrubEnv(
    await mtoolsGet(espImageSpec(disk), `${ESP_GRUB_DIR}/grubenv`),
    `${disk}:${ESP_GRUB_DIR}/grubenv`,
  );
}

export async function readBootStateFromDisk(disk: string): Promise<BootState> {
  return bootStateFromEnv(await readGrubEnvFromDisk(disk), `${disk}:${ESP_GRUB_DIR}/grubenv`);
}

/** Write the state into grubenv (keeping other variables) and mirror it into the GPT. */
export async function writeBootStateToDisk(disk: string, state: BootState): Promise<void> {
  const env = bootStateToEnv(state, await readGrubEnvFromDisk(disk));
  await mtoolsPut(espImageSpec(disk), [[`${ESP_GRUB_DIR}/grubenv`, encodeGrubEnv(env)]]);
  mirrorBootStateToDisk(disk, state);
}

export interface InstallSlotOptions {
  disk: string;
  slot: SlotName;
  usrImage: string;
  kernel: string;
  initrd: string;
  verity?: SlotBootOptions["verity"];
}

/**
 * Write a /usr image into the slot's partition and its kernel, initrd and
 * slot.cfg onto the ESP. The boot state is not changed (see setPrimary).
 */
export async function installSlotIntoDisk(opts: InstallSlotOptions): Promise<void> {
  const part = partitionRange(opts.disk, SLOT_PARTITION[opts.slot], SLOT_LABEL[opts.slot]);
  const esp = espImageSpec(opts.disk);
  // Checked first, as the agent does: a full ESP leaves the disk as it was.
  assertEspFits(
    `${SLOT_LABEL[opts.slot]}'s kernel and initrd`,
    [statSync(opts.kernel).size, statSync(opts.initrd).size],
    await fatSpace(esp),
    esp,
  );
  await copyInto(
    opts.usrImage,
    opts.disk,
    part.offset,
    part.size,
    `${SLOT_LABEL[opts.slot]} (${opts.usrImage})`,
  );
  const dir = espSlotDir(opts.slot);
  await mtoolsPut(
    esp,
    [
      [
        `${dir}/slot.cfg`,
        slotConfig({ partuuid: part.uniqueGuid, ...(opts.verity ? { verity: opts.verity } : {}) }),
      ],
    ],
    [
      [opts.kernel, `${dir}/vmlinuz`],
      [opts.initrd, `${dir}/initrd`],
    ],
  );
}
