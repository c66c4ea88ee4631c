#!/usr/bin/env bash
# Resolves (once) and caches Apache Hadoop's HDFS mini-cluster for the HDFS tests:
# hadoop-client-minicluster (NameNode and DataNodes in one JVM) with hadoop-client-api and
# hadoop-client-runtime, from Maven Central into
#   ${FJORD_CACHE:-$HOME/.cache/fjord}/hadoop-<HADOOP_VERSION>/libs/*.jar
# and compiles the project's main (hadoop/src/fjord/infra/MiniHdfs.java) against them into
# hadoop-<HADOOP_VERSION>/fjord-tools-<hash of the source>/. A second run finds both in place
# and returns at once. Called by install.sh; can run on its own.
#
# Needs a JDK >= 17 and Maven; installs Debian's if missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

log() { printf '[install-hadoop %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

home="$(fjord_hadoop_home)"
tools="$(fjord_hadoop_tools_dir "$here")"
if [[ -f "$home/libs/.complete" && -f "$tools/.complete" ]]; then
  log "hadoop $HADOOP_VERSION: cached in $home"
  exit 0
fi

cache="$(fjord_cache)"
mkdir -p "$cache"
exec 8>"$cache/install-hadoop.lock"
if ! flock -n 8; then
  log "another install-hadoop.sh is running on $cache; waiting for it"
  flock 8
  if [[ -f "$home/libs/.complete" && -f "$tools/.complete" ]]; then
    log "hadoop $HADOOP_VERSION: cached in $home"; exit 0
  fi
fi

java=$(fjord_jdk_with_maven)

t0=$SECONDS
if [[ ! -f "$home/libs/.complete" ]]; then
  log "hadoop $HADOOP_VERSION: resolving hadoop-client-minicluster + hadoop-client-runtime (Maven)"
  fjord_maven_libs "$here/hadoop/pom.xml" "$home/libs" -Dhadoop.version="$HADOOP_VERSION"
  for jar in "hadoop-client-minicluster-$HADOOP_VERSION.jar" "hadoop-client-api-$HADOOP_VERSION.jar" \
             "hadoop-client-runtime-$HADOOP_VERSION.jar"; do
    [[ -f "$home/libs/$jar" ]] || { rm -rf "$home/libs"; fjord_die "install-hadoop.sh: $jar was not resolved"; }
  done
  echo "$HADOOP_VERSION" >"$home/libs/VERSION"
  log "hadoop $HADOOP_VERSION: $(ls "$home/libs" | grep -c '\.jar$') jars in $home/libs ($((SECONDS - t0)) s)"
fi

if [[ ! -f "$tools/.complete" ]]; then
  log "hadoop $HADOOP_VERSION: compiling the mini-cluster main (hadoop/src) into $tools"
  fjord_javac_dir "$java" "$here/hadoop/src" "$home/libs/*" "$tools"
fi
log "hadoop $HADOOP_VERSION: installed in $home ($((SECONDS - t0)) s)"
