#!/usr/bin/env bash
# down.sh RUN_DIR — stop everything up.sh started for RUN_DIR. Idempotent; never fails on
# an already-stopped or half-started run.
#
# 1. SIGTERM to the recorded process groups (node agent first, so it stops its pods, then all
#    others together), wait up to 10 s, then SIGKILL.
# 2. Sweep: any process still carrying this run's FJORD_E2E_RUN_ID in its environment (pod
#    processes orphaned by a killed agent) gets SIGKILL.
# 3. Release the run's port and address reservations (and remove RUN_DIR/run-id, which marks
#    a run as holding reservations).
# Data and logs stay in RUN_DIR for inspection.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ $# -eq 1 ]] || fjord_die "usage: down.sh RUN_DIR"
[[ -d "$1" ]] || exit 0
run="$(cd "$1" && pwd)"

# stop_groups NAME... : SIGTERM the recorded process groups together, wait up to 10 s for all
# of them, SIGKILL what is left.
stop_groups() {
  local name pf pid pids=() n=0 p alive
  for name in "$@"; do
    pf="$run/pids/$name.pid"
    [[ -f "$pf" ]] || continue
    pid=$(cat "$pf" 2>/dev/null)
    rm -f "$pf"
    [[ -n "$pid" ]] && fjord_running "$pid" || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    pids+=("$pid")
  done
  while ((n++ < 200)); do
    alive=0
    for p in "${pids[@]}"; do fjord_running "$p" && alive=1; done
    ((alive)) || return 0
    sleep 0.05
  done
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
}

# The agent first, so that it stops its Pods while the API server is still there; then the rest.
stop_groups watchdog node-agent
# Real kubelet nodes (kubelet-node.sh) likewise, with their containers, bridges and cgroups.
[[ ! -d "$run/real-nodes" ]] || "$here/kubelet-node.sh" down "$run"
stop_groups kube-scheduler kube-controller-manager kube-apiserver minio etcd

if [[ -f "$run/run-id" ]]; then
  id=$(cat "$run/run-id")
  for envf in /proc/[0-9]*/environ; do
    if grep -qzx "FJORD_E2E_RUN_ID=$id" "$envf" 2>/dev/null; then
      pid=${envf#/proc/}; pid=${pid%/environ}
      [[ "$pid" != "$$" && "$pid" != "$PPID" ]] && kill -KILL "$pid" 2>/dev/null
    fi
  done
fi
fjord_release_owned "$run"
rm -f "$run/run-id"
echo "fjord infra: $run is down"
