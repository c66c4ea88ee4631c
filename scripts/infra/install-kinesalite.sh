#!/usr/bin/env bash
# Installs (once) and caches kinesalite, an implementation of the Amazon Kinesis Data Streams API
# on LevelDB, for the Kinesis connector's tests: `npm install kinesalite@<KINESALITE_VERSION>`
# from the npm registry into
#   ${FJORD_CACHE:-$HOME/.cache/fjord}/kinesalite-<KINESALITE_VERSION>/node_modules
# then checks that it loads, LevelDB store included. A second run finds it in place and returns
# at once. Called by install.sh; can run on its own. Needs Node.js >= 18 and npm
# (scripts/install-deps.sh installs Debian's).
#
# kinesalite's LevelDB store is leveldown, a native module. Its package ships prebuilt binaries
# (prebuilds/linux-x64/...), which node-gyp-build picks at run time, so npm's install scripts are
# not needed (npm >= 11 does not run them unless allowed) and no compiler is involved.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

log() { printf '[install-kinesalite %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

home="$(fjord_kinesalite_home)"
if [[ -f "$home/.complete" ]]; then
  log "kinesalite $KINESALITE_VERSION: cached in $home"
  exit 0
fi
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
  fjord_die "install-kinesalite.sh: node and npm are required; run scripts/install-deps.sh (or apt-get install nodejs npm)"

cache="$(fjord_cache)"
mkdir -p "$cache"
exec 8>"$cache/install-kinesalite.lock"
if ! flock -n 8; then
  log "another install-kinesalite.sh is running on $cache; waiting for it"
  flock 8
  [[ -f "$home/.complete" ]] && { log "kinesalite $KINESALITE_VERSION: cached in $home"; exit 0; }
fi

t0=$SECONDS
log "kinesalite $KINESALITE_VERSION: npm install into $home"
rm -rf "$home"
mkdir -p "$home"
echo '{"name":"fjord-kinesalite","private":true}' >"$home/package.json"
(cd "$home" && npm install --no-audit --no-fund --no-save --ignore-scripts "kinesalite@$KINESALITE_VERSION" >&2)
[[ -f "$home/node_modules/kinesalite/index.js" ]] || fjord_die "install-kinesalite.sh: kinesalite was not installed in $home"
# leveldown must load (its prebuilt binary for this platform): a store that cannot open would
# only show when the first test starts the server.
(cd "$home" && node -e "require('leveldown'); require('kinesalite')") ||
  fjord_die "install-kinesalite.sh: kinesalite or its LevelDB module (leveldown) does not load on $(node --version) $(uname -m); see the error above"
echo "$KINESALITE_VERSION" >"$home/VERSION"
touch "$home/.complete"
log "kinesalite $KINESALITE_VERSION: installed in $home ($((SECONDS - t0)) s)"
