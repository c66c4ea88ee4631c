#!/usr/bin/env bash
# kinesis.sh — a Kinesis Data Streams server (kinesalite on Node.js, LevelDB store) on
# 127.0.0.1 for tests, with its own data directory and port.
#
#   kinesis.sh start DIR [--port N]
#       First start in DIR: choose a free port (unless given), start kinesalite with its store in
#       DIR/data, wait until it answers. A later start in the same DIR (after `stop`) reuses its
#       port and store, so streams and records survive a stop/start. Prints
#       `KINESIS_ENDPOINT=http://127.0.0.1:PORT` and writes the same to DIR/kinesis.env.
#       Streams go from CREATING/UPDATING to ACTIVE after 50 ms (not 500 ms); up to 50 shards.
#   kinesis.sh stop DIR [--kill]
#       SIGTERM (SIGKILL with --kill), wait up to 30 s, then SIGKILL. Data and port stay.
#   kinesis.sh down DIR
#       stop, and release DIR's port reservation. Data and logs stay for inspection.
#
# The server checks that requests are SigV4-signed but accepts any credentials and region.
# DIR layout: kinesis.env, ports.env, data/ (LevelDB), logs/kinesalite.log, pids/kinesalite.pid.
#
# Environment:
#   FJORD_CACHE          cache root (default ~/.cache/fjord): kinesalite-<version>/ and port reservations
#   FJORD_E2E_OWNER_PID  if set, a watchdog runs `kinesis.sh down DIR` as soon as that process is gone
# Exit code 3: kinesalite is not installed (scripts/infra/install-kinesalite.sh installs it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

home="$(fjord_kinesalite_home)"

require_install() {
  if [[ ! -f "$home/.complete" ]] || ! command -v node >/dev/null 2>&1; then
    echo "fjord infra: kinesalite $KINESALITE_VERSION not installed in $home; run" \
         "scripts/infra/install-kinesalite.sh (or scripts/infra/install.sh)" >&2
    exit 3
  fi
}

# answers PORT : true once the server answers HTTP (an unsigned request gets a 400 error body).
answers() {
  curl -s -o /dev/null -m 2 -X POST -H 'X-Amz-Target: Kinesis_20131202.ListStreams' \
    -H 'Content-Type: application/x-amz-json-1.1' -d '{}' "http://127.0.0.1:$1/"
}

cmd_start() {
  local dir=$1; shift
  local port=""
  while (($#)); do
    case $1 in
      --port) port=$2; shift 2 ;;
      *) fjord_die "kinesis.sh start: unknown argument '$1'" ;;
    esac
  done
  require_install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/data"
  if fjord_pid_alive "$dir/pids/kinesalite.pid"; then
    cat "$dir/kinesis.env"
    return 0
  fi
  [[ -f "$dir/run-id" ]] || echo "kinesis-$(date +%s)-$$-$RANDOM" >"$dir/run-id"
  if [[ -f "$dir/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    [[ -z "$port" || "$port" == "$KINESIS_PORT" ]] || fjord_die "$dir was set up with port $KINESIS_PORT, not $port"
    port=$KINESIS_PORT
  else
    [[ -n "$port" ]] || port=$(fjord_alloc_port "$dir")
    printf 'KINESIS_PORT=%s\n' "$port" >"$dir/ports.env"
  fi
  fjord_start_watchdog "$dir" "$here/kinesis.sh"
  NODE_PATH="$home/node_modules" setsid node "$here/kinesis/server.js" --port "$port" --path "$dir/data" \
    </dev/null >>"$dir/logs/kinesalite.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pids/kinesalite.pid"
  local t0=$SECONDS
  until answers "$port"; do
    if ! fjord_running "$pid"; then
      tail -n 20 "$dir/logs/kinesalite.log" >&2
      rm -f "$dir/pids/kinesalite.pid"
      fjord_die "kinesalite exited during start-up (log: $dir/logs/kinesalite.log)"
    fi
    if ((SECONDS - t0 >= 30)); then
      fjord_stop_group "$dir/pids/kinesalite.pid" KILL
      fjord_die "kinesalite did not answer within 30 s (log: $dir/logs/kinesalite.log)"
    fi
    sleep 0.05
  done
  printf 'KINESIS_ENDPOINT=http://127.0.0.1:%s\n' "$port" >"$dir/kinesis.env"
  cat "$dir/kinesis.env"
  echo "fjord infra: kinesalite up on 127.0.0.1:$port (pid $pid, dir $dir)" >&2
}

cmd_stop() {
  local dir=$1 sig=TERM
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -d "$dir" ]] || return 0
  fjord_stop_group "$dir/pids/kinesalite.pid" "$sig"
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" kinesis
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) usage ;;
esac
