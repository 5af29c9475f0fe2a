/**
 * The OEM partition (GPT label OEM, ext4, mounted at /oem on the host) and the per-boot unit
 * that writes the host's addresses to /etc/environment, CoreOS-style, so units can use
 * `EnvironmentFile=/etc/environment` and `${COREOS_PRIVATE_IPV4}`. Returned as data: the image
 * builder places the files.
 */

import type { Platform } from "./firstboot.ts";
import { firstbootKernelArgs } from "./firstboot.ts";
import type { PlacedFile } from "./placed.ts";

export interface OemOptions {
  platform: Platform;
  /** Image version for oem-release. */
  version?: string;
  /** Ignition JSON baked into the image; on first boot it replaces the platform's config. */
  config?: string;
}

/** Files for the root of the OEM partition. */
export function oemPartitionFiles(opts: OemOptions): PlacedFile[] {
  firstbootKernelArgs(opts.platform); // rejects unknown platforms
  const files: PlacedFile[] = [
    {
      path: "oem-release",
      mode: 0o644,
      contents: [
        `ID=${opts.platform}`,
        `VERSION_ID=${opts.version ?? "0"}`,
        `NAME="Slipway OEM (${opts.platform})"`,
        `IGNITION_PLATFORM=${opts.platform}`,
        "",
      ].join("\n"),
    },
  ];
  if (opts.config !== undefined)
    files.push({ path: "config.ign", mode: 0o600, contents: opts.config });
  return files;
}

export const ENVIRONMENT_UNIT = "slipway-environment.service";
export const ENVIRONMENT_SCRIPT = "usr/lib/slipway/write-environment";

/**
 * The unit and script for the image tree (/usr, so they are covered by the slot image), plus the
 * enablement symlink. Every boot, after the network is up, the script sets COREOS_PUBLIC_IPV4 and
 * COREOS_PRIVATE_IPV4 (and SLIPWAY_* twins) in /etc/environment, keeping the other lines. On qemu
 * and metal both are the first global IPv4 address of the first NIC that has one.
 */
export function environmentUnitFiles(): PlacedFile[] {
  const unit = [
    "[Unit]",
    "Description=Slipway: host addresses in /etc/environment",
    // Ordered after the network when something pulls it in, but never pulls it in itself.
    "After=network-online.target",
    "",
    "[Service]",
    // exec, not oneshot: multi-user.target must not wait for the script's 30 s address poll.
    "Type=exec",
    "RemainAfterExit=yes",
    `ExecStart=/${ENVIRONMENT_SCRIPT}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
  const script = [
    "#!/bin/sh",
    "# Write the host's IPv4 addresses into /etc/environment (other lines are kept).",
    "set -eu",
    "# The file is a parameter only so tests can run the script outside a host.",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell, not a template
    'env_file="${SLIPWAY_ENVIRONMENT_FILE:-/etc/environment}"',
    "addr=",
    "for i in $(seq 1 30); do",
    "    addr=$(ip -4 -o addr show scope global | awk '{split($4, a, \"/\"); print a[1]; exit}')",
    '    [ -n "$addr" ] && break',
    "    sleep 1",
    "done",
    'if [ -z "$addr" ]; then echo "no IPv4 address after 30 s; $env_file unchanged" >&2; exit 0; fi',
    'tmp=$(mktemp "$env_file.XXXXXX")',
    "{",
    "    grep -Ev '^(COREOS|SLIPWAY)_(PUBLIC|PRIVATE)_IPV4=' \"$env_file\" 2>/dev/null || true",
    '    echo "COREOS_PUBLIC_IPV4=$addr"',
    '    echo "COREOS_PRIVATE_IPV4=$addr"',
    '    echo "SLIPWAY_PUBLIC_IPV4=$addr"',
    '    echo "SLIPWAY_PRIVATE_IPV4=$addr"',
    '} > "$tmp"',
    'chmod 0644 "$tmp"',
    'mv "$tmp" "$env_file"',
    "",
  ].join("\n");
  return [
    { path: `usr/lib/systemd/system/${ENVIRONMENT_UNIT}`, mode: 0o644, contents: unit },
    { path: ENVIRONMENT_SCRIPT, mode: 0o755, contents: script },
    {
      // Enabled in /usr (a static wants link), so it runs without presets or Ignition.
      path: `usr/lib/systemd/system/multi-user.target.wants/${ENVIRONMENT_UNIT}`,
      mode: 0o777,
      contents: `../${ENVIRONMENT_UNIT}`,
      symlink: true,
    },
  ];
}
