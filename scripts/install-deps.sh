#!/usr/bin/env bash
# Install everything Slipway needs on a Debian 12 host: the Debian packages in
# .ci/apt-packages and the npm dependencies (including Node 24). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' .ci/apt-packages)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#pkgs[@]} Debian packages present"
fi

# Services we start ourselves in tests must not also run from their packages.
for svc in etcd postgresql; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund
fi
node_modules/.bin/node --version
