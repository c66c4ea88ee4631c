#!/usr/bin/env bash
# flink.sh — runs the Flink oracle: Apache Flink's DataStream API on its local MiniCluster, from
# the jars install-flink.sh cached.
#
#   flink.sh datastream INPUT CASE...
#       Runs the named cases of flink/src/fjord/oracle/DataStreamCases.java (parallelism 1) over
#       INPUT (lines `key,value,ts` or `#wm,ts`) and prints `== CASE` and then each output record.
#       Flink's own logging is off (SLF4J without a binding); errors go to stderr.
#
# Environment: FJORD_CACHE (default ~/.cache/fjord); FJORD_JAVA, JAVA_HOME (which java; >= 17);
# FLINK_ORACLE_HEAP (JVM heap flags, default -Xmx1g).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,12p' "$0" >&2; exit 2; }
(($# >= 3)) || usage
home="$(fjord_flink_home)"
oracle="$(fjord_flink_oracle_dir "$here")"
[[ -f "$home/libs/.complete" && -f "$oracle/.complete" ]] \
  || fjord_die "Flink $FLINK_VERSION is not installed in $home; run scripts/infra/install-flink.sh"
java=$(fjord_java 17)
# shellcheck disable=SC2206
heap=(${FLINK_ORACLE_HEAP:--Xmx1g})
case $1 in
  datastream) shift
    exec "$java" "${heap[@]}" -Djava.awt.headless=true -cp "$oracle:$home/libs/*" \
      fjord.oracle.DataStreamCases "$@" ;;
  *) usage ;;
esac
