#!/usr/bin/env bash
# postgres.sh — a PostgreSQL server (Debian's postgresql-15) on 127.0.0.1 for tests, with its own
# data directory, port and Unix socket.
#
#   postgres.sh start DIR [--port N]
#       First start in DIR: choose a free port (unless given), initdb DIR/data (superuser
#       `fjord`, trust authentication for local and loopback connections, UTF8, C locale),
#       start, wait until it accepts connections, create the database `fjord`. A later start in
#       the same DIR (after `stop`) reuses its port and data. Prints
#       `POSTGRES_URL=postgres://fjord@127.0.0.1:PORT/fjord` and writes the same to
#       DIR/postgres.env.
#   postgres.sh stop DIR [--kill]
#       Fast shutdown (SIGINT to the postmaster: clients are disconnected, the data written
#       out), SIGKILL to the whole process group with --kill; wait up to 30 s, then SIGKILL.
#       Data and port stay; a start after --kill recovers from the write-ahead log.
#   postgres.sh down DIR
#       stop, and release DIR's port reservation. Data and logs stay for inspection.
#   postgres.sh psql DIR [ARGS...]
#       Debian's psql as `fjord` on the database `fjord` (-X, ON_ERROR_STOP), for fixtures and
#       checks that do not go through the code under test: `psql DIR -Atc 'SELECT 1'`.
#
# Listens on 127.0.0.1 only (and a Unix socket in DIR). fsync, synchronous_commit and
# full_page_writes are off: a test server trades durability against a machine crash for speed;
# what it acknowledged still survives the server's SIGKILL (the data is in the kernel's page
# cache and the write-ahead log is replayed at the next start).
#
# Root: PostgreSQL refuses to run as root (initdb and postgres both exit). As root, the script
# runs them in a user namespace of their own (`unshare --user`), where root's uid is mapped to
# the unprivileged uid of Debian's `postgres` account (created by the package): PostgreSQL sees
# a non-root user that owns DIR/data, while on the file system every file stays root's (no
# chown, no ACLs on the directories above DIR, no access to anything root cannot reach). As
# any other user, it runs them directly.
#
# DIR layout: postgres.env, ports.env, data/ (the cluster), .s.PGSQL.PORT (the socket),
# logs/postgres.log, pids/postgres.pid.
#
# Environment:
#   FJORD_CACHE           cache root (default ~/.cache/fjord), for port reservations
#   FJORD_E2E_OWNER_PID   if set, a watchdog runs `postgres.sh down DIR` as soon as that process is gone
#   FJORD_POSTGRES_BIN    PostgreSQL's bin directory (default: /usr/lib/postgresql/15/bin, else
#                         the newest /usr/lib/postgresql/*/bin)
# Exit code 3: PostgreSQL is not installed (scripts/install-deps.sh installs postgresql-15).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

bin=${FJORD_POSTGRES_BIN:-}
if [[ -z "$bin" ]]; then
  bin=/usr/lib/postgresql/15/bin
  if [[ ! -x "$bin/postgres" ]]; then
    newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    [[ -n "$newest" ]] && bin=$newest
  fi
fi

require_install() {
  local tool
  for tool in initdb postgres pg_isready psql; do
    if [[ ! -x "$bin/$tool" ]]; then
      echo "fjord infra: $bin/$tool not found; run scripts/install-deps.sh" \
           "(or apt-get install postgresql-15), or point FJORD_POSTGRES_BIN at PostgreSQL's bin directory" >&2
      exit 3
    fi
  done
}

# as_server CMD... : runs CMD as a user PostgreSQL accepts (see "Root" above); exec's it.
as_server() {
  if [[ $(id -u) -ne 0 ]]; then
    exec "$@"
  fi
  local uid gid
  uid=$(id -u postgres 2>/dev/null) || fjord_die "as root, PostgreSQL runs as the uid of the" \
    "'postgres' account, which Debian's postgresql package creates; it is missing (reinstall" \
    "postgresql-15, or run the tests as an unprivileged user)"
  gid=$(id -g postgres)
  exec unshare --user --map-user="$uid" --map-group="$gid" -- "$@"
}

# check_namespaces : fails with a clear message where root cannot make a user namespace.
check_namespaces() {
  [[ $(id -u) -eq 0 ]] || return 0
  local uid out; uid=$(id -u postgres 2>/dev/null || echo 65534)
  if ! out=$(unshare --user --map-user="$uid" -- true 2>&1); then
    fjord_die "PostgreSQL refuses to run as root, and this machine does not let root create a" \
      "user namespace to run it as uid $uid ($out); run the tests as an unprivileged user," \
      "or allow user namespaces (a container needs CAP_SYS_ADMIN or a seccomp profile allowing unshare)"
  fi
}

ready() { "$bin/pg_isready" -q -h 127.0.0.1 -p "$1" -d postgres -U fjord -t 2 >/dev/null 2>&1; }

cmd_start() {
  local dir=$1; shift
  local port=""
  while (($#)); do
    case $1 in
      --port) port=$2; shift 2 ;;
      *) fjord_die "postgres.sh start: unknown argument '$1'" ;;
    esac
  done
  require_install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids"
  if fjord_pid_alive "$dir/pids/postgres.pid"; then
    cat "$dir/postgres.env"
    return 0
  fi
  check_namespaces
  # The socket's path must fit sockaddr_un (107 bytes).
  ((${#dir} <= 90)) || fjord_die "$dir is too long for PostgreSQL's Unix socket in it (at most 90 characters)"
  [[ -f "$dir/run-id" ]] || echo "postgres-$(date +%s)-$$-$RANDOM" >"$dir/run-id"
  if [[ -f "$dir/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    [[ -z "$port" || "$port" == "$POSTGRES_PORT" ]] || fjord_die "$dir was set up with port $POSTGRES_PORT, not $port"
    port=$POSTGRES_PORT
  else
    [[ -n "$port" ]] || port=$(fjord_alloc_port "$dir")
    printf 'POSTGRES_PORT=%s\n' "$port" >"$dir/ports.env"
  fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    rm -rf "$dir/data"
    # initdb's own output goes to the log; it takes ~1-2 s.
    if ! (as_server "$bin/initdb" -D "$dir/data" -U fjord --auth=trust -E UTF8 --locale=C \
          --no-instructions) >>"$dir/logs/initdb.log" 2>&1; then
      tail -n 20 "$dir/logs/initdb.log" >&2
      rm -rf "$dir/data"
      fjord_die "initdb failed (log: $dir/logs/initdb.log)"
    fi
  fi
  # A postmaster killed by `stop --kill` leaves its lock files (data directory, socket);
  # PostgreSQL takes one over only once its pid is gone, and a killed process stays a zombie
  # until init reaps it (lazily on some machines). A lock file whose process is dead or a
  # zombie is stale.
  local lock lock_pid
  for lock in "$dir/data/postmaster.pid" "$dir/.s.PGSQL.$port.lock"; do
    lock_pid=$(head -n1 "$lock" 2>/dev/null || true)
    if [[ -n "$lock_pid" ]] && ! fjord_running "$lock_pid"; then
      rm -f "$lock"
    fi
  done
  fjord_start_watchdog "$dir" "$here/postgres.sh"
  (
    as_server setsid "$bin/postgres" -D "$dir/data" \
      -c listen_addresses=127.0.0.1 -c port="$port" -c unix_socket_directories="$dir" \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
      -c max_connections=200 -c shared_buffers=32MB -c logging_collector=off
  ) </dev/null >>"$dir/logs/postgres.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pids/postgres.pid"
  local t0=$SECONDS
  until ready "$port"; do
    if ! fjord_running "$pid"; then
      tail -n 20 "$dir/logs/postgres.log" >&2
      rm -f "$dir/pids/postgres.pid"
      fjord_die "postgres exited during start-up (log: $dir/logs/postgres.log)"
    fi
    if ((SECONDS - t0 >= 60)); then
      fjord_stop_group "$dir/pids/postgres.pid" KILL
      fjord_die "postgres did not accept connections within 60 s (log: $dir/logs/postgres.log)"
    fi
    sleep 0.05
  done
  if [[ ! -f "$dir/data/.fjord-database" ]]; then
    psql_in "$dir" "$port" postgres -c 'CREATE DATABASE fjord' >/dev/null
    touch "$dir/data/.fjord-database"
  fi
  printf 'POSTGRES_URL=postgres://fjord@127.0.0.1:%s/fjord\n' "$port" >"$dir/postgres.env"
  cat "$dir/postgres.env"
  echo "fjord infra: postgres up on 127.0.0.1:$port (pid $pid, dir $dir)" >&2
}

# psql_in DIR PORT DATABASE ARGS... : psql as fjord over TCP.
psql_in() {
  local dir=$1 port=$2 db=$3; shift 3
  PGCONNECT_TIMEOUT=10 "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U fjord -d "$db" "$@"
}

cmd_psql() {
  local dir=$1; shift
  require_install
  [[ -f "$dir/ports.env" ]] || fjord_die "no server was started in $dir"
  # shellcheck source=/dev/null
  source "$dir/ports.env"
  psql_in "$dir" "$POSTGRES_PORT" fjord "$@"
}

# children_of PID : the pids whose parent is PID.
children_of() {
  local f stat ppid
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    stat=${stat##*) }
    read -r _ ppid _ <<<"$stat"
    [[ "$ppid" == "$1" ]] && { f=${f#/proc/}; echo "${f%/stat}"; }
  done
  return 0
}

cmd_stop() {
  local dir=$1 pid children n=0
  [[ -d "$dir" ]] || return 0
  if [[ "${2:-}" == "--kill" ]]; then
    # The postmaster's children (backends, checkpointer ...) lead process groups of their own;
    # killed with it, none is left holding the shared memory the next start checks.
    children=$(children_of "$(cat "$dir/pids/postgres.pid" 2>/dev/null || echo none)")
    fjord_stop_group "$dir/pids/postgres.pid" KILL
    for pid in $children; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in $children; do
      n=0; while fjord_running "$pid" && ((n++ < 200)); do sleep 0.05; done
    done
    return 0
  fi
  # SIGTERM would be a "smart" shutdown, which waits for every client to disconnect; SIGINT to
  # the postmaster alone is the fast one. Then the group, in case anything is left.
  pid=$(cat "$dir/pids/postgres.pid" 2>/dev/null || true)
  if [[ -n "$pid" ]] && fjord_running "$pid"; then
    kill -INT "$pid" 2>/dev/null || true
    while fjord_running "$pid" && ((n++ < 600)); do sleep 0.05; done
  fi
  fjord_stop_group "$dir/pids/postgres.pid" KILL
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" postgres
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  psql) shift; cmd_psql "$@" ;;
  *) usage ;;
esac
