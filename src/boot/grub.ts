/**
 * GRUB images from the host's grub-efi-amd64-bin and grub-pc-bin: a
 * removable-path BOOTX64.EFI for UEFI and a core.img for BIOS. Both embed
 * every module the generated grub.cfg needs (nothing is loaded from the ESP)
 * and a tiny early config that finds the ESP by its FAT volume id, so the
 * boot disk need not be the first one.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InputError } from "../errors.ts";
import { ESP_GRUB_DIR } from "./grubcfg.ts";
import { runTool } from "./tool.ts";

export const GRUB_LIB_DIR = "/usr/lib/grub";

const COMMON_MODULES = [
  "part_gpt",
  "part_msdos",
  "fat",
  "ext2",
  "normal",
  "configfile",
  "loadenv",
  "test",
  "echo",
  "search",
  "search_fs_uuid",
  "linux",
  "serial",
  "terminal",
  "halt",
  "reboot",
  "sleep",
];
const EFI_MODULES = [...COMMON_MODULES, "efi_gop", "efi_uga", "all_video"];
const BIOS_MODULES = [...COMMON_MODULES, "biosdisk", "vga", "video_bochs"];

export interface GrubImages {
  /** x86_64-efi image for /EFI/BOOT/BOOTX64.EFI. */
  efi: Buffer;
  /** i386-pc core.img, unpatched (see patchCoreImg). */
  biosCore: Buffer;
  /** i386-pc boot.img for the MBR (see patchMbr). */
  biosBoot: Buffer;
}

/** FAT volume ids look like ABCD-1234 to GRUB's `search --fs-uuid`. */
export function fatVolumeIdToGrub(volumeId: number): string {
  const h = (volumeId >>> 0).toString(16).padStart(8, "0").toUpperCase();
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

export async function buildGrubImages(opts: {
  /** The ESP's FAT volume id (mkfs.fat -i). */
  espVolumeId: number;
  grubLibDir?: string;
}): Promise<GrubImages> {
  const lib = opts.grubLibDir ?? GRUB_LIB_DIR;
  const dir = await mkdtemp(join(tmpdir(), "slipway-grub-"));
  try {
    const early = join(dir, "early.cfg");
    await writeFile(
      early,
      [
        `search --no-floppy --fs-uuid --set=root ${fatVolumeIdToGrub(opts.espVolumeId)}`,
        `set prefix=(\${root})${ESP_GRUB_DIR}`,
        `configfile \${prefix}/grub.cfg`,
        "",
      ].join("\n"),
    );
    const mk = async (format: string, out: string, modules: string[]) => {
      await runTool(
        "grub-mkimage",
        [
          "-d",
          join(lib, format),
          "-O",
          format,
          "-o",
          out,
          "-c",
          early,
          "-p",
          ESP_GRUB_DIR,
          ...modules,
        ],
        { where: `grub ${format}` },
      );
      return await readFile(out);
    };
    const efi = await mk("x86_64-efi", join(dir, "BOOTX64.EFI"), EFI_MODULES);
    const biosCore = await mk("i386-pc", join(dir, "core.img"), BIOS_MODULES);
    const biosBoot = await readFile(join(lib, "i386-pc", "boot.img"));
    if (biosBoot.length !== 512) throw new InputError(`${lib}/i386-pc/boot.img is not 512 bytes`);
    return { efi, biosCore, biosBoot };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
