/**
 * Files the image tree needs so what Ignition writes takes effect on the running host.
 * Returned as data; the image builder places them (placeFiles) before the /usr and ROOT images
 * are made.
 */
import { environmentUnitFiles } from "./oem.ts";
import type { PlacedFile } from "./placed.ts";

/**
 * Ignition puts SSH keys in ~/.ssh/authorized_keys.d/ignition, which stock sshd does not read.
 * Debian's sshd_config includes sshd_config.d/*.conf first, and the first value wins.
 */
export const SSHD_DROP_IN: PlacedFile = {
  path: "etc/ssh/sshd_config.d/50-slipway-ignition.conf",
  mode: 0o644,
  contents: [
    "# Keys written by Ignition on first boot (and the usual file).",
    "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/ignition",
    "",
  ].join("\n"),
};

/** Everything for the image tree: the /etc/environment writer and the sshd drop-in. */
export function provisioningImageFiles(): PlacedFile[] {
  return [...environmentUnitFiles(), SSHD_DROP_IN];
}
