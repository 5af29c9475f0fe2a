/**
 * What the image's initrd needs for first-boot provisioning, as data the boot layer's dracut
 * call consumes: packages in the image, dracut modules, kernel drivers, and the files of our
 * own small dracut module that glues Debian's `30ignition` module into the Slipway layout.
 *
 * Facts behind it (Debian ignition 2.14.0+ds1, checked on the package; docs/provisioning.md):
 * - 30ignition depends on the dracut modules `qemu systemd url-lib network`; url-lib and network
 *   are in the `dracut-network` package, and url-lib refuses to load without `curl`.
 * - Its generator queues ignition-complete.target only when `ignition.firstboot` is on the
 *   kernel command line, and passes `ignition.platform.id` to every stage.
 * - Platform qemu reads /sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw after
 *   `modprobe qemu_fw_cfg`. Every stage takes its platform from /run/ignition.env, which the
 *   OEM hook below rewrites to platform "file" when the OEM partition carries a config.
 * - Debian builds Ignition with SELinux relabelling on: the files stage opens
 *   /sysroot/etc/selinux/config and runs `setfiles`, and fails without either. The images
 *   have no SELinux, so the module ships a no-op setfiles and a "disabled" config if none exists.
 */
import { FIRSTBOOT_STAMP } from "./firstboot.ts";
import type { PlacedFile } from "./placed.ts";

export interface InitrdProvisioning {
  /** Debian packages the image rootfs must contain. */
  packages: string[];
  /** Names for dracut `--modules` (dependencies such as network come along). */
  dracutModules: string[];
  /** Kernel modules to add to dracut `--drivers` (which is exclusive). */
  drivers: string[];
  /** Our dracut module, to be written into the image tree (placeFiles) before dracut runs. */
  files: PlacedFile[];
}

/** Name and directory of Slipway's glue module (runs next to 30ignition). */
export const GLUE_MODULE = "slipway-ignition";
export const GLUE_MODULE_DIR = `usr/lib/dracut/modules.d/31${GLUE_MODULE}`;
/** Debian's 30ignition minus its network dependencies, for configs that fetch nothing. */
export const OFFLINE_MODULE = "slipway-ignition-offline";
export const OFFLINE_MODULE_DIR = `usr/lib/dracut/modules.d/30${OFFLINE_MODULE}`;

/** GPT labels the initrd looks for (DESIGN §4). */
export const ESP_LABEL = "EFI-SYSTEM";
export const OEM_LABEL = "OEM";
/** Where the initrd keeps the OEM partition's config.ign for Ignition's "file" platform. */
export const OEM_CONFIG_COPY = "/run/slipway/oem-config.ign";

export interface InitrdProvisioningOptions {
  /**
   * Networking in the initrd (default true): needed when a config fetches remote resources
   * (`source: https://…`, `ignition.config.url=`). Without it, the initrd is ~25 MB smaller
   * (measured: 36 MB → about 11 MB + Ignition) and configs come from fw_cfg or the OEM partition.
   */
  network?: boolean;
}

export function initrdProvisioning(opts: InitrdProvisioningOptions = {}): InitrdProvisioning {
  const network = opts.network ?? true;
  return {
    packages: network ? ["ignition", "dracut-network", "curl", "ca-certificates"] : ["ignition"],
    // 40network would pick network-legacy (dhclient) unless systemd-networkd is named.
    dracutModules: network
      ? ["systemd-networkd", "ignition", GLUE_MODULE]
      : [OFFLINE_MODULE, GLUE_MODULE],
    // fw_cfg for platform qemu; vfat + code pages to remove the stamp from the ESP.
    drivers: [
      "qemu_fw_cfg",
      "vfat",
      "nls_cp437",
      "nls_ascii",
      "nls_utf8",
      ...(network ? ["virtio_net"] : []),
    ],
    files: [...glueModuleFiles(), ...offlineModuleFiles()],
  };
}

function offlineModuleFiles(): PlacedFile[] {
  return [
    {
      path: `${OFFLINE_MODULE_DIR}/module-setup.sh`,
      mode: 0o755,
      contents: `${[
        "#!/bin/bash",
        "# Debian's 30ignition without url-lib/network: for configs from QEMU fw_cfg or the OEM",
        "# partition. A config that needs the network fails at first boot with this module.",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shell, not a template
        'ignition_dir="${dracutbasedir:-/usr/lib/dracut}/modules.d/30ignition"',
        '. "$ignition_dir/module-setup.sh"',
        'eval "stock_$(declare -f install)"',
        'check() { [ -x "$ignition_dir/ignition" ] || return 1; return 255; }',
        "depends() { echo qemu systemd; }",
        'install() { local moddir="$ignition_dir"; stock_install; }',
      ].join("\n")}\n`,
    },
  ];
}

/** `/dev/disk/by-partlabel/X` as a systemd device unit name (systemd-escape --path). */
export function partlabelDeviceUnit(label: string): string {
  const escaped = `dev/disk/by-partlabel/${label}`
    .split("/")
    .map((part) => part.replace(/[^A-Za-z0-9:_.]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`))
    .join("-");
  return `${escaped}.device`;
}

function glueModuleFiles(): PlacedFile[] {
  const dir = GLUE_MODULE_DIR;
  const esp = partlabelDeviceUnit(ESP_LABEL);
  const oem = partlabelDeviceUnit(OEM_LABEL);
  const unit = (lines: string[]) => `${lines.join("\n")}\n`;
  return [
    {
      path: `${dir}/module-setup.sh`,
      mode: 0o755,
      contents: unit([
        "#!/bin/bash",
        "# Slipway glue next to (slipway-)ignition: OEM config, SELinux stubs, first-boot stamp removal.",
        "check() { return 255; }",
        "depends() { echo systemd; }",
        "installkernel() { hostonly='' instmods qemu_fw_cfg vfat nls_cp437 nls_ascii nls_utf8; }",
        "install() {",
        "    inst_multiple mount umount mkdir cp rm sync",
        '    inst_script "$moddir/slipway-oem-config.sh" /usr/sbin/slipway-oem-config',
        '    inst_script "$moddir/slipway-selinux-config.sh" /usr/sbin/slipway-selinux-config',
        '    inst_script "$moddir/slipway-firstboot-done.sh" /usr/sbin/slipway-firstboot-done',
        "    # No SELinux policy in the image, but Debian's Ignition runs setfiles after writing files.",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shell, not a template
        '    if [ ! -x "${dracutsysrootdir:-}/usr/sbin/setfiles" ]; then',
        '        inst_script "$moddir/setfiles-noop.sh" /usr/sbin/setfiles',
        "    fi",
        "    local u",
        "    for u in slipway-oem-config slipway-selinux-config slipway-firstboot-done; do",
        '        inst_simple "$moddir/$u.service" "$systemdsystemunitdir/$u.service"',
        '        mkdir -p "$initdir/$systemdsystemunitdir/ignition-complete.target.requires"',
        '        ln_r "$systemdsystemunitdir/$u.service" \\',
        '            "$systemdsystemunitdir/ignition-complete.target.requires/$u.service"',
        "    done",
        "    # A failed first boot must show Ignition's reason on the console: error-level journal",
        "    # lines go there, and the files stage (which logs to stdout at info) is raised to err.",
        '    mkdir -p "$initdir/etc/systemd/journald.conf.d" \\',
        '        "$initdir/$systemdsystemunitdir/ignition-files.service.d"',
        "    printf '[Journal]\\nForwardToConsole=yes\\nMaxLevelConsole=err\\n' \\",
        '        > "$initdir/etc/systemd/journald.conf.d/50-slipway-console.conf"',
        "    printf '[Service]\\nSyslogLevel=err\\n' \\",
        '        > "$initdir/$systemdsystemunitdir/ignition-files.service.d/50-slipway-console.conf"',
        "}",
      ]),
    },
    {
      path: `${dir}/setfiles-noop.sh`,
      mode: 0o755,
      contents: unit([
        "#!/bin/sh",
        "# Slipway images carry no SELinux policy: accept Ignition's relabel request, label nothing.",
        "cat >/dev/null",
        "exit 0",
      ]),
    },
    {
      path: `${dir}/slipway-oem-config.service`,
      mode: 0o644,
      contents: unit([
        "[Unit]",
        "Description=Slipway: Ignition config from the OEM partition",
        "DefaultDependencies=no",
        "ConditionPathExists=/etc/initrd-release",
        "Before=ignition-fetch-offline.service ignition-complete.target",
        `Requires=${oem}`,
        `After=${oem}`,
        "OnFailure=emergency.target",
        "OnFailureJobMode=isolate",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=/usr/sbin/slipway-oem-config",
      ]),
    },
    {
      path: `${dir}/slipway-oem-config.sh`,
      mode: 0o755,
      contents: unit([
        "#!/bin/sh",
        "# A config.ign on the OEM partition replaces the platform's config. /usr is read-only in",
        "# the initrd, so instead of /usr/lib/ignition/user.ign the Ignition stages are pointed at",
        '# a copy in /run through /run/ignition.env (their EnvironmentFile): platform "file".',
        "set -eu",
        "mnt=/run/slipway/oem",
        'mkdir -p "$mnt"',
        `if ! mount -o ro /dev/disk/by-partlabel/${OEM_LABEL} "$mnt"; then`,
        '    echo "slipway-oem-config: OEM partition not mountable; using the platform config"',
        "    exit 0",
        "fi",
        'if [ -f "$mnt/config.ign" ]; then',
        `    cp "$mnt/config.ign" ${OEM_CONFIG_COPY}`,
        `    printf 'PLATFORM_ID=file\\nIGNITION_CONFIG_FILE=${OEM_CONFIG_COPY}\\n' > /run/ignition.env`,
        '    echo "slipway-oem-config: using config.ign from the OEM partition"',
        "fi",
        'umount "$mnt"',
      ]),
    },
    {
      path: `${dir}/slipway-selinux-config.service`,
      mode: 0o644,
      contents: unit([
        "[Unit]",
        "Description=Slipway: let Ignition's SELinux relabel step pass on an image without SELinux",
        "DefaultDependencies=no",
        "ConditionPathExists=/etc/initrd-release",
        "ConditionPathExists=!/sysroot/etc/selinux/config",
        "After=ignition-mount.service ignition-remount-sysroot.service",
        "Before=ignition-files.service",
        "OnFailure=emergency.target",
        "OnFailureJobMode=isolate",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=/usr/sbin/slipway-selinux-config",
      ]),
    },
    {
      path: `${dir}/slipway-selinux-config.sh`,
      mode: 0o755,
      contents: unit([
        "#!/bin/sh",
        "set -eu",
        "mkdir -p /sysroot/etc/selinux",
        "printf 'SELINUX=disabled\\nSELINUXTYPE=default\\n' > /sysroot/etc/selinux/config",
      ]),
    },
    {
      path: `${dir}/slipway-firstboot-done.service`,
      mode: 0o644,
      contents: unit([
        "[Unit]",
        "Description=Slipway: first-boot provisioning done, remove the ESP stamp",
        "DefaultDependencies=no",
        "ConditionPathExists=/etc/initrd-release",
        "After=ignition-files.service",
        "Requires=ignition-files.service",
        "Before=ignition-complete.target",
        `Requires=${esp}`,
        `After=${esp}`,
        "OnFailure=emergency.target",
        "OnFailureJobMode=isolate",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=/usr/sbin/slipway-firstboot-done",
      ]),
    },
    {
      path: `${dir}/slipway-firstboot-done.sh`,
      mode: 0o755,
      contents: unit([
        "#!/bin/sh",
        "# Ignition succeeded: drop the stamp so GRUB stops adding ignition.firstboot.",
        "set -eu",
        "mnt=/run/slipway/esp",
        'mkdir -p "$mnt"',
        `mount -t vfat -o rw,nosuid,nodev,noexec /dev/disk/by-partlabel/${ESP_LABEL} "$mnt"`,
        `rm -f "$mnt${FIRSTBOOT_STAMP}"`,
        "sync",
        'umount "$mnt"',
      ]),
    },
  ];
}
