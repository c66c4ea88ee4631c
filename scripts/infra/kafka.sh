#!/usr/bin/env bash
# kafka.sh — a single-node Apache Kafka (KRaft: broker and controller in one JVM) on 127.0.0.1
# for tests and benchmarks, from the jars install-kafka.sh cached.
#
#   kafka.sh start DIR [--port N] [--controller-port N] [--override KEY=VALUE]...
#                      [--add-scram 'MECHANISM=[name=USER,password=PASSWORD]']...
#       First start in DIR: choose free ports (unless given), write DIR/server.properties,
#       format DIR/data (new cluster id), start, wait until the broker serves. A later start in
#       the same DIR (after `stop`) reuses its ports, configuration and data. Prints
#       `KAFKA_BOOTSTRAP=127.0.0.1:PORT` and writes the same to DIR/kafka.env.
#       --override appends KEY=VALUE to server.properties (a later key wins: listeners, SASL...).
#       --add-scram writes SCRAM credentials into the new cluster's metadata when DIR/data is
#       formatted (kafka-storage format --add-scram; MECHANISM is SCRAM-SHA-256 or SCRAM-SHA-512),
#       for a SASL listener that enables SCRAM; ignored when DIR/data exists already.
#   kafka.sh stop DIR [--kill]
#       SIGTERM (controlled shutdown; --kill: SIGKILL at once), wait up to 30 s, then SIGKILL.
#       Data, ports and logs stay, so `start DIR` brings the same broker back.
#   kafka.sh down DIR
#       stop, and release DIR's port reservations. Data and logs stay for inspection.
#   kafka.sh tool CLASS [ARGS...]
#       Run one of Kafka's tools with the cached classpath, e.g.
#       org.apache.kafka.tools.TopicCommand, org.apache.kafka.tools.ConsoleProducer,
#       org.apache.kafka.tools.consumer.ConsoleConsumer, org.apache.kafka.tools.ProducerPerformance,
#       or the project's fjord.infra.DrainTopic (kafka/src: every committed record of a topic up
#       to its end, read_committed). Tool logging goes to stderr at WARN.
#
# DIR layout: server.properties, kafka.env, ports.env, data/ (log.dirs, KRaft metadata),
# logs/kafka.log (the JVM's stdout+stderr, appended across restarts), pids/kafka.pid.
#
# Environment:
#   FJORD_CACHE          cache root (default ~/.cache/fjord)
#   FJORD_KAFKA_TIMEOUT  seconds to wait for the broker to serve (default 90)
#   KAFKA_HEAP_OPTS      JVM heap flags (default -Xms256m -Xmx1g)
#   FJORD_E2E_OWNER_PID  if set, a watchdog runs `kafka.sh down DIR` as soon as that process is gone
#   FJORD_JAVA, JAVA_HOME  which java to use (see lib.sh fjord_java); needs Java >= 17
# Exit code 3: Kafka is not installed (run scripts/infra/install-kafka.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

libs="$(fjord_kafka_home)/libs"
require_install() {
  if [[ ! -f "$libs/.complete" || ! -f "$(fjord_kafka_tools_dir "$here")/.complete" ]]; then
    echo "fjord infra: Kafka $KAFKA_VERSION is not installed in $libs; run scripts/infra/install-kafka.sh" \
         "(or scripts/infra/install.sh)" >&2
    exit 3
  fi
}

# pid_of DIR : the broker's pid if it runs.
pid_of() {
  local pf="$1/pids/kafka.pid"
  fjord_pid_alive "$pf" && cat "$pf"
}

# new_cluster_id : a random KRaft cluster id (16 random bytes, URL-safe base64 without padding,
# as org.apache.kafka.common.Uuid prints them; not starting with '-').
new_cluster_id() {
  local id tries=0
  while ((tries++ < 100)); do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ ${#id} -eq 22 && "${id:0:1}" != "-" ]] && { echo "$id"; return 0; }
  done
  fjord_die "could not generate a cluster id"
}

java_opts() {
  # shellcheck disable=SC2206
  local heap=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g})
  printf '%s\n' "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
}

cmd_start() {
  local dir=$1; shift
  local port="" cport="" overrides=() scram=()
  while (($#)); do
    case $1 in
      --port) port=$2; shift 2 ;;
      --controller-port) cport=$2; shift 2 ;;
      --override) overrides+=("$2"); shift 2 ;;
      --add-scram) scram+=(--add-scram "$2"); shift 2 ;;
      *) fjord_die "kafka.sh start: unknown argument '$1'" ;;
    esac
  done
  require_install
  local java; java=$(fjord_java 17)
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/data"
  if pid=$(pid_of "$dir"); then
    # shellcheck source=/dev/null
    source "$dir/kafka.env"
    echo "KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP"
    return 0
  fi
  # A run-id file marks DIR as holding port reservations (lib.sh fjord_reserve); `down` removes it.
  [[ -f "$dir/run-id" ]] || echo "kafka-$(date +%s)-$$-$RANDOM" >"$dir/run-id"

  if [[ -f "$dir/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    [[ -z "$port" || "$port" == "$KAFKA_PORT" ]] || fjord_die "$dir was set up with port $KAFKA_PORT, not $port"
    [[ -z "$cport" || "$cport" == "$KAFKA_CONTROLLER_PORT" ]] ||
      fjord_die "$dir was set up with controller port $KAFKA_CONTROLLER_PORT, not $cport"
    port=$KAFKA_PORT; cport=$KAFKA_CONTROLLER_PORT
  else
    [[ -n "$port" ]] || port=$(fjord_alloc_port "$dir")
    [[ -n "$cport" ]] || cport=$(fjord_alloc_port "$dir")
    printf 'KAFKA_PORT=%s\nKAFKA_CONTROLLER_PORT=%s\n' "$port" "$cport" >"$dir/ports.env"
  fi

  local props="$dir/server.properties"
  if [[ ! -f "$props" ]]; then
    cat >"$props" <<PROPS
# Single-node KRaft test broker written by scripts/infra/kafka.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Tests write records with fixed, old timestamps; time-based retention would delete them at the
# next segment roll (e.g. after a restart). A test broker keeps everything.
log.retention.ms=-1
PROPS
  fi
  local o
  for o in "${overrides[@]}"; do
    [[ "$o" == *=* ]] || fjord_die "kafka.sh start: --override wants KEY=VALUE, got '$o'"
    echo "$o" >>"$props"
  done

  local log="$dir/logs/kafka.log"
  touch "$log"
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local id; id=$(new_cluster_id)
    if ! "$java" ${FJORD_JVM_OPTS:-} -cp "$libs/*" -Dlog4j2.configurationFile="$here/kafka/tools-log4j2.properties" \
         kafka.tools.StorageTool format -t "$id" -c "$props" "${scram[@]}" >>"$log" 2>&1; then
      tail -n 30 "$log" >&2
      fjord_die "formatting $dir/data failed (log: $log)"
    fi
  fi

  fjord_start_watchdog "$dir" "$here/kafka.sh"

  local from; from=$(($(stat -c %s "$log") + 1))
  local -a opts; mapfile -t opts < <(java_opts)
  echo "=== kafka.sh start $(date -u +%FT%TZ) ===" >>"$log"
  setsid "$java" ${FJORD_JVM_OPTS:-} "${opts[@]}" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$props" >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pids/kafka.pid"

  local timeout=${FJORD_KAFKA_TIMEOUT:-90} t0=$SECONDS
  until grep -q 'Kafka Server started' < <(tail -c "+$from" "$log") && fjord_listening "$port"; do
    if ! fjord_running "$pid"; then
      tail -n 40 "$log" >&2
      rm -f "$dir/pids/kafka.pid"
      fjord_die "kafka exited during start-up (log: $log)"
    fi
    if ((SECONDS - t0 >= timeout)); then
      tail -n 40 "$log" >&2
      fjord_stop_group "$dir/pids/kafka.pid" KILL
      fjord_die "kafka did not start within $timeout s (log: $log)"
    fi
    sleep 0.2
  done
  printf 'KAFKA_BOOTSTRAP=127.0.0.1:%s\nKAFKA_HOME=%s\n' "$port" "$(dirname "$libs")" >"$dir/kafka.env"
  echo "KAFKA_BOOTSTRAP=127.0.0.1:$port"
  echo "fjord infra: kafka $KAFKA_VERSION up on 127.0.0.1:$port in $((SECONDS - t0)) s (pid $pid, dir $dir)" >&2
}

cmd_stop() {
  local dir=$1 sig=TERM
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -d "$dir" ]] || return 0
  fjord_stop_group "$dir/pids/kafka.pid" "$sig"
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" kafka
}

cmd_tool() {
  require_install
  local java; java=$(fjord_java 17)
  local class=$1; shift
  # shellcheck disable=SC2206
  local heap=(${KAFKA_TOOL_HEAP_OPTS:--Xmx512m})
  exec "$java" ${FJORD_JVM_OPTS:-} "${heap[@]}" -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/tools-log4j2.properties" \
    -cp "$libs/*:$(fjord_kafka_tools_dir "$here")" "$class" "$@"
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  tool) shift; cmd_tool "$@" ;;
  *) usage ;;
esac
