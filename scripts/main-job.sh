#!/usr/bin/env bash
# The main job, for now a GPT demo (to be replaced by "build and boot"):
# lay out the CoreOS partitions of DESIGN §4 on a scratch sparse image with
# `slipway gpt`, mark USR-A as the booted slot, show the table, and let
# sgdisk, sfdisk and cgpt check it.
set -euo pipefail
cd "$(dirname "$0")/.."
slipway=bin/slipway

work=$(mktemp -d "${TMPDIR:-/var/tmp}/slipway-main-job.XXXXXX")
trap 'rm -rf "$work"' EXIT
disk="$work/disk.img"

"$slipway" gpt create "$disk" --size 3GiB
# number  label       type             size (2 MiB aligned; ROOT takes the rest)
while read -r number label type size; do
  args=(-i "$number" -l "$label" -t "$type" --align 2MiB)
  [ "$size" = rest ] || args+=(-s "$size")
  "$slipway" gpt add "$disk" "${args[@]}"
done <<'LAYOUT'
1 EFI-SYSTEM efi             128MiB
2 BIOS-BOOT  bios            2MiB
3 USR-A      coreos-rootfs   1GiB
4 USR-B      coreos-rootfs   1GiB
6 OEM        linux-data      128MiB
7 OEM-CONFIG coreos-reserved 64MiB
9 ROOT       coreos-resize   rest
LAYOUT
"$slipway" gpt add "$disk" -i 3 --priority 1 --successful 1

"$slipway" gpt show "$disk"
slot=$(cgpt show -i 3 -P "$disk")/$(cgpt show -i 3 -T "$disk")/$(cgpt show -i 3 -S "$disk")
echo "USR-A priority/tries/successful per cgpt: $slot"
[ "$slot" = 1/0/1 ] || { echo "main-job: cgpt reads USR-A as $slot, expected 1/0/1" >&2; exit 1; }
verify=$(sgdisk -v "$disk" 2>&1)
echo "$verify"
grep -q 'No problems found' <<<"$verify" || { echo "main-job: sgdisk -v found problems" >&2; exit 1; }
sfdisk --verify "$disk"
echo "main-job: GPT demo OK"
