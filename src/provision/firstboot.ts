/**
 * The first-boot stamp, as data for the boot layer. Like Fedora CoreOS's /boot/ignition.firstboot:
 * while the stamp exists on the ESP, GRUB adds the Ignition kernel arguments; the initrd deletes
 * it once Ignition's files stage has succeeded (see initrd.ts), so later boots skip Ignition.
 *
 * The stamp is a GRUB script fragment (GRUB sources it, as it sources slot.cfg), so it can carry
 * the platform id: one image, a different stamp per platform.
 */
import { InputError } from "../errors.ts";

/** ESP-relative path of the stamp (GRUB's $root is the ESP). */
export const FIRSTBOOT_STAMP = "/slipway/firstboot.cfg";

/** The GRUB variable the stamp sets; empty when there is no stamp. */
export const FIRSTBOOT_GRUB_VAR = "slipway_firstboot_args";

/** What to put on every `linux` line of grub.cfg (expands to nothing after first boot). */
export const FIRSTBOOT_LINUX_ARG = `\${${FIRSTBOOT_GRUB_VAR}}`;

/** Ignition platform ids that make sense for Slipway images (Ignition 2.14 knows more). */
export const PLATFORMS = ["qemu", "metal", "file"] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Kernel arguments Ignition needs on first boot (read by its dracut generator). */
export function firstbootKernelArgs(platform: Platform = "qemu"): string[] {
  if (!(PLATFORMS as readonly string[]).includes(platform)) {
    throw new InputError(
      `unknown platform ${JSON.stringify(platform)} (use ${PLATFORMS.join(", ")})`,
      {
        where: "platform",
      },
    );
  }
  return ["ignition.firstboot", `ignition.platform.id=${platform}`];
}

/** Contents of the stamp file the image builder writes to the ESP at FIRSTBOOT_STAMP. */
export function firstbootStamp(platform: Platform = "qemu"): string {
  return [
    "# Present until first-boot provisioning (Ignition) succeeds; the initrd then deletes it.",
    `set ${FIRSTBOOT_GRUB_VAR}="${firstbootKernelArgs(platform).join(" ")}"`,
    "",
  ].join("\n");
}

/**
 * The stamp an image builder writes when the kernel command line already names the platform
 * (`ignition.platform.id=<oem id>` on every boot, as Fedora CoreOS does): first boot only.
 */
export function firstbootOnlyStamp(): string {
  return [
    "# Present until first-boot provisioning (Ignition) succeeds; the initrd then deletes it.",
    `set ${FIRSTBOOT_GRUB_VAR}="ignition.firstboot"`,
    "",
  ].join("\n");
}

/**
 * grub.cfg lines, before the menu entries: default to no args, take the stamp's if present.
 * Menu entries run in a new GRUB context that sees only exported variables.
 */
export function firstbootGrubLines(): string[] {
  return [
    `set ${FIRSTBOOT_GRUB_VAR}=""`,
    `if [ -f ${FIRSTBOOT_STAMP} ]; then source ${FIRSTBOOT_STAMP}; fi`,
    `export ${FIRSTBOOT_GRUB_VAR}`,
  ];
}

/** fw_cfg key Ignition's qemu platform reads the config from. */
export const QEMU_FW_CFG_KEY = "opt/com.coreos/config";

/** QEMU arguments that hand an Ignition config file to the guest (commas doubled, QEMU-style). */
export function qemuIgnitionArgs(configFile: string): string[] {
  return ["-fw_cfg", `name=${QEMU_FW_CFG_KEY},file=${configFile.replaceAll(",", ",,")}`];
}
