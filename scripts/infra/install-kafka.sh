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

apt_install() {
  log "installing Debian packages: $*"
  local sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@"
}
java=$(fjord_java 17 2>/dev/null) || true
if [[ -z "$java" || ! -x "$(dirname "$java")/javac" ]]; then
  apt_install openjdk-17-jdk-headless
  java=$(FJORD_JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java fjord_java 17)
fi
javac="$(dirname "$java")/javac"
[[ -x "$javac" ]] || fjord_die "install-kafka.sh: no javac beside $java; install a JDK >= 17"
command -v mvn >/dev/null 2>&1 || apt_install maven
# Maven runs on the Java found above, whatever JAVA_HOME said.
JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$java")")")"
export JAVA_HOME

t0=$SECONDS
if [[ ! -f "$home/libs/.complete" ]]; then
  tmp="$home/libs.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "kafka $KAFKA_VERSION: resolving kafka_2.13 + kafka-tools and their runtime dependencies (Maven)"
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$KAFKA_LOG4J_VERSION" \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
  for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar" \
             "log4j-core-$KAFKA_LOG4J_VERSION.jar" "log4j-slf4j-impl-$KAFKA_LOG4J_VERSION.jar"; do
    [[ -f "$tmp/$jar" ]] || fjord_die "install-kafka.sh: $jar was not resolved into $tmp;" \
      "if kafka_2.13 now depends on another Log4j, set KAFKA_LOG4J_VERSION in versions.env to it"
  done
  echo "$KAFKA_VERSION" >"$tmp/VERSION"
  touch "$tmp/.complete"
  rm -rf "$home/libs"
  mv "$tmp" "$home/libs"
  log "kafka $KAFKA_VERSION: $(ls "$home/libs" | grep -c '\.jar$') jars in $home/libs ($((SECONDS - t0)) s)"
fi

if [[ ! -f "$tools/.complete" ]]; then
  log "kafka $KAFKA_VERSION: compiling the test tools (kafka/src) into $tools"
  rm -rf "$tools.tmp"; mkdir -p "$tools.tmp"
  "$javac" -nowarn --release 17 -cp "$home/libs/*" -d "$tools.tmp" "$here"/kafka/src/fjord/infra/*.java
  touch "$tools.tmp/.complete"
  rm -rf "$tools"; mv "$tools.tmp" "$tools"
fi
log "kafka $KAFKA_VERSION: installed in $home ($((SECONDS - t0)) s)"
