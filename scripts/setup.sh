#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install everything, then run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
ln -sf "$PWD/bin/slipway" /usr/local/bin/slipway
bash scripts/main-job.sh
