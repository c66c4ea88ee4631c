# lib.sh — what compare.sh and compare-sql.sh share: their options, building fjord-nexmark
# (release), the event files, and one timed run of each engine. The caller sets repo and the
# options' defaults (events, tps, queries, parallelisms, rounds, work, verify), then calls
# `nexmark_options LINES "$@"` (LINES: the sed range of its usage comment) and
# `nexmark_setup`, which sets nx, flink and input. Also defines log, run_fjord, run_fjord_sql,
# run_flink, median. Each run gives "seconds rss_kb cpu_s": the job's time, the process's peak
# RSS and its CPU time (user + system, every thread: for Flink the whole JVM, its start and
# the SQL planning included).
# shellcheck shell=bash disable=SC2154,SC2034 # the caller sets the defaults and reads the results

log() { printf '[%s %s] %s\n' "$(basename "$0" .sh)" "$(date +%H:%M:%S)" "$*" >&2; }

# nexmark_options USAGE-LINES ARGS... → sets the options given, or prints the usage and exits 2
nexmark_options() {
  local usage=$1; shift
  while (($#)); do
    case $1 in
      --events) events=$2; shift 2 ;;
      --tps) tps=$2; shift 2 ;;
      --queries) queries=$2; shift 2 ;;
      --parallelism) parallelisms=$2; shift 2 ;;
      --rounds) rounds=$2; shift 2 ;;
      --work) work=$2; shift 2 ;;
      --no-verify) verify=0; shift ;;
      --flink-limit) flink_limit=$2; shift 2 ;;
      *) sed -n "$usage" "$0" >&2; exit 2 ;;
    esac
  done
}

# nexmark_setup → builds fjord-nexmark (or takes FJORD_NEXMARK_BIN, a binary built already: the
# harness's test passes its debug build, whose times mean nothing) and writes the events once
# per number of files; sets nx, flink, input (2 files, for the verification runs at
# parallelism 2); input_for P gives the timed runs' events at parallelism P: the same events in
# P files, so that each source subtask reads one file whose events ascend in time. (One
# subtask reading two files, each holding every other event, reads the second file's events
# seconds of event time behind the watermark the first file set: half the events late, and
# results that depend on timing.)
nexmark_setup() {
  export FLINK_ORACLE_HEAP="${FLINK_ORACLE_HEAP:--Xmx2g}"
  target="${CARGO_TARGET_DIR:-$repo/target}"

  if [[ ${FJORD_NEXMARK_BIN:-} ]]; then
    nx=$FJORD_NEXMARK_BIN
  else
    log "building fjord-nexmark (release)"
    (cd "$repo" && cargo build --release -q -p fjord-nexmark --bin fjord-nexmark)
    nx="$target/release/fjord-nexmark"
  fi
  flink="$repo/scripts/infra/flink.sh"
  mkdir -p "$work"
  local files dir
  for files in $(printf '%s\n' 2 $parallelisms | sort -un); do
    dir="$work/events-$events-$tps-files-$files"
    if [[ ! -f "$dir/.complete" ]]; then
      rm -rf "$dir"
      log "generating $events events (tps $tps) into $files file(s)"
      "$nx" generate --dir "$dir" --files "$files" --events.num "$events" --tps "$tps" >&2
      touch "$dir/.complete"
    fi
  done
  input="$(input_for 2)"
  mkdir -p "$work/empty" && : > "$work/empty/events-0.json"
}

# input_for P → the directory of the events in P files (see nexmark_setup)
input_for() { echo "$work/events-$events-$tps-files-$1"; }
# seconds_of JSON-LINE → the value of its "seconds" key
seconds_of() { sed -E 's/.*"seconds":([0-9.]+).*/\1/' <<<"$1"; }
# timed CMD... → runs CMD under /usr/bin/time, which writes its resource use to $work/usage
timed() { /usr/bin/time -f '%M %U %S' -o "$work/usage" "$@"; }
# last_usage → "rss_kb cpu_s" of the last timed command (its file's last line: time writes a
# line before it when the command failed)
last_usage() { awk 'END { printf "%s %.2f", $1, $2 + $3 }' "$work/usage"; }

# run_fjord Q P INPUT [EXTRA ARGS...] → "seconds rss_kb cpu_s" of the DataStream job nexmark-Q
run_fjord() {
  local q=$1 p=$2 in=$3 out; shift 3; rm -rf "$work/chk"
  out=$(timed "$nx" run "$q" --parallelism "$p" \
    --checkpoint-interval-ms 10000 --checkpoint-storage "file://$work/chk" \
    --input "$in" --blackhole "$@")
  echo "$(seconds_of "$out") $(last_usage)"
}
# run_fjord_sql FILE P INPUT → "seconds rss_kb cpu_s" of the SQL text FILE on fjord-sql
run_fjord_sql() {
  local out; rm -rf "$work/chk"
  out=$(timed "$nx" sql "$1" --parallelism "$2" \
    --checkpoint-interval-ms 10000 --checkpoint-storage "file://$work/chk" --input "$3")
  echo "$(seconds_of "$out") $(last_usage)"
}
# run_flink FILE P INPUT → "seconds rss_kb cpu_s" of the SQL text FILE on Flink SQL; with
# flink_limit (seconds, 0 = none) set, a job still running after that long is stopped and the
# answer is "LIMIT rss_kb cpu_s over": the time and CPU so far, lower bounds of Flink's
run_flink() {
  local err rc=0 job watcher=; rm -rf "$work/chk" "$work/flink.stopped"
  timed "$flink" nexmark "$3" blackhole "$2" 10000 \
    "file://$work/chk" "$1" > /dev/null 2> "$work/flink.err" &
  job=$!
  if ((${flink_limit:-0} > 0)); then
    (sleep "$flink_limit" && touch "$work/flink.stopped" && kill_jvms_under "$job") &
    watcher=$!
  fi
  wait "$job" || rc=$?
  [[ $watcher ]] && { pkill -P "$watcher"; kill "$watcher"; wait "$watcher"; } 2> /dev/null || true
  if [[ -f $work/flink.stopped ]]; then
    log "flink $(basename "$1" .sql) p=$2: stopped after the limit of $flink_limit s"
    echo "$flink_limit $(last_usage) over"
    return 0
  fi
  ((rc == 0)) || { cat "$work/flink.err" >&2; return 1; }
  err=$(grep NEXMARK-RESULT "$work/flink.err")
  echo "$(seconds_of "$err") $(last_usage)"
}
# kill_jvms_under PID → kills the JVMs among PID's descendants. Only the JVM: the script that
# started it then reaps it (so its CPU time and peak RSS count in the usage `timed` reports)
# and cleans up. (`timeout` stopped the script instead, which left the JVM running on alone.)
kill_jvms_under() {
  local child
  for child in $(pgrep -P "$1"); do
    if [[ $(ps -o comm= -p "$child") == java ]]; then kill -KILL "$child"; else kill_jvms_under "$child"; fi
  done
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
