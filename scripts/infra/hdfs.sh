#!/usr/bin/env bash
# hdfs.sh — an HDFS cluster on 127.0.0.1 for tests, from the jars install-hadoop.sh cached: a
# NameNode and one DataNode (Hadoop's mini-cluster, one JVM) with their storage in DIR.
#
#   hdfs.sh start DIR [--port N]
#       First start in DIR: choose a free NameNode RPC port (unless given), format the file
#       system, start the cluster (hadoop/src/fjord/infra/MiniHdfs.java) and wait until the
#       NameNode has left safe mode and the DataNode registered. A later start in the same DIR
#       (after `stop`) keeps the port and the files. Prints `HDFS_URL=hdfs://127.0.0.1:PORT`
#       and writes the same to DIR/hdfs.env.
#   hdfs.sh stop DIR [--kill]
#       SIGTERM (a clean shutdown; --kill: SIGKILL at once), wait up to 30 s, then SIGKILL.
#       Files, port and logs stay, so `start DIR` brings the same file system back.
#   hdfs.sh down DIR
#       stop, and release DIR's port reservation. Files and logs stay for inspection.
#   hdfs.sh fs DIR ARGS...
#       Hadoop's own file system shell (`hdfs dfs`) against the cluster: `-ls -R /`,
#       `-cat /path`, `-mkdir -p /path`... A client independent of Fjord's.
#
# DIR layout: hdfs.env, ports.env, dfs/ (NameNode and DataNode storage), conf/core-site.xml
# (fs.defaultFS, for `fs`), logs/hdfs.log (the JVM's output, appended across restarts),
# pids/hdfs.pid.
#
# Environment:
#   FJORD_CACHE          cache root (default ~/.cache/fjord)
#   FJORD_HDFS_TIMEOUT   seconds to wait for the cluster to start (default 120)
#   HDFS_HEAP_OPTS       JVM heap flags (default -Xms64m -Xmx512m)
#   FJORD_E2E_OWNER_PID  if set, a watchdog runs `hdfs.sh down DIR` as soon as that process is
#                        gone
#   FJORD_JAVA, JAVA_HOME  which java to use (see lib.sh fjord_java); needs Java >= 17
# Exit code 3: Hadoop is not installed (run scripts/infra/install-hadoop.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

libs="$(fjord_hadoop_home)/libs"
tools="$(fjord_hadoop_tools_dir "$here")"
require_install() {
  if [[ ! -f "$libs/.complete" || ! -f "$tools/.complete" ]]; then
    echo "fjord infra: Hadoop $HADOOP_VERSION is not installed in $libs; run" \
         "scripts/infra/install-hadoop.sh (or scripts/infra/install.sh)" >&2
    exit 3
  fi
}

cmd_start() {
  local dir=$1; shift
  local port=""
  while (($#)); do
    case $1 in
      --port) port=$2; shift 2 ;;
      *) fjord_die "hdfs.sh start: unknown argument '$1'" ;;
    esac
  done
  require_install
  local java; java=$(fjord_java 17)
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/conf"
  if fjord_pid_alive "$dir/pids/hdfs.pid"; then
    cat "$dir/hdfs.env"
    return 0
  fi
  # A run-id file marks DIR as holding port reservations (lib.sh fjord_reserve); `down` removes it.
  [[ -f "$dir/run-id" ]] || echo "hdfs-$(date +%s)-$$-$RANDOM" >"$dir/run-id"
  if [[ -f "$dir/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    [[ -z "$port" || "$port" == "$NAMENODE_PORT" ]] || fjord_die "$dir was set up with port $NAMENODE_PORT, not $port"
  else
    [[ -n "$port" ]] || port=$(fjord_alloc_port "$dir")
    printf 'NAMENODE_PORT=%s\n' "$port" >"$dir/ports.env"
  fi
  # shellcheck source=/dev/null
  source "$dir/ports.env"
  cat >"$dir/conf/core-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://127.0.0.1:$NAMENODE_PORT</value></property>
</configuration>
XML

  fjord_start_watchdog "$dir" "$here/hdfs.sh"

  local log="$dir/logs/hdfs.log"
  touch "$log"
  local from; from=$(($(stat -c %s "$log") + 1))
  # shellcheck disable=SC2206
  local heap=(${HDFS_HEAP_OPTS:--Xms64m -Xmx512m})
  echo "=== hdfs.sh start $(date -u +%FT%TZ) ===" >>"$log"
  setsid "$java" ${FJORD_JVM_OPTS:-} "${heap[@]}" -Djava.awt.headless=true \
    -cp "$dir/conf:$tools:$libs/*" fjord.infra.MiniHdfs "$dir" "$NAMENODE_PORT" 1 \
    >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pids/hdfs.pid"

  local timeout=${FJORD_HDFS_TIMEOUT:-120} t0=$SECONDS
  until grep -q 'FJORD-HDFS-STARTED' < <(tail -c "+$from" "$log") && fjord_listening "$NAMENODE_PORT"; do
    if ! fjord_running "$pid"; then
      tail -n 40 "$log" >&2
      rm -f "$dir/pids/hdfs.pid"
      fjord_die "the HDFS mini-cluster exited during start-up (log: $log)"
    fi
    if ((SECONDS - t0 >= timeout)); then
      tail -n 40 "$log" >&2
      fjord_stop_group "$dir/pids/hdfs.pid" KILL
      fjord_die "the HDFS mini-cluster did not start within $timeout s (log: $log)"
    fi
    sleep 0.2
  done
  printf 'HDFS_URL=hdfs://127.0.0.1:%s\n' "$NAMENODE_PORT" >"$dir/hdfs.env"
  cat "$dir/hdfs.env"
  echo "fjord infra: hdfs $HADOOP_VERSION up on 127.0.0.1:$NAMENODE_PORT in $((SECONDS - t0)) s (pid $pid, dir $dir)" >&2
}

cmd_stop() {
  local dir=$1 sig=TERM
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  fjord_stop_group "$dir/pids/hdfs.pid" "$sig"
}

cmd_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  cmd_stop "$dir"
  fjord_finish_down "$dir" hdfs
}

cmd_fs() {
  local dir=$1; shift
  require_install
  [[ -f "$dir/conf/core-site.xml" ]] || fjord_die "no HDFS cluster was started in $dir"
  dir="$(cd "$dir" && pwd)"
  local java; java=$(fjord_java 17)
  exec "$java" ${FJORD_JVM_OPTS:-} -Xmx256m -Djava.awt.headless=true -cp "$dir/conf:$libs/*" \
    org.apache.hadoop.fs.FsShell "$@"
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  down) shift; cmd_down "$@" ;;
  fs) shift; cmd_fs "$@" ;;
  *) usage ;;
esac
