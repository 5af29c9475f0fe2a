#!/usr/bin/env bash
# The main job: create a work dir from the example config, build the image,
# boot it under QEMU and show that it reached multi-user.target.
#   SLIPWAY_WORK   work dir (default /var/tmp/slipway-example; kept, so a rerun is incremental)
#   BOOT_TIMEOUT   seconds to wait for multi-user (default 900: TCG on a busy host is slow)
set -euo pipefail
cd "$(dirname "$0")/.."
slipway=$PWD/bin/slipway
work=${SLIPWAY_WORK:-/var/tmp/slipway-example}
timeout=${BOOT_TIMEOUT:-900}

if [ ! -f "$work/slipway.yaml" ]; then
  "$slipway" init "$work"
fi
(cd "$work" && "$slipway" build)
"$slipway" gpt show "$work/builds/latest/disk.raw"

log="$work/console.log"
: >"$log"
echo "main-job: booting $(readlink -f "$work/builds/latest") under QEMU (console: $log)"
"$slipway" run --builds-dir "$work/builds" --console-log "$log" &
vm=$!
trap 'kill -TERM "$vm" 2>/dev/null || true; wait "$vm" 2>/dev/null || true' EXIT

start=$SECONDS
until grep -q "slipway-example: reached multi-user.target" "$log"; do
  if ! kill -0 "$vm" 2>/dev/null; then
    echo "main-job: QEMU exited before multi-user.target; console tail:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  if ((SECONDS - start > timeout)); then
    echo "main-job: no multi-user.target after ${timeout}s; console tail:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  sleep 2
done
grep -m1 -a "slipway-example: reached multi-user.target" "$log"
echo "main-job: the image booted to multi-user.target in $((SECONDS - start)) s"
