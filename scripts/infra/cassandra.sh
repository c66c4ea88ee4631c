#!/usr/bin/env bash
# cassandra.sh — a single-node Apache Cassandra on 127.0.0.1 for tests, from the jars
# install-cassandra.sh cached (Maven Central's cassandra-all, no tarball), on Java 17 with the
# JVM options of Cassandra's conf/jvm17-server.options (cassandra/jvm17-server.options).
#
#   cassandra.sh start DIR
#       First start in DIR: choose free ports (native transport = CQL, storage), write
#       DIR/conf/cassandra.yaml (one token, SimpleSnitch, no auth, its own data, commit log,
#       hints and caches directories under DIR/data), start CassandraDaemon with fast start-up
#       settings (no wait for gossip to settle, a short ring delay), wait until it logs that it
#       listens for CQL clients and the port listens. A later start in the same DIR (after
#       `stop`) reuses its ports and data (acknowledged rows survive, also a --kill; see
#       Durability). Prints `CASSANDRA_HOSTS=127.0.0.1:PORT` and writes
#       the same to DIR/cassandra.env. A first start took 18 s on 2 shared cores, a restart after
#       a SIGKILL 15 s (JVM start, schema load and commit log replay dominate).
#   cassandra.sh stop DIR [--kill]
#       SIGTERM (a clean shutdown; --kill: SIGKILL at once), wait up to 60 s, then SIGKILL.
#       Data, ports and logs stay, so `start DIR` brings the same node back.
#   cassandra.sh down DIR
#       stop, and release DIR's port reservations. Data and logs stay for inspection.
#
# Durability: commitlog_sync is `group` with a 10 ms window: a write is acknowledged only after
# the commit log holding it was synced, so it survives a SIGKILL.
#
# DIR layout: cassandra.env, ports.env, conf/cassandra.yaml, data/ (data, commitlog, hints,
# saved_caches, cdc_raw), logs/cassandra.log (the JVM's output, appended across restarts),
# pids/cassandra.pid.
#
# Environment:
#   FJORD_CACHE             cache root (default ~/.cache/fjord)
#   FJORD_CASSANDRA_TIMEOUT seconds to wait for the node to start (default 180)
#   CASSANDRA_HEAP_OPTS     JVM heap flags (default -Xms512m -Xmx512m -Xmn128m)
#   FJORD_E2E_OWNER_PID     if set, a watchdog runs `cassandra.sh down DIR` as soon as that
#                           process is gone
#   FJORD_JAVA, JAVA_HOME   which java to use (see lib.sh fjord_java); Cassandra 5.0 runs on
#                           Java 11 or 17, so a Java 17 is looked for first
# Exit code 3: Cassandra is not installed (run scripts/infra/install-cassandra.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

libs="$(fjord_cassandra_home)/libs"
require_install() {
  if [[ ! -f "$libs/.complete" ]]; then
    echo "fjord infra: Cassandra $CASSANDRA_VERSION is not installed in $libs; run" \
         "scripts/infra/install-cassandra.sh (or scripts/infra/install.sh)" >&2
    exit 3
  fi
}

# cassandra_java : a Java 17 (Cassandra 5.0 supports 11 and 17, not 21+): $FJORD_JAVA or
# $JAVA_HOME if they are 17, else Debian's or any JDK 17 under /usr/lib/jvm.
cassandra_java() {
  local c
  for c in "${FJORD_JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" /usr/lib/jvm/java-17-openjdk-*/bin/java \
           /usr/lib/jvm/*17*/bin/java; do
    [[ -n "$c" && -x "$c" ]] || continue
    [[ "$(fjord_java_major "$c" 2>/dev/null)" == 17 ]] && { echo "$c"; return 0; }
  done
  fjord_die "Cassandra $CASSANDRA_VERSION needs Java 17 (found none under /usr/lib/jvm); run" \
    "'apt-get install openjdk-17-jre-headless' or point FJORD_JAVA at a Java 17"
}

write_config() {
  local dir=$1
  mkdir -p "$dir/conf"
  cat >"$dir/conf/cassandra.yaml" <<YAML
# Written by scripts/infra/cassandra.sh: a single test node on loopback.
cluster_name: fjord-test
num_tokens: 1
initial_token: 0
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$STORAGE_PORT"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $STORAGE_PORT
ssl_storage_port: $STORAGE_PORT
start_native_transport: true
native_transport_port: $NATIVE_PORT
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
data_file_directories:
  - $dir/data/data
commitlog_directory: $dir/data/commitlog
saved_caches_directory: $dir/data/saved_caches
hints_directory: $dir/data/hints
cdc_raw_directory: $dir/data/cdc_raw
# Acknowledged writes are synced to the commit log first (a SIGKILL loses none of them).
commitlog_sync: group
commitlog_sync_group_window: 10ms
commitlog_segment_size: 8MiB
disk_failure_policy: stop
commit_failure_policy: stop
# Small and quick: a test node, not a production one.
auto_snapshot: false
hinted_handoff_enabled: false
dynamic_snitch: false
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
file_cache_size: 32MiB
compaction_throughput: 0MiB/s
read_request_timeout: 10000ms
write_request_timeout: 5000ms
request_timeout: 20000ms
YAML
}

cmd_start() {
  local dir=$1; shift
  (($# == 0)) || fjord_die "cassandra.sh start: unknown argument '$1'"
  require_install
  local java; java=$(cassandra_java)
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/data"
  if fjord_pid_alive "$dir/pids/cassandra.pid"; then
    cat "$dir/cassandra.env"
    return 0
  fi
  # A run-id file marks DIR as holding port reservations (lib.sh fjord_reserve); `down` removes it.
  [[ -f "$dir/run-id" ]] || echo "cassandra-$(date +%s)-$$-$RANDOM" >"$dir/run-id"
  if [[ ! -f "$dir/ports.env" ]]; then
    printf 'NATIVE_PORT=%s\nSTORAGE_PORT=%s\n' "$(fjord_alloc_port "$dir")" "$(fjord_alloc_port "$dir")" \
      >"$dir/ports.env"
  fi
  # shellcheck source=/dev/null
  source "$dir/ports.env"
  write_config "$dir"

  fjord_start_watchdog "$dir" "$here/cassandra.sh"

  local log="$dir/logs/cassandra.log"
  touch "$log"
  local from; from=$(($(stat -c %s "$log") + 1))
  local -a opts=()
  local line
  while IFS= read -r line; do
    line=${line%%#*}; line=${line//[[:space:]]/}
    [[ -n "$line" ]] && opts+=("$line")
  done <"$here/cassandra/jvm17-server.options"
  # shellcheck disable=SC2206
  local heap=(${CASSANDRA_HEAP_OPTS:--Xms512m -Xmx512m -Xmn128m})
  echo "=== cassandra.sh start $(date -u +%FT%TZ) ===" >>"$log"
  setsid "$java" ${FJORD_JVM_OPTS:-} "${opts[@]}" "${heap[@]}" -Djava.awt.headless=true \
    -Dcassandra.config="file://$dir/conf/cassandra.yaml" \
    -Dcassandra.storagedir="$dir/data" -Dcassandra.logdir="$dir/logs" \
    -Dlogback.configurationFile="$here/cassandra/logback.xml" \
    -Dcassandra-foreground=yes \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=100 \
    -Dcassandra.gossip_settle_min_wait_ms=0 -Dcassandra.gossip_settle_interval_ms=100 \
    -Dcassandra.load_ring_state=false -Dcassandra.initial_token=0 \
    -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.skip_schema_check=true \
    -cp "$libs/*" org.apache.cassandra.service.CassandraDaemon \
    >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pids/cassandra.pid"

  local timeout=${FJORD_CASSANDRA_TIMEOUT:-180} t0=$SECONDS
  until grep -q 'Starting listening for CQL clients' < <(tail -c "+$from" "$log") && fjord_listening "$NATIVE_PORT"; do
    if ! fjord_running "$pid"; then
      tail -n 40 "$log" >&2
      rm -f "$dir/pids/cassandra.pid"
      fjord_die "cassandra exited during start-up (log: $log)"
    fi
    if ((SECONDS - t0 >= timeout)); then
      tail -n 40 "$log" >&2
      fjord_stop_group "$dir/pids/cassandra.pid" KILL
      fjord_die "cassandra did not start within $timeout s (log: $log)"
    fi
    sleep 0.2
  done
  printf 'CASSANDRA_HOSTS=127.0.0.1:%s\n' "$NATIVE_PORT" >"$dir/cassandra.env"
  cat "$dir/cassandra.env"
  echo "fjord infra: cassandra $CASSANDRA_VERSION up on 127.0.0.1:$NATIVE_PORT (CQL) in $((SECONDS - t0)) s (pid $pid, dir $dir)" >&2
}

cmd_stop() {
  local dir=$1 sig=TERM
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  fjord_stop_group "$dir/pids/cassandra.pid" "$sig" 60
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" cassandra
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) usage ;;
esac
