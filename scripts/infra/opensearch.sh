#!/usr/bin/env bash
# opensearch.sh — a single OpenSearch node on 127.0.0.1 for tests, from the jars
# install-opensearch.sh cached: HTTP (the REST API Fjord's connector speaks) on a free port,
# its own data directory in DIR.
#
#   opensearch.sh start DIR [--port N]
#       First start in DIR: choose free ports (HTTP unless given, transport), write
#       DIR/config (opensearch.yml: single-node discovery, loopback only, disk watermarks off;
#       log4j2.properties; jvm.options, for the record: the flags this script passes), start
#       the node (opensearch/src/fjord/infra/OpenSearchNode.java) and wait until it prints that
#       it started and GET / answers. A later start in the same DIR (after `stop`) reuses its
#       ports and data (indexed documents survive, also a --kill). Prints
#       `OPENSEARCH_URL=http://127.0.0.1:PORT` and writes the same to DIR/opensearch.env.
#   opensearch.sh stop DIR [--kill]
#       SIGTERM (a clean shutdown; --kill: SIGKILL at once), wait up to 30 s, then SIGKILL.
#       Data, ports and logs stay, so `start DIR` brings the same node back.
#   opensearch.sh down DIR
#       stop, and release DIR's port reservations. Data and logs stay for inspection.
#
# DIR layout: opensearch.env, ports.env, config/, data/, logs/opensearch.log (the JVM's output,
# appended across restarts; the node's own files beside it), pids/opensearch.pid.
#
# Environment:
#   FJORD_CACHE              cache root (default ~/.cache/fjord)
#   FJORD_OPENSEARCH_TIMEOUT seconds to wait for the node to start (default 120)
#   OPENSEARCH_HEAP_OPTS     JVM heap flags (default -Xms256m -Xmx512m)
#   OPENSEARCH_EXTRA_SETTINGS lines appended to opensearch.yml on the first start in DIR (e.g.
#                            "thread_pool.write.queue_size: 2" to provoke 429 rejections)
#   FJORD_E2E_OWNER_PID      if set, a watchdog runs `opensearch.sh down DIR` as soon as that
#                            process is gone
#   FJORD_JAVA, JAVA_HOME    which java to use (see lib.sh fjord_java); needs Java >= 17
# Exit code 3: OpenSearch is not installed (run scripts/infra/install-opensearch.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

home="$(fjord_opensearch_home)"
tools="$(fjord_opensearch_tools_dir "$here")"
require_install() {
  if [[ ! -f "$home/lib/.complete" || ! -f "$home/modules/transport-netty4/.complete" || ! -f "$tools/.complete" ]]; then
    echo "fjord infra: OpenSearch $OPENSEARCH_VERSION is not installed in $home; run" \
         "scripts/infra/install-opensearch.sh (or scripts/infra/install.sh)" >&2
    exit 3
  fi
}

write_config() {
  local dir=$1
  mkdir -p "$dir/config"
  cat >"$dir/config/opensearch.yml" <<YML
# Written by scripts/infra/opensearch.sh for a test node.
cluster.name: fjord-test
node.name: fjord-node
discovery.type: single-node
network.host: 127.0.0.1
http.port: $HTTP_PORT
transport.port: $TRANSPORT_PORT
path.data: $dir/data
path.logs: $dir/logs
# A test machine's disk may be fuller than the 85/90/95 % watermarks; a node past them would
# refuse shards or make indices read-only, which no test is about.
cluster.routing.allocation.disk.threshold_enabled: false
# Fewer background threads on a small machine.
node.processors: 2
YML
  if [[ -n "${OPENSEARCH_EXTRA_SETTINGS:-}" ]]; then
    printf '%s\n' "$OPENSEARCH_EXTRA_SETTINGS" >>"$dir/config/opensearch.yml"
  fi
  cp "$here/opensearch/log4j2.properties" "$dir/config/log4j2.properties"
}

cmd_start() {
  local dir=$1; shift
  local port=""
  while (($#)); do
    case $1 in
      --port) port=$2; shift 2 ;;
      *) fjord_die "opensearch.sh start: unknown argument '$1'" ;;
    esac
  done
  require_install
  local java; java=$(fjord_java 17)
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/data"
  if fjord_pid_alive "$dir/pids/opensearch.pid"; then
    cat "$dir/opensearch.env"
    return 0
  fi
  # A run-id file marks DIR as holding port reservations (lib.sh fjord_reserve); `down` removes it.
  [[ -f "$dir/run-id" ]] || echo "opensearch-$(date +%s)-$$-$RANDOM" >"$dir/run-id"
  if [[ -f "$dir/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    [[ -z "$port" || "$port" == "$HTTP_PORT" ]] || fjord_die "$dir was set up with port $HTTP_PORT, not $port"
  else
    [[ -n "$port" ]] || port=$(fjord_alloc_port "$dir")
    printf 'HTTP_PORT=%s\nTRANSPORT_PORT=%s\n' "$port" "$(fjord_alloc_port "$dir")" >"$dir/ports.env"
  fi
  # shellcheck source=/dev/null
  source "$dir/ports.env"
  [[ -f "$dir/config/opensearch.yml" ]] || write_config "$dir"

  fjord_start_watchdog "$dir" "$here/opensearch.sh"

  local log="$dir/logs/opensearch.log"
  touch "$log"
  local from; from=$(($(stat -c %s "$log") + 1))
  # shellcheck disable=SC2206
  local heap=(${OPENSEARCH_HEAP_OPTS:--Xms256m -Xmx512m})
  local -a flags=("${heap[@]}" -XX:+UseG1GC -Djava.awt.headless=true -Dfile.encoding=UTF-8
    -Djava.io.tmpdir="$dir/data" -Dio.netty.noUnsafe=true -Dio.netty.recycler.maxCapacityPerThread=0
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -XX:+HeapDumpOnOutOfMemoryError
    -XX:HeapDumpPath="$dir/logs" -XX:ErrorFile="$dir/logs/hs_err_pid%p.log")
  printf '%s\n' "# The JVM flags opensearch.sh starts this node with (read by nothing; for the record)." \
    "${flags[@]}" >"$dir/config/jvm.options"
  echo "=== opensearch.sh start $(date -u +%FT%TZ) ===" >>"$log"
  setsid "$java" ${FJORD_JVM_OPTS:-} "${flags[@]}" -cp "$home/lib/*:$tools" fjord.infra.OpenSearchNode "$home" "$dir/config" \
    >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pids/opensearch.pid"

  local timeout=${FJORD_OPENSEARCH_TIMEOUT:-120} t0=$SECONDS
  until grep -q 'FJORD-OPENSEARCH-STARTED' < <(tail -c "+$from" "$log") &&
        curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$HTTP_PORT/"; do
    if ! fjord_running "$pid"; then
      tail -n 40 "$log" >&2
      rm -f "$dir/pids/opensearch.pid"
      fjord_die "opensearch exited during start-up (log: $log)"
    fi
    if ((SECONDS - t0 >= timeout)); then
      tail -n 40 "$log" >&2
      fjord_stop_group "$dir/pids/opensearch.pid" KILL
      fjord_die "opensearch did not start within $timeout s (log: $log)"
    fi
    sleep 0.3
  done
  printf 'OPENSEARCH_URL=http://127.0.0.1:%s\n' "$HTTP_PORT" >"$dir/opensearch.env"
  cat "$dir/opensearch.env"
  echo "fjord infra: opensearch $OPENSEARCH_VERSION up on 127.0.0.1:$HTTP_PORT in $((SECONDS - t0)) s (pid $pid, dir $dir)" >&2
}

cmd_stop() {
  local dir=$1 sig=TERM
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  fjord_stop_group "$dir/pids/opensearch.pid" "$sig"
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" opensearch
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) usage ;;
esac
