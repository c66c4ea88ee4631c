#!/usr/bin/env bash
# redis.sh — a Redis server (Debian's redis-server) on 127.0.0.1 for tests, with its own data
# directory and port.
#
#   redis.sh start DIR [--port N]
#       First start in DIR: choose a free port (unless given), write DIR/redis.conf (append-only
#       file with fsync on every write, so acknowledged writes survive a kill; no RDB
#       snapshots), start, wait until it answers PING. A later start in the same DIR (after
#       `stop`) reuses its port and data. Prints `REDIS_URL=redis://127.0.0.1:PORT/` and writes
#       the same to DIR/redis.env.
#   redis.sh stop DIR [--kill]
#       SIGTERM (SIGKILL with --kill), wait up to 30 s, then SIGKILL. Data and port stay.
#   redis.sh down DIR
#       stop, and release DIR's port reservation. Data and logs stay for inspection.
#
# DIR layout: redis.conf, redis.env, ports.env, data/ (appendonly files), logs/redis.log,
# pids/redis.pid.
#
# Environment:
#   FJORD_CACHE          cache root (default ~/.cache/fjord), for port reservations
#   FJORD_E2E_OWNER_PID  if set, a watchdog runs `redis.sh down DIR` as soon as that process is gone
# Exit code 3: redis-server is not installed (scripts/install-deps.sh installs it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

server=${FJORD_REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
cli=${FJORD_REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}

require_install() {
  if [[ ! -x "$server" || ! -x "$cli" ]]; then
    echo "fjord infra: redis-server/redis-cli not found; run scripts/install-deps.sh" \
         "(or apt-get install redis-server)" >&2
    exit 3
  fi
}

cmd_start() {
  local dir=$1; shift
  local port=""
  while (($#)); do
    case $1 in
      --port) port=$2; shift 2 ;;
      *) fjord_die "redis.sh start: unknown argument '$1'" ;;
    esac
  done
  require_install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/data"
  if fjord_pid_alive "$dir/pids/redis.pid"; then
    cat "$dir/redis.env"
    return 0
  fi
  [[ -f "$dir/run-id" ]] || echo "redis-$(date +%s)-$$-$RANDOM" >"$dir/run-id"
  if [[ -f "$dir/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    [[ -z "$port" || "$port" == "$REDIS_PORT" ]] || fjord_die "$dir was set up with port $REDIS_PORT, not $port"
    port=$REDIS_PORT
  else
    [[ -n "$port" ]] || port=$(fjord_alloc_port "$dir")
    printf 'REDIS_PORT=%s\n' "$port" >"$dir/ports.env"
  fi
  cat >"$dir/redis.conf" <<CONF
# Test server written by scripts/infra/redis.sh
bind 127.0.0.1
port $port
protected-mode no
daemonize no
dir $dir/data
logfile $dir/logs/redis.log
save ""
appendonly yes
appendfsync always
CONF
  fjord_start_watchdog "$dir" "$here/redis.sh"
  setsid "$server" "$dir/redis.conf" </dev/null >>"$dir/logs/redis.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pids/redis.pid"
  local t0=$SECONDS
  until [[ "$("$cli" -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; do
    if ! fjord_running "$pid"; then
      tail -n 20 "$dir/logs/redis.log" >&2
      rm -f "$dir/pids/redis.pid"
      fjord_die "redis-server exited during start-up (log: $dir/logs/redis.log)"
    fi
    if ((SECONDS - t0 >= 30)); then
      fjord_stop_group "$dir/pids/redis.pid" KILL
      fjord_die "redis-server did not answer PING within 30 s (log: $dir/logs/redis.log)"
    fi
    sleep 0.05
  done
  printf 'REDIS_URL=redis://127.0.0.1:%s/\n' "$port" >"$dir/redis.env"
  cat "$dir/redis.env"
  echo "fjord infra: redis up on 127.0.0.1:$port (pid $pid, dir $dir)" >&2
}

cmd_stop() {
  local dir=$1 sig=TERM
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -d "$dir" ]] || return 0
  fjord_stop_group "$dir/pids/redis.pid" "$sig"
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" redis
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) usage ;;
esac
