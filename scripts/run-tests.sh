#!/usr/bin/env bash
# Runs every test binary of the workspace (what `cargo test --workspace --all-features` runs),
# FJORD_TEST_JOBS of them at a time (default 3), then the doc tests.
#
#   scripts/run-tests.sh
#   FJORD_TEST_ONLY='^(hdfs|sql_jobs)$' scripts/run-tests.sh   only the binaries whose target
#                                                             name matches (no doc tests)
#
# Much of the suite waits rather than computes (servers starting, checkpoints, brokers,
# Kubernetes control planes), so running several binaries at once takes much less wall time on
# a 2-core machine than cargo's one at a time: measured on 2026-12-05 (2 cores, warm build),
# three at a time took 1339 s where two at a time took ~1770 s. The tests inside a binary keep running
# on that binary's own threads, as under cargo. Every test already runs beside others (unique
# directories, free ports, its own servers), so several binaries at once is the same situation.
#
# Each binary runs in its package's directory with CARGO_MANIFEST_DIR set, as cargo runs it;
# its whole output is printed when it ends, with its time. The longest binaries start first.
# Every binary runs even after a failure; the script then names the failed ones and exits 101,
# as `cargo test` does.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${FJORD_TEST_JOBS:-3}"
# The JVMs the tests start (Kafka, Flink, Hadoop, Cassandra, ActiveMQ, OpenSearch; every
# scripts/infra script passes FJORD_JVM_OPTS to java) compile with C1 only: the servers live
# for seconds to minutes, where C2's compilations cost more CPU than they save. Measured on
# 2026-12-05: protobuf_format and flink_sql_oracle together took 171 CPU-s and 94 s, and 101
# CPU-s and 58 s with C1 only. Set FJORD_JVM_OPTS= (empty) for the JVMs' defaults.
export FJORD_JVM_OPTS="${FJORD_JVM_OPTS--XX:TieredStopAtLevel=1}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "FJORD_TEST_JOBS must be a positive number, not '$jobs'" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is missing (scripts/install-deps.sh installs it)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build (a no-op after scripts/test.sh's build step) and list the test binaries.
cargo test --workspace --all-features --locked --no-run --message-format=json-render-diagnostics \
  > "$work/build.json"
jq -r 'select(.reason == "compiler-artifact" and .executable != null and .profile.test == true)
       | [.target.name, .executable, (.manifest_path | sub("/Cargo.toml$"; "")),
          (if .target.kind == ["test"] then 0 else 1 end)] | @tsv' \
  "$work/build.json" > "$work/all"

# The binaries measured as the longest first (e2e and connector servers, Flink oracles; in
# the order of a full run's times on 2026-12-04, 504 s down to ~45 s), so the last ones to end
# are short; then every other integration test, then the unit tests.
slow=(kafka_exactly_once operator_state hdfs operator_kafka real_nodes activemq fresh_machine
  flink_sql_oracle kafka_broker parquet_flink_oracle protobuf_format
  connectors_killed_task_managers avro_flink_oracle cassandra_sink operator_autoscaler
  golden_savepoints avro_file_flink_oracle dashboard state_release images operator_snapshots
  operator_lifecycle operator_security operator_savepoints operator_high_availability
  kafka_examples distributed)
{
  for name in "${slow[@]}"; do awk -F'\t' -v n="$name" '$1 == n && $4 == 0' "$work/all"; done
  awk -F'\t' 'NR == FNR { skip[$1] = 1; next } !($1 in skip && $4 == 0)' \
    <(printf '%s\n' "${slow[@]}") "$work/all" | sort -s -t$'\t' -k4,4n
} > "$work/queue"
only="${FJORD_TEST_ONLY:-}"
if [[ -n "$only" ]]; then
  awk -F'\t' -v re="$only" '$1 ~ re' "$work/queue" > "$work/only" && mv "$work/only" "$work/queue"
fi
total=$(wc -l < "$work/queue")
echo "running $total test binaries, $jobs at a time" >&2

# Each binary's CPU time (its servers and JVMs included: they inherit its control group), where
# the cgroup v1 cpuacct controller is writable (root on this project's machines); without it the
# summary has wall times only. The CPU time is what to cut when the suite is CPU-bound.
cg_root=""
if [[ -w /sys/fs/cgroup/cpuacct ]] && mkdir "/sys/fs/cgroup/cpuacct/fjord-tests-$$" 2>/dev/null; then
  cg_root="/sys/fs/cgroup/cpuacct/fjord-tests-$$"
  trap 'rm -rf "$work"; rmdir "$cg_root"/* "$cg_root" 2>/dev/null || true' EXIT
fi

declare -A name_of
printed=0
failed=()
declare -A log_of # a failed binary's output, by its name (the doc tests have none)
print_done() {
  local i rc secs
  for ((i = 0; i < total; i++)); do
    [[ -f "$work/$i.rc" && ! -f "$work/$i.printed" ]] || continue
    read -r rc secs cpu < "$work/$i.rc"
    printed=$((printed + 1))
    printf '\n==> [%d/%d] %s: exit %s after %ss (CPU %ss)\n' "$printed" "$total" "${name_of[$i]}" "$rc" "$secs" "$cpu"
    cat "$work/$i.log"
    touch "$work/$i.printed"
    ((rc == 0)) || { failed+=("${name_of[$i]}"); log_of[${name_of[$i]}]="$work/$i.log"; }
  done
}

i=0
while IFS=$'\t' read -r name exe dir _; do
  name_of[$i]="${dir#"$root"/} $name"
  while (($(jobs -rp | wc -l) >= jobs)); do
    wait -n || true
    print_done
  done
  (
    start=$SECONDS
    rc=0
    if [[ -n "$cg_root" ]] && mkdir "$cg_root/$i" 2>/dev/null; then
      echo "$BASHPID" > "$cg_root/$i/cgroup.procs" || true
    fi
    (cd "$dir" && CARGO_MANIFEST_DIR="$dir" exec "$exe") > "$work/$i.log" 2>&1 < /dev/null || rc=$?
    cpu=-
    [[ -r "$cg_root/$i/cpuacct.usage" ]] && cpu=$(($(cat "$cg_root/$i/cpuacct.usage") / 1000000000))
    echo "$rc $((SECONDS - start)) $cpu" > "$work/$i.rc.tmp" && mv "$work/$i.rc.tmp" "$work/$i.rc"
  ) &
  i=$((i + 1))
done < "$work/queue"
while (($(jobs -rp | wc -l) > 0)); do
  wait -n || true
  print_done
done
print_done

# The binaries by time, longest first: what to reorder in `slow` above, or to make quicker.
echo "==> test binaries by time: wall seconds, CPU seconds, binary" >&2
for ((i = 0; i < total; i++)); do
  [[ -f "$work/$i.rc" ]] && printf '%s %s %s\n' "$(cut -d' ' -f2 "$work/$i.rc")" "$(cut -d' ' -f3 "$work/$i.rc")" "${name_of[$i]}"
done | sort -rn | sed -n '1,40p' >&2 # not `head`: it may close the pipe before sort is done (SIGPIPE, and pipefail ends the run)

if [[ -z "$only" ]]; then
  echo "==> doc tests" >&2
  cargo test --workspace --all-features --locked --doc || failed+=("doc tests")
fi

if ((${#failed[@]})); then
  # Each failed binary's panics again, so that the tail of the run (what CI keeps) says why:
  # the full output is above, among the others.
  for name in "${failed[@]}"; do
    [[ -n "${log_of[$name]:-}" ]] || continue
    printf '\n==> why %s failed (its panics; the whole output is above)\n' "$name" >&2
    grep -A 12 -E "^---- |panicked at" "${log_of[$name]}" | grep -v -E '^ +([0-9]+: | +at )' \
      | sed -n '1,60p' >&2 || true
  done
  printf '\nfailed test binaries (%d):\n' "${#failed[@]}" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 101
fi
if [[ -z "$only" ]]; then
  echo "all $total test binaries and the doc tests passed" >&2
else
  echo "all $total test binaries matching '$only' passed" >&2
fi
