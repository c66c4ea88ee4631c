#!/usr/bin/env bash
# Resolves (once) and caches Apache ActiveMQ Classic for the ActiveMQ connector's tests: the
# broker (org.apache.activemq:activemq-broker), its STOMP transport (activemq-stomp), KahaDB
# persistence (activemq-kahadb-store) and a Log4j backend, with every runtime dependency, from
# Maven Central into
#   ${FJORD_CACHE:-$HOME/.cache/fjord}/activemq-<ACTIVEMQ_VERSION>/libs/*.jar
# and compiles the project's broker main and test tool (activemq/src/fjord/infra/*.java) against
# them into activemq-<ACTIVEMQ_VERSION>/fjord-tools-<hash of the source>/. A second run finds
# both in place and returns at once. Called by install.sh; can run on its own.
#
# Needs a JDK >= 17 (ActiveMQ 6 requires Java 17; javac for the main) and Maven; installs
# Debian's if missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

log() { printf '[install-activemq %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

home="$(fjord_activemq_home)"
tools="$(fjord_activemq_tools_dir "$here")"
if [[ -f "$home/libs/.complete" && -f "$tools/.complete" ]]; then
  log "activemq $ACTIVEMQ_VERSION: cached in $home"
  exit 0
fi

cache="$(fjord_cache)"
mkdir -p "$cache"
exec 8>"$cache/install-activemq.lock"
if ! flock -n 8; then
  log "another install-activemq.sh is running on $cache; waiting for it"
  flock 8
  if [[ -f "$home/libs/.complete" && -f "$tools/.complete" ]]; then
    log "activemq $ACTIVEMQ_VERSION: cached in $home"; exit 0
  fi
fi

java=$(fjord_jdk_with_maven)

t0=$SECONDS
if [[ ! -f "$home/libs/.complete" ]]; then
  log "activemq $ACTIVEMQ_VERSION: resolving activemq-broker + activemq-stomp + activemq-kahadb-store (Maven)"
  fjord_maven_libs "$here/activemq/pom.xml" "$home/libs" \
    -Dactivemq.version="$ACTIVEMQ_VERSION" -Dlog4j.version="$ACTIVEMQ_LOG4J_VERSION"
  for jar in "activemq-broker-$ACTIVEMQ_VERSION.jar" "activemq-stomp-$ACTIVEMQ_VERSION.jar" \
             "activemq-kahadb-store-$ACTIVEMQ_VERSION.jar" "activemq-client-$ACTIVEMQ_VERSION.jar" \
             "log4j-core-$ACTIVEMQ_LOG4J_VERSION.jar"; do
    [[ -f "$home/libs/$jar" ]] || { rm -rf "$home/libs"; fjord_die "install-activemq.sh: $jar was not resolved"; }
  done
  echo "$ACTIVEMQ_VERSION" >"$home/libs/VERSION"
  log "activemq $ACTIVEMQ_VERSION: $(ls "$home/libs" | grep -c '\.jar$') jars in $home/libs ($((SECONDS - t0)) s)"
fi

if [[ ! -f "$tools/.complete" ]]; then
  log "activemq $ACTIVEMQ_VERSION: compiling the broker main and test tool (activemq/src) into $tools"
  fjord_javac_dir "$java" "$here/activemq/src" "$home/libs/*" "$tools"
fi
log "activemq $ACTIVEMQ_VERSION: installed in $home ($((SECONDS - t0)) s)"
