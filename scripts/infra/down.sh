#!/usr/bin/env bash
# down.sh RUN_DIR — stop everything up.sh started for RUN_DIR. Idempotent; never fails on
# an already-stopped or half-started run.
#
# 1. SIGTERM to each recorded process group (node agent first, so it stops its pods), wait up
#    to 10 s, then SIGKILL.
# 2. Sweep: any process still carrying this run's FJORD_E2E_RUN_ID in its environment (pod
#    processes orphaned by a killed agent) gets SIGKILL.
# 3. Release the run's port and address reservations.
# Data and logs stay in RUN_DIR for inspection.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ $# -eq 1 ]] || fjord_die "usage: down.sh RUN_DIR"
[[ -d "$1" ]] || exit 0
run="$(cd "$1" && pwd)"

stop_group() { # stop_group NAME
  local pf="$run/pids/$1.pid" pid n=0
  [[ -f "$pf" ]] || return 0
  pid=$(cat "$pf" 2>/dev/null)
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null && ((n++ < 100)); do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pf"
}

for name in watchdog node-agent kube-scheduler kube-controller-manager kube-apiserver minio etcd; do
  stop_group "$name"
done

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
echo "fjord infra: $run is down"
