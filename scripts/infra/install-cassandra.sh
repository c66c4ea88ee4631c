#!/usr/bin/env bash
# Resolves (once) and caches Apache Cassandra for the Cassandra connector's tests: the server
# (org.apache.cassandra:cassandra-all) with every runtime dependency, from Maven Central into
#   ${FJORD_CACHE:-$HOME/.cache/fjord}/cassandra-<CASSANDRA_VERSION>/libs/*.jar
# Maven Central carries only the jar (no conf/, no bin/); cassandra.sh writes the server's
# configuration and JVM options itself. A second run finds the jars in place and returns at once.
# Called by install.sh; can run on its own.
#
# Needs a JDK >= 17 and Maven, and a Java 17 to run Cassandra; installs Debian's if missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

log() { printf '[install-cassandra %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

home="$(fjord_cassandra_home)"
if [[ -f "$home/libs/.complete" ]]; then
  log "cassandra $CASSANDRA_VERSION: cached in $home"
  exit 0
fi

cache="$(fjord_cache)"
mkdir -p "$cache"
exec 8>"$cache/install-cassandra.lock"
if ! flock -n 8; then
  log "another install-cassandra.sh is running on $cache; waiting for it"
  flock 8
  if [[ -f "$home/libs/.complete" ]]; then
    log "cassandra $CASSANDRA_VERSION: cached in $home"; exit 0
  fi
fi

fjord_jdk_with_maven >/dev/null
# Cassandra 5.0 runs on Java 11 or 17, not on a newer one alone: make sure a 17 is there for
# cassandra.sh (Maven may run on any JDK >= 17).
if ! ls /usr/lib/jvm/*17*/bin/java >/dev/null 2>&1; then
  fjord_apt_install openjdk-17-jre-headless
fi

t0=$SECONDS
log "cassandra $CASSANDRA_VERSION: resolving cassandra-all (Maven)"
fjord_maven_libs "$here/cassandra/pom.xml" "$home/libs" -Dcassandra.version="$CASSANDRA_VERSION"
for jar in "cassandra-all-$CASSANDRA_VERSION.jar"; do
  [[ -f "$home/libs/$jar" ]] || { rm -rf "$home/libs"; fjord_die "install-cassandra.sh: $jar was not resolved"; }
done
echo "$CASSANDRA_VERSION" >"$home/libs/VERSION"
log "cassandra $CASSANDRA_VERSION: $(ls "$home/libs" | grep -c '\.jar$') jars in $home/libs ($((SECONDS - t0)) s)"
