#!/usr/bin/env bash
# activemq.sh — an Apache ActiveMQ Classic broker on 127.0.0.1 for tests, from the jars
# install-activemq.sh cached: a STOMP connector (what Fjord's connector speaks), an OpenWire
# connector (what the test tool speaks) and persistent KahaDB storage in DIR.
#
#   activemq.sh start DIR [--port N]
#       First start in DIR: choose free ports (STOMP unless given, OpenWire), start the broker
#       (activemq/src/fjord/infra/ActiveMqBroker.java), wait until it prints that it started
#       and the STOMP port listens. A later start in the same DIR (after `stop`) reuses its
#       ports and data (persistent messages survive, also a --kill). Prints
#       `STOMP_URL=stomp://127.0.0.1:PORT` and `OPENWIRE_URL=tcp://127.0.0.1:PORT`, and writes
#       the same to DIR/activemq.env.
#   activemq.sh stop DIR [--kill]
#       SIGTERM (a clean shutdown; --kill: SIGKILL at once), wait up to 30 s, then SIGKILL.
#       Data, ports and logs stay, so `start DIR` brings the same broker back.
#   activemq.sh down DIR
#       stop, and release DIR's port reservations. Data and logs stay for inspection.
#   activemq.sh tool DIR publish|drain|depth QUEUE
#       The test tool (activemq/src/fjord/infra/ActiveMqTool.java, a JMS client over OpenWire,
#       independent of the connector): `publish` sends one persistent message per stdin line
#       ID<TAB>BODY (ID: the correlation id, none if empty); `drain` takes every message of QUEUE
#       and prints ID<TAB>BODY lines; `depth` prints the messages QUEUE holds (ready and
#       unacknowledged).
#
# DIR layout: activemq.env, ports.env, data/ (KahaDB), logs/activemq.log (the JVM's output,
# appended across restarts), pids/activemq.pid.
#
# Environment:
#   FJORD_CACHE            cache root (default ~/.cache/fjord)
#   FJORD_ACTIVEMQ_TIMEOUT seconds to wait for the broker to start (default 90)
#   ACTIVEMQ_HEAP_OPTS     JVM heap flags (default -Xms64m -Xmx512m)
#   FJORD_E2E_OWNER_PID    if set, a watchdog runs `activemq.sh down DIR` as soon as that process
#                          is gone
#   FJORD_JAVA, JAVA_HOME  which java to use (see lib.sh fjord_java); needs Java >= 17
# Exit code 3: ActiveMQ is not installed (run scripts/infra/install-activemq.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

libs="$(fjord_activemq_home)/libs"
tools="$(fjord_activemq_tools_dir "$here")"
require_install() {
  if [[ ! -f "$libs/.complete" || ! -f "$tools/.complete" ]]; then
    echo "fjord infra: ActiveMQ $ACTIVEMQ_VERSION is not installed in $libs; run" \
         "scripts/infra/install-activemq.sh (or scripts/infra/install.sh)" >&2
    exit 3
  fi
}

cmd_start() {
  local dir=$1; shift
  local port=""
  while (($#)); do
    case $1 in
      --port) port=$2; shift 2 ;;
      *) fjord_die "activemq.sh start: unknown argument '$1'" ;;
    esac
  done
  require_install
  local java; java=$(fjord_java 17)
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/data"
  if fjord_pid_alive "$dir/pids/activemq.pid"; then
    cat "$dir/activemq.env"
    return 0
  fi
  # A run-id file marks DIR as holding port reservations (lib.sh fjord_reserve); `down` removes it.
  [[ -f "$dir/run-id" ]] || echo "activemq-$(date +%s)-$$-$RANDOM" >"$dir/run-id"
  if [[ -f "$dir/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    [[ -z "$port" || "$port" == "$STOMP_PORT" ]] || fjord_die "$dir was set up with port $STOMP_PORT, not $port"
  else
    [[ -n "$port" ]] || port=$(fjord_alloc_port "$dir")
    printf 'STOMP_PORT=%s\nOPENWIRE_PORT=%s\n' "$port" "$(fjord_alloc_port "$dir")" >"$dir/ports.env"
  fi
  # shellcheck source=/dev/null
  source "$dir/ports.env"

  fjord_start_watchdog "$dir" "$here/activemq.sh"

  local log="$dir/logs/activemq.log"
  touch "$log"
  local from; from=$(($(stat -c %s "$log") + 1))
  # shellcheck disable=SC2206
  local heap=(${ACTIVEMQ_HEAP_OPTS:--Xms64m -Xmx512m})
  echo "=== activemq.sh start $(date -u +%FT%TZ) ===" >>"$log"
  setsid "$java" ${FJORD_JVM_OPTS:-} "${heap[@]}" -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/activemq/log4j2.properties" \
    -cp "$libs/*:$tools" fjord.infra.ActiveMqBroker "$dir/data" "$STOMP_PORT" "$OPENWIRE_PORT" \
    >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pids/activemq.pid"

  local timeout=${FJORD_ACTIVEMQ_TIMEOUT:-90} t0=$SECONDS
  until grep -q 'FJORD-ACTIVEMQ-STARTED' < <(tail -c "+$from" "$log") && fjord_listening "$STOMP_PORT"; do
    if ! fjord_running "$pid"; then
      tail -n 40 "$log" >&2
      rm -f "$dir/pids/activemq.pid"
      fjord_die "activemq exited during start-up (log: $log)"
    fi
    if ((SECONDS - t0 >= timeout)); then
      tail -n 40 "$log" >&2
      fjord_stop_group "$dir/pids/activemq.pid" KILL
      fjord_die "activemq did not start within $timeout s (log: $log)"
    fi
    sleep 0.2
  done
  printf 'STOMP_URL=stomp://127.0.0.1:%s\nOPENWIRE_URL=tcp://127.0.0.1:%s\n' "$STOMP_PORT" "$OPENWIRE_PORT" \
    >"$dir/activemq.env"
  cat "$dir/activemq.env"
  echo "fjord infra: activemq $ACTIVEMQ_VERSION up on 127.0.0.1:$STOMP_PORT (STOMP) in $((SECONDS - t0)) s (pid $pid, dir $dir)" >&2
}

cmd_stop() {
  local dir=$1 sig=TERM
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  fjord_stop_group "$dir/pids/activemq.pid" "$sig"
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" activemq
}

cmd_tool() {
  (($# == 3)) || usage
  local dir=$1 what=$2 queue=$3
  require_install
  [[ -f "$dir/ports.env" ]] || fjord_die "no broker was started in $dir"
  # shellcheck source=/dev/null
  source "$dir/ports.env"
  local java; java=$(fjord_java 17)
  exec "$java" ${FJORD_JVM_OPTS:-} -Xmx256m -Djava.awt.headless=true -Dlog4j2.level=WARN \
    -Dlog4j2.configurationFile="$here/activemq/tools-log4j2.properties" \
    -cp "$libs/*:$tools" fjord.infra.ActiveMqTool "$what" "tcp://127.0.0.1:$OPENWIRE_PORT" "$queue"
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  tool) shift; cmd_tool "$@" ;;
  *) usage ;;
esac
