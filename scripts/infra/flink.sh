#!/usr/bin/env bash
# flink.sh — runs the Flink oracle: Apache Flink's DataStream API on its local MiniCluster, from
# the jars install-flink.sh cached.
#
#   flink.sh datastream INPUT CASE...
#       Runs the named cases of flink/src/fjord/oracle/DataStreamCases.java (parallelism 1) over
#       INPUT (lines `key,value,ts` or `#wm,ts`) and prints `== CASE` and then each output record.
#       Flink's own logging is off (SLF4J without a binding); errors go to stderr.
#
#   flink.sh cep INPUT CASE...
#       Runs the named Flink CEP patterns of flink/src/fjord/oracle/CepCases.java (parallelism 1,
#       keyed by key, event time) over INPUT (as datastream) and prints `== CASE` and then one
#       line per match `key|a:v@ts,...;b:...` (`timeout:` before timed-out partial matches).
#
#   flink.sh sql SCRIPT...
#       Runs a Fjord SQL script on Flink's table planner (flink/src/fjord/oracle/SqlScript.java):
#       every INSERT INTO's SELECT is collected and printed as `== SINK` and then one CSV line
#       per row (Fjord's CSV conventions). Several scripts run in one JVM, each after `=== SCRIPT`.
#       The SQL libs include flink-sql-avro: 'filesystem' tables with 'format' = 'avro' read
#       (and, with EXECUTE INSERT INTO, write) Avro container files; and Flink's Kafka SQL
#       connector (flink-sql-connector-kafka at FLINK_KAFKA_CONNECTOR_VERSION): 'kafka' and
#       'upsert-kafka' tables, 'debezium-json' included, read topics (bounded with
#       'scan.bounded.mode' = 'latest-offset') and, with EXECUTE INSERT INTO, write them.
#
#   flink.sh sql-exec SCRIPT
#       Runs a SQL script on Flink's table planner as written, INSERTs included, each awaited
#       (flink/src/fjord/oracle/SqlExec.java): Flink SQL writing into Kafka with its own connector
#       ('kafka', 'upsert-kafka'; e2e/tests/flink_sql_kafka_oracle.rs, avro_flink_oracle.rs).
#
#   flink.sh avro schema|write|read ROW<...> [confluent]
#       Flink's avro / avro-confluent SQL formats one record value at a time
#       (flink/src/fjord/oracle/AvroFormats.java): `schema` prints the Avro schema Flink derives
#       for the row type; `write` turns CSV rows on stdin (NULL as NULL) into record values in
#       hex; `read` turns hex record values on stdin into CSV rows.
#
#   flink.sh sql-parquet SCRIPT
#       As sql, with Flink's Parquet format (flink-sql-parquet and the Hadoop client classes it
#       needs) on the classpath: a script can read (and write) 'format' = 'parquet' tables.
#
#   flink.sh nexmark INPUT_DIR blackhole|print PARALLELISM CHECKPOINT_INTERVAL_MS CHECKPOINT_DIR QUERY_FILE...
#       Runs Flink Nexmark benchmark queries (bench/nexmark/flink/qN.sql) as one job over the
#       event files of `fjord-nexmark generate` (flink/src/fjord/oracle/NexmarkSql.java); with
#       `print` the rows go to stdout as `qN:subtask> +I[...]`. Times go to stderr as
#       `NEXMARK-RESULT {json}`. `${FLINK_HOME}` in a query text (q13's side input file,
#       ${FLINK_HOME}/data/side_input.txt) becomes $FJORD_NEXMARK_FLINK_HOME.
#
#   flink.sh protobuf PROTO_FILE MESSAGE_CLASS decode|encode ROW_TYPE READ_DEFAULT_VALUES IN OUT
#       Flink's protobuf format (flink/src/fjord/oracle/ProtobufFormat.java): compiles PROTO_FILE
#       with protoc into Java classes, then decodes IN's lines (one message each: 'x' then its bytes in hex) into
#       rows in OUT (CSV, NULL as \N), or encodes IN's rows into such lines.
#       MESSAGE_CLASS is the generated Java class (java_package + name), ROW_TYPE Flink's
#       type string ("ROW<id BIGINT, name STRING>").
#
# Environment: FJORD_CACHE (default ~/.cache/fjord); FJORD_JAVA, JAVA_HOME (which java; >= 17);
# FLINK_ORACLE_HEAP (JVM heap flags, default -Xmx1g).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^[^#]/{/^#/p}' "$0" >&2; exit 2; }
(($# >= 2)) || usage
home="$(fjord_flink_home)"
oracle="$(fjord_flink_oracle_dir "$here")"
[[ -f "$home/libs/.complete" && -f "$oracle/.complete" ]] \
  || fjord_die "Flink $FLINK_VERSION is not installed in $home; run scripts/infra/install-flink.sh"
java=$(fjord_java 17)
# shellcheck disable=SC2206
heap=(${FLINK_ORACLE_HEAP:--Xmx1g})
# Each Flink JVM unpacks its RPC jar (24 MB) into java.io.tmpdir and leaves it there: a
# directory of this run's own, removed when the JVM is done, keeps /tmp from filling up.
run_java() {
  local tmp rc=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/fjord-flink-XXXXXX")
  "$java" -Djava.io.tmpdir="$tmp" "$@" || rc=$?
  rm -rf "$tmp"
  return "$rc"
}
case $1 in
  datastream) shift
    run_java ${FJORD_JVM_OPTS:-} "${heap[@]}" -Djava.awt.headless=true -cp "$oracle:$home/libs/*" \
      fjord.oracle.DataStreamCases "$@" ;;
  cep) shift
    run_java ${FJORD_JVM_OPTS:-} "${heap[@]}" -Djava.awt.headless=true -cp "$oracle:$home/libs/*" \
      fjord.oracle.CepCases "$@" ;;
  sql|nexmark|avro|sql-exec) main=fjord.oracle.SqlScript; [[ $1 == nexmark ]] && main=fjord.oracle.NexmarkSql
    [[ $1 == avro ]] && main=fjord.oracle.AvroFormats; [[ $1 == sql-exec ]] && main=fjord.oracle.SqlExec
    shift
    [[ -f "$home/sql-libs/.complete" ]] \
      || fjord_die "Flink $FLINK_VERSION's SQL jars are not installed in $home/sql-libs; run scripts/infra/install-flink.sh"
    run_java ${FJORD_JVM_OPTS:-} "${heap[@]}" -Djava.awt.headless=true -cp "$oracle:$home/libs/*:$home/sql-libs/*" \
      "$main" "$@" ;;
  protobuf) shift
    (($# == 7)) || usage
    [[ -f "$home/sql-libs/.complete" ]] \
      || fjord_die "Flink $FLINK_VERSION's SQL jars are not installed in $home/sql-libs; run scripts/infra/install-flink.sh"
    proto=$1 message_class=$2; shift 2
    protoc="$home/sql-libs/protoc-$FLINK_PROTOC_VERSION-linux-x86_64.exe"
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/src" "$work/classes"
    "$protoc" --proto_path="$(dirname "$proto")" --java_out="$work/src" "$proto"
    # shellcheck disable=SC2046
    "$(dirname "$java")/javac" -nowarn --release 17 -cp "$home/sql-libs/*" -d "$work/classes" \
      $(find "$work/src" -name '*.java')
    run_java ${FJORD_JVM_OPTS:-} "${heap[@]}" -Djava.awt.headless=true \
      -cp "$oracle:$work/classes:$home/libs/*:$home/sql-libs/*" \
      fjord.oracle.ProtobufFormat "$1" "$message_class" "$2" "$3" "$4" "$5" ;;
  sql-parquet) shift
    [[ -f "$home/sql-libs/.complete" && -f "$home/parquet-libs/.complete" ]] \
      || fjord_die "Flink $FLINK_VERSION's SQL and Parquet jars are not installed in $home; run scripts/infra/install-flink.sh"
    run_java ${FJORD_JVM_OPTS:-} "${heap[@]}" -Djava.awt.headless=true \
      -cp "$oracle:$home/libs/*:$home/sql-libs/*:$home/parquet-libs/*" fjord.oracle.SqlScript "$@" ;;
  *) usage ;;
esac
