#!/usr/bin/env bash
# rabbitmq.sh — a RabbitMQ node (Debian's rabbitmq-server) on 127.0.0.1 for tests, with its own
# data directory, ports and Erlang port mapper, so that several run side by side and none
# touches the system service.
#
#   rabbitmq.sh start DIR [--port N]
#       First start in DIR: choose free ports (AMQP unless given, Erlang distribution, epmd),
#       write DIR/rabbitmq.conf (AMQP on 127.0.0.1 only, user guest/guest, no plugins), start,
#       wait until the node logs "Server startup complete" and the AMQP port listens. A later
#       start in the same DIR (after `stop`) reuses its ports and data (durable queues and
#       persistent messages survive). Prints `AMQP_URL=amqp://guest:guest@127.0.0.1:PORT/%2f`
#       and writes the same to DIR/rabbitmq.env.
#   rabbitmq.sh stop DIR [--kill]
#       SIGTERM (a clean shutdown; --kill: SIGKILL at once), wait up to 60 s, then SIGKILL; then
#       stop the node's epmd. Data and ports stay.
#   rabbitmq.sh down DIR
#       stop, and release DIR's port reservations. Data and logs stay for inspection.
#   rabbitmq.sh ctl DIR ARGS...
#       rabbitmqctl against the node (e.g. `list_queues name messages`).
#
# DIR layout: rabbitmq.conf, rabbitmq.env, ports.env, data/ (Mnesia and message store),
# logs/ (the node's logs; stdout.log: the server's standard output), pids/, home/ (the Erlang
# cookie).
#
# Environment:
#   FJORD_CACHE            cache root (default ~/.cache/fjord), for port reservations
#   FJORD_RABBITMQ_TIMEOUT seconds to wait for the node to start (default 120)
#   FJORD_E2E_OWNER_PID    if set, a watchdog runs `rabbitmq.sh down DIR` as soon as that process
#                          is gone
# Exit code 3: rabbitmq-server is not installed (scripts/install-deps.sh installs it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

sbin=${FJORD_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}

require_install() {
  if [[ ! -x "$sbin/rabbitmq-server" ]]; then
    echo "fjord infra: $sbin/rabbitmq-server not found; run scripts/install-deps.sh" \
         "(or apt-get install rabbitmq-server)" >&2
    exit 3
  fi
}

# node_env DIR : the environment that makes the server scripts and rabbitmqctl use DIR's node.
node_env() {
  local dir=$1
  # shellcheck source=/dev/null
  source "$dir/ports.env"
  echo "HOME=$dir/home"
  echo "RABBITMQ_NODENAME=fjord-$AMQP_PORT@localhost"
  echo "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
  echo "RABBITMQ_NODE_PORT=$AMQP_PORT"
  echo "RABBITMQ_DIST_PORT=$DIST_PORT"
  echo "ERL_EPMD_PORT=$EPMD_PORT"
  echo "ERL_EPMD_ADDRESS=127.0.0.1"
  echo "RABBITMQ_MNESIA_BASE=$dir/data"
  echo "RABBITMQ_LOG_BASE=$dir/logs"
  echo "RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf"
  echo "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins"
  echo "RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf"
  echo "RABBITMQ_PID_FILE=$dir/pids/beam.pid"
  echo "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
}

stop_epmd() {
  local dir=$1
  [[ -f "$dir/ports.env" ]] || return 0
  # shellcheck source=/dev/null
  source "$dir/ports.env"
  ERL_EPMD_PORT=$EPMD_PORT epmd -kill >/dev/null 2>&1 || true
}

cmd_start() {
  local dir=$1; shift
  local port=""
  while (($#)); do
    case $1 in
      --port) port=$2; shift 2 ;;
      *) fjord_die "rabbitmq.sh start: unknown argument '$1'" ;;
    esac
  done
  require_install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/data" "$dir/home"
  if fjord_pid_alive "$dir/pids/rabbitmq.pid"; then
    cat "$dir/rabbitmq.env"
    return 0
  fi
  [[ -f "$dir/run-id" ]] || echo "rabbitmq-$(date +%s)-$$-$RANDOM" >"$dir/run-id"
  if [[ -f "$dir/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    [[ -z "$port" || "$port" == "$AMQP_PORT" ]] || fjord_die "$dir was set up with port $AMQP_PORT, not $port"
  else
    [[ -n "$port" ]] || port=$(fjord_alloc_port "$dir")
    printf 'AMQP_PORT=%s\nDIST_PORT=%s\nEPMD_PORT=%s\n' "$port" "$(fjord_alloc_port "$dir")" \
      "$(fjord_alloc_port "$dir")" >"$dir/ports.env"
  fi
  # shellcheck source=/dev/null
  source "$dir/ports.env"
  cat >"$dir/rabbitmq.conf" <<CONF
# Test node written by scripts/infra/rabbitmq.sh
listeners.tcp.1 = 127.0.0.1:$AMQP_PORT
loopback_users.guest = true
log.console = false
log.file.level = info
CONF
  echo "[]." >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"

  fjord_start_watchdog "$dir" "$here/rabbitmq.sh"

  local node_log="$dir/logs/fjord-$AMQP_PORT@localhost.log"
  touch "$node_log"
  local from; from=$(($(stat -c %s "$node_log") + 1))
  local -a envs; mapfile -t envs < <(node_env "$dir")
  echo "=== rabbitmq.sh start $(date -u +%FT%TZ) ===" >>"$dir/logs/stdout.log"
  (cd "$dir" && exec setsid env "${envs[@]}" "$sbin/rabbitmq-server") \
    </dev/null >>"$dir/logs/stdout.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pids/rabbitmq.pid"
  local timeout=${FJORD_RABBITMQ_TIMEOUT:-120} t0=$SECONDS
  until grep -q 'Server startup complete' < <(tail -c "+$from" "$node_log") && fjord_listening "$AMQP_PORT"; do
    if ! fjord_running "$pid"; then
      tail -n 30 "$dir/logs/stdout.log" "$node_log" >&2
      rm -f "$dir/pids/rabbitmq.pid"
      stop_epmd "$dir"
      fjord_die "rabbitmq-server exited during start-up (logs: $dir/logs)"
    fi
    if ((SECONDS - t0 >= timeout)); then
      tail -n 30 "$node_log" >&2
      fjord_stop_group "$dir/pids/rabbitmq.pid" KILL 60
      stop_epmd "$dir"
      fjord_die "rabbitmq-server did not start within $timeout s (logs: $dir/logs)"
    fi
    sleep 0.2
  done
  printf 'AMQP_URL=amqp://guest:guest@127.0.0.1:%s/%%2f\n' "$AMQP_PORT" >"$dir/rabbitmq.env"
  cat "$dir/rabbitmq.env"
  echo "fjord infra: rabbitmq up on 127.0.0.1:$AMQP_PORT in $((SECONDS - t0)) s (pid $pid, dir $dir)" >&2
}

cmd_stop() {
  local dir=$1 sig=TERM
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  fjord_stop_group "$dir/pids/rabbitmq.pid" "$sig" 60
  stop_epmd "$dir"
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" rabbitmq
}

cmd_ctl() {
  local dir=$1; shift
  dir="$(cd "$dir" && pwd)"
  local -a envs; mapfile -t envs < <(node_env "$dir")
  exec env "${envs[@]}" "$sbin/rabbitmqctl" "$@"
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  ctl) shift; cmd_ctl "$@" ;;
  *) usage ;;
esac
