#!/usr/bin/env bash
# Resolves (once) and caches Apache Kafka for the Kafka connector's tests and benchmarks: the
# broker (org.apache.kafka:kafka_2.13, run in KRaft mode by kafka.sh) and Kafka's own tools
# (org.apache.kafka:kafka-tools: console producer/consumer, topics, perf tests), with every
# runtime dependency, from Maven Central into
#   ${FJORD_CACHE:-$HOME/.cache/fjord}/kafka-<KAFKA_VERSION>/libs/*.jar
# and compiles the project's own small test tools kafka/src/fjord/infra/*.java against them
# into kafka-<KAFKA_VERSION>/fjord-tools-<hash of the source>/. A second run finds both in place
# and returns at once. Called by install.sh; can run on its own.
#
# Needs a JDK >= 17 (Kafka 4's broker requires Java 17; javac for the tool) and Maven; installs
# Debian's if missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

log() { printf '[install-kafka %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

home="$(fjord_kafka_home)"
tools="$(fjord_kafka_tools_dir "$here")"
if [[ -f "$home/libs/.complete" && -f "$tools/.complete" ]]; then
  log "kafka $KAFKA_VERSION: cached in $home"
  exit 0
fi

cache="$(fjord_cache)"
mkdir -p "$cache"
exec 8>"$cache/install-kafka.lock"
if ! flock -n 8; then
  log "another install-kafka.sh is running on $cache; waiting for it"
  flock 8
  if [[ -f "$home/libs/.complete" && -f "$tools/.complete" ]]; then
    log "kafka $KAFKA_VERSION: cached in $home"; exit 0
  fi
fi

java=$(fjord_jdk_with_maven)

t0=$SECONDS
if [[ ! -f "$home/libs/.complete" ]]; then
  log "kafka $KAFKA_VERSION: resolving kafka_2.13 + kafka-tools and their runtime dependencies (Maven)"
  fjord_maven_libs "$here/kafka/pom.xml" "$home/libs" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$KAFKA_LOG4J_VERSION"
  for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar" \
             "log4j-core-$KAFKA_LOG4J_VERSION.jar" "log4j-slf4j-impl-$KAFKA_LOG4J_VERSION.jar"; do
    [[ -f "$home/libs/$jar" ]] || { rm -rf "$home/libs"; fjord_die "install-kafka.sh: $jar was not resolved;" \
      "if kafka_2.13 now depends on another Log4j, set KAFKA_LOG4J_VERSION in versions.env to it"; }
  done
  echo "$KAFKA_VERSION" >"$home/libs/VERSION"
  log "kafka $KAFKA_VERSION: $(ls "$home/libs" | grep -c '\.jar$') jars in $home/libs ($((SECONDS - t0)) s)"
fi

if [[ ! -f "$tools/.complete" ]]; then
  log "kafka $KAFKA_VERSION: compiling the test tools (kafka/src) into $tools"
  fjord_javac_dir "$java" "$here/kafka/src" "$home/libs/*" "$tools"
fi
log "kafka $KAFKA_VERSION: installed in $home ($((SECONDS - t0)) s)"
