#!/usr/bin/env bash
# Installs the npm packages of the dashboard's tests (dashboard/package-lock.json: Playwright's
# playwright-core, which drives Debian's Chromium, and the TypeScript checker) into
# dashboard/node_modules, with npm's download cache under $FJORD_CACHE/npm. Nothing here is
# built into the fjord binary: the dashboard's files are served as they are checked in.
# Idempotent: when node_modules matches the lockfile (a stamp of its hash), it only checks
# and returns.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${FJORD_CACHE:-$HOME/.cache/fjord}"
dir="$root/dashboard"
log() { printf '[node-deps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v npm >/dev/null 2>&1; then
  log "npm not found: run scripts/install-deps.sh (it installs Debian's nodejs and npm)"
  exit 1
fi
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
stamp="$dir/node_modules/.fjord-lock-sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  log "dashboard npm packages present"
  exit 0
fi
mkdir -p "$cache/npm"
log "installing dashboard npm packages (npm ci, cache $cache/npm)"
# --ignore-scripts: the packages need no install scripts (and must not download a browser).
(cd "$dir" && npm ci --cache "$cache/npm" --prefer-offline --no-audit --no-fund --ignore-scripts)
printf '%s\n' "$want" >"$stamp"
log "dashboard npm packages installed"
