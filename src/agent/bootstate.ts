/**
 * The boot-slot state on the host: the grubenv on the ESP is the truth GRUB
 * acts on; the GPT attribute bits of USR-A/USR-B mirror it so `cgpt show`
 * tells the same story. Writes go grubenv first, mirror second.
 */
import { readFileSync } from "node:fs";
import { ESP_GRUB_DIR } from "../boot/grubcfg.ts";
import { encodeGrubEnv, type GrubEnv, parseGrubEnv } from "../boot/grubenv.ts";
import {
  type BootState,
  bootStateFromEnv,
  bootStateToEnv,
  parseSlotName,
  SLOT_LABEL,
  SLOTS,
  type SlotName,
} from "../boot/slots.ts";
import { getSlotAttributes, readGpt, setSlotAttributes, writeGpt } from "../disk/gpt.ts";
import { SlipwayError } from "../errors.ts";
import type { EspStore } from "./esp.ts";

export const GRUBENV_PATH = `${ESP_GRUB_DIR}/grubenv`;

export interface BootStateStore {
  read(): Promise<{ env: GrubEnv; state: BootState }>;
  write(state: BootState): Promise<void>;
  /** The GPT mirror's view, or undefined without a disk. */
  readMirror(): BootState | undefined;
}

export function bootStateStore(esp: EspStore, disk: string | undefined): BootStateStore {
  const where = `${esp.describe}:${GRUBENV_PATH}`;
  const read = async () => {
    const bytes = await esp.read(GRUBENV_PATH);
    if (bytes === undefined) throw new SlipwayError("grubenv is missing", { where });
    const env = parseGrubEnv(bytes, where);
    return { env, state: bootStateFromEnv(env, where) };
  };
  return {
    read,
    async write(state) {
      const { env } = await read();
      await esp.overwrite(GRUBENV_PATH, encodeGrubEnv(bootStateToEnv(state, env)));
      if (disk !== undefined) writeMirror(disk, state);
    },
    readMirror() {
      if (disk === undefined) return undefined;
      const table = readGpt(disk, { onWarning: () => {} });
      const out = {} as BootState;
      for (const slot of SLOTS) {
        const p = table.partitions.find((x) => x.label === SLOT_LABEL[slot]);
        if (!p) throw new SlipwayError(`no ${SLOT_LABEL[slot]} partition`, { where: disk });
        out[slot] = getSlotAttributes(p.attributes);
      }
      return out;
    },
  };
}

function writeMirror(disk: string, state: BootState): void {
  const table = readGpt(disk, { onWarning: () => {} });
  for (const slot of SLOTS) {
    const p = table.partitions.find((x) => x.label === SLOT_LABEL[slot]);
    if (!p) throw new SlipwayError(`no ${SLOT_LABEL[slot]} partition`, { where: disk });
    p.attributes = setSlotAttributes(p.attributes, state[slot]);
  }
  writeGpt(disk, table);
}

/** The slot GRUB booted, from `slipway.slot=X` on the kernel command line. */
export function bootedSlot(cmdlinePath: string): SlotName {
  let cmdline: string;
  try {
    cmdline = readFileSync(cmdlinePath, "utf8");
  } catch (err) {
    throw new SlipwayError(`cannot read the kernel command line: ${(err as Error).message}`, {
      where: cmdlinePath,
    });
  }
  const m = /(?:^|\s)slipway\.slot=(\S+)/.exec(cmdline);
  if (!m)
    throw new SlipwayError("no slipway.slot= on the kernel command line", { where: cmdlinePath });
  return parseSlotName(m[1]!, cmdlinePath);
}

/** VERSION_ID (or VERSION) of an os-release file. */
export function readOsVersion(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new SlipwayError(`cannot read os-release: ${(err as Error).message}`, { where: path });
  }
  const get = (k: string) => {
    const m = new RegExp(`^${k}=(?:"([^"]*)"|'([^']*)'|(\\S*))`, "m").exec(text);
    return m ? (m[1] ?? m[2] ?? m[3]) : undefined;
  };
  const v = get("VERSION_ID") ?? get("VERSION");
  if (!v) throw new SlipwayError("no VERSION_ID in os-release", { where: path });
  return v;
}
