#!/usr/bin/env bash
# containerd.sh — a containerd of its own (Debian's containerd 1.6 with Debian's runc) for tests
# that run Fjord's images as real containers. Each instance has its own root, state and
# sockets under DIR; the package's system service (/run/containerd) is never used, so parallel
# test runs and a system containerd do not collide.
#
#   containerd.sh start DIR
#       Write DIR/config.toml, start containerd, wait until it answers (at most 60 s). A start on
#       a DIR that is up is a no-op. Prints `CONTAINERD_ADDRESS=DIR/containerd.sock` and writes
#       the same to DIR/containerd.env.
#   containerd.sh ctr DIR ARGS...
#       `ctr` on this instance, namespace `fjord` (e.g. `images import worker.oci.tar`).
#   containerd.sh down DIR [--purge]
#       Kill every task of the instance, delete its containers, stop containerd (SIGTERM, SIGKILL
#       after 10 s). --purge also removes DIR (the image content and snapshots).
#
# DIR layout: config.toml, containerd.env, root/ (content store, snapshots), state/,
# containerd.sock, logs/containerd.log, pids/containerd.pid. Keep DIR short: unix socket paths
# are limited to 107 bytes.
#
# Needs root (runc creates namespaces, cgroups and overlay mounts) and cgroups v1 or v2 (the
# hybrid layout works: runc uses the v1 controllers). Exit code 3: containerd, ctr or runc is not
# installed (scripts/install-deps.sh installs them); exit code 4: not root.
# Environment: FJORD_E2E_OWNER_PID — if set, a watchdog runs `containerd.sh down DIR` as soon as
# that process is gone, so a killed test leaves no daemon or container behind.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }

containerd_bin=${FJORD_CONTAINERD:-$(command -v containerd || echo /usr/bin/containerd)}
ctr_bin=${FJORD_CTR:-$(command -v ctr || echo /usr/bin/ctr)}
runc_bin=${FJORD_RUNC:-$(command -v runc || echo /usr/sbin/runc)}
namespace=fjord

require_install() {
  local b
  for b in "$containerd_bin" "$ctr_bin" "$runc_bin"; do
    if [[ ! -x "$b" ]]; then
      echo "fjord infra: $b not found; run scripts/install-deps.sh (or apt-get install containerd runc)" >&2
      exit 3
    fi
  done
  if [[ $(id -u) -ne 0 ]]; then
    echo "fjord infra: containerd.sh needs root (runc creates namespaces, cgroups and overlay" \
         "mounts; rootless containerd is not set up); run the tests as root" >&2
    exit 4
  fi
}

ctr_cmd() { "$ctr_bin" --address "$1/containerd.sock" --namespace "$namespace" "${@:2}"; }

start_watchdog() {
  local dir=$1
  if [[ -n "${FJORD_E2E_OWNER_PID:-}" ]] && ! fjord_pid_alive "$dir/pids/watchdog.pid"; then
    # shellcheck disable=SC2016 # the inner script expands its own arguments
    setsid bash -c '
      while s=$(cat "/proc/$1/stat" 2>/dev/null) && s=${s##*) } && [[ ${s%% *} != Z ]]; do sleep 1; done
      setsid "$2" down "$3" --purge' fjord-containerd-watchdog "$FJORD_E2E_OWNER_PID" \
      "$here/containerd.sh" "$dir" >>"$dir/logs/watchdog.log" 2>&1 </dev/null &
    echo $! >"$dir/pids/watchdog.pid"
  fi
}

cmd_start() {
  local dir=$1
  require_install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local sock="$dir/containerd.sock"
  ((${#sock} < 100)) || fjord_die "socket path $sock is too long for a unix socket; use a shorter DIR"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/root" "$dir/state"
  if fjord_pid_alive "$dir/pids/containerd.pid"; then
    cat "$dir/containerd.env"
    return 0
  fi
  cat >"$dir/config.toml" <<CONF
# Written by scripts/infra/containerd.sh: an instance of its own, no CRI (no kubelet uses it).
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.runtime.v2.task"]
  platforms = ["linux/amd64"]
CONF
  start_watchdog "$dir"
  setsid "$containerd_bin" --config "$dir/config.toml" </dev/null >>"$dir/logs/containerd.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pids/containerd.pid"
  local t0=$SECONDS
  until ctr_cmd "$dir" version >/dev/null 2>&1; do
    if ! fjord_running "$pid"; then
      tail -n 20 "$dir/logs/containerd.log" >&2
      rm -f "$dir/pids/containerd.pid"
      fjord_die "containerd exited during start-up (log: $dir/logs/containerd.log)"
    fi
    if ((SECONDS - t0 >= 60)); then
      kill -KILL -- "-$pid" 2>/dev/null || true
      rm -f "$dir/pids/containerd.pid"
      fjord_die "containerd did not answer within 60 s (log: $dir/logs/containerd.log)"
    fi
    sleep 0.1
  done
  printf 'CONTAINERD_ADDRESS=%s\n' "$sock" >"$dir/containerd.env"
  cat "$dir/containerd.env"
  echo "fjord infra: containerd up on $sock (pid $pid, runc $("$runc_bin" --version | head -n 1))" >&2
}

cmd_down() {
  local dir=$1 purge=0
  [[ "${2:-}" == "--purge" ]] && purge=1
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  local pid; pid=$(cat "$dir/pids/containerd.pid" 2>/dev/null || true)
  if [[ -n "$pid" ]] && fjord_running "$pid"; then
    local task n
    for task in $(ctr_cmd "$dir" tasks ls -q 2>/dev/null); do
      ctr_cmd "$dir" tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1 || true
      n=0
      while ctr_cmd "$dir" tasks ls 2>/dev/null | awk -v t="$task" '$1 == t && $3 == "RUNNING" { f = 1 } END { exit !f }' &&
        ((n++ < 100)); do sleep 0.1; done
      ctr_cmd "$dir" tasks delete -f "$task" >/dev/null 2>&1 || true
    done
    for task in $(ctr_cmd "$dir" containers ls -q 2>/dev/null); do
      ctr_cmd "$dir" containers delete "$task" >/dev/null 2>&1 || true
    done
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    n=0; while fjord_running "$pid" && ((n++ < 200)); do sleep 0.05; done
    fjord_running "$pid" && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$dir/pids/containerd.pid"
  local wpid; wpid=$(cat "$dir/pids/watchdog.pid" 2>/dev/null || true)
  rm -f "$dir/pids/watchdog.pid"
  if [[ -n "$wpid" && "$wpid" != "$$" ]] && fjord_running "$wpid"; then
    kill -TERM -- "-$wpid" 2>/dev/null || true
  fi
  if ((purge)); then
    # Snapshots of deleted containers are unmounted; anything still mounted below DIR is not ours to keep.
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r -n 1 umount -l 2>/dev/null || true
    rm -rf "$dir"
  fi
  echo "fjord infra: containerd in $dir is down" >&2
}

(($# >= 2)) || usage
case $1 in
  start) shift; cmd_start "$@" ;;
  ctr) dir=$2; shift 2; ctr_cmd "$dir" "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) usage ;;
esac
