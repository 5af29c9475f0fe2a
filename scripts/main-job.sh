#!/usr/bin/env bash
# The main job. Placeholder until the GPT demo and then the image builder land.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/slipway --help
