#!/usr/bin/env bash
# Resolves (once) and caches Apache Flink's DataStream API with its local runtime
# (flink-streaming-java + flink-clients + flink-cep, every runtime dependency) from Maven Central into
#   ${FJORD_CACHE:-$HOME/.cache/fjord}/flink-<FLINK_VERSION>/libs/*.jar
# and its SQL stack (flink/sql-pom.xml: table API, planner loader, table runtime, csv, json,
# protobuf (with protoc), avro, avro-confluent, filesystem and Kafka connectors; the Kafka SQL
# connector, flink-sql-connector-kafka, is released apart from Flink, at
# FLINK_KAFKA_CONNECTOR_VERSION, and serves the Avro and Kafka changelog oracles) into
# flink-<FLINK_VERSION>/sql-libs/*.jar, its Parquet format with the Hadoop client classes it
# needs (flink/parquet-pom.xml, Hadoop at HADOOP_VERSION) into flink-<FLINK_VERSION>/parquet-libs/*.jar,
# and compiles the oracle's cases (flink/src/fjord/oracle/*.java) against them into
# flink-<FLINK_VERSION>/oracle-<hash of the source>/. A second run finds both in place and
# returns at once. Called by install.sh; can run on its own. Run the cases with flink.sh.
#
# Needs a JDK >= 17 and Maven; installs Debian's if missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

log() { printf '[install-flink %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

home="$(fjord_flink_home)"
oracle="$(fjord_flink_oracle_dir "$here")"
# A cache resolved before flink-cep joined the pom is resolved again.
if [[ -f "$home/libs/.complete" && ! -f "$home/libs/flink-cep-$FLINK_VERSION.jar" ]]; then
  rm -f "$home/libs/.complete"
fi
# A SQL stack resolved before the protobuf and Avro formats and the Kafka connector joined
# sql-pom.xml is resolved again.
if [[ -f "$home/sql-libs/.complete" && ( ! -f "$home/sql-libs/flink-protobuf-$FLINK_VERSION.jar" \
  || ! -f "$home/sql-libs/flink-sql-connector-kafka-$FLINK_KAFKA_CONNECTOR_VERSION.jar" ) ]]; then
  rm -f "$home/sql-libs/.complete"
fi
# A parquet-libs resolved before aircompressor (LZ4_RAW) joined its pom is resolved again.
if [[ -f "$home/parquet-libs/.complete" && ! -f "$home/parquet-libs/aircompressor-2.0.2.jar" ]]; then
  rm -f "$home/parquet-libs/.complete"
fi
complete() {
  [[ -f "$home/libs/.complete" && -f "$home/sql-libs/.complete" && -f "$home/parquet-libs/.complete" \
     && -f "$oracle/.complete" ]]
}
if complete; then
  log "flink $FLINK_VERSION: cached in $home"
  exit 0
fi

cache="$(fjord_cache)"
mkdir -p "$cache"
exec 8>"$cache/install-flink.lock"
if ! flock -n 8; then
  log "another install-flink.sh is running on $cache; waiting for it"
  flock 8
  if complete; then
    log "flink $FLINK_VERSION: cached in $home"; exit 0
  fi
fi

java=$(fjord_jdk_with_maven)
t0=$SECONDS
if [[ ! -f "$home/libs/.complete" ]]; then
  log "flink $FLINK_VERSION: resolving flink-streaming-java + flink-clients + flink-cep and their runtime dependencies (Maven)"
  fjord_maven_libs "$here/flink/pom.xml" "$home/libs" -Dflink.version="$FLINK_VERSION"
  [[ -f "$home/libs/flink-streaming-java-$FLINK_VERSION.jar" ]] \
    || fjord_die "install-flink.sh: flink-streaming-java-$FLINK_VERSION.jar was not resolved into $home/libs"
  log "flink $FLINK_VERSION: $(ls "$home/libs" | grep -c '\.jar$') jars in $home/libs ($((SECONDS - t0)) s)"
fi
if [[ ! -f "$home/sql-libs/.complete" ]]; then
  log "flink $FLINK_VERSION: resolving the SQL stack (table planner, runtime, csv, json, protobuf, avro, files, kafka) into $home/sql-libs"
  fjord_maven_libs "$here/flink/sql-pom.xml" "$home/sql-libs" -Dflink.version="$FLINK_VERSION" \
    -Dprotoc.version="$FLINK_PROTOC_VERSION" -Dflink.kafka.version="$FLINK_KAFKA_CONNECTOR_VERSION"
  chmod +x "$home/sql-libs/protoc-$FLINK_PROTOC_VERSION-linux-x86_64.exe"
  [[ -f "$home/sql-libs/flink-table-planner-loader-$FLINK_VERSION.jar" ]] \
    || fjord_die "install-flink.sh: flink-table-planner-loader-$FLINK_VERSION.jar was not resolved into $home/sql-libs"
fi
if [[ ! -f "$home/parquet-libs/.complete" ]]; then
  log "flink $FLINK_VERSION: resolving flink-sql-parquet + Hadoop $HADOOP_VERSION client into $home/parquet-libs"
  fjord_maven_libs "$here/flink/parquet-pom.xml" "$home/parquet-libs" \
    -Dflink.version="$FLINK_VERSION" -Dhadoop.version="$HADOOP_VERSION"
  [[ -f "$home/parquet-libs/flink-sql-parquet-$FLINK_VERSION.jar" ]] \
    || fjord_die "install-flink.sh: flink-sql-parquet-$FLINK_VERSION.jar was not resolved into $home/parquet-libs"
fi
if [[ ! -f "$oracle/.complete" ]]; then
  log "flink $FLINK_VERSION: compiling the oracle (flink/src) into $oracle"
  fjord_javac_dir "$java" "$here/flink/src" "$home/libs/*:$home/sql-libs/*" "$oracle"
fi
log "flink $FLINK_VERSION: installed in $home ($((SECONDS - t0)) s)"
