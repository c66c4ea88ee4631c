#!/usr/bin/env bash
# compare.sh — Nexmark side by side: Fjord (release build of fjord-nexmark) and Apache Flink 2.3
# (the Flink Nexmark benchmark's SQL texts, scripts/infra/flink.sh nexmark) over the same event
# files, exactly-once checkpoints every 10 s, runs interleaved (Fjord then Flink, then Flink then
# Fjord in the next round), both sinks discarding rows (the benchmark's blackhole). Then one
# verification run per query at parallelism 2 with both writing rows, compared as multisets (the
# updating queries q4, q9, q15-q19 by the tables their changelogs leave).
#
#   bench/nexmark/compare.sh [--events N] [--tps R] [--queries "q0 q1 ..."] [--parallelism "1 2"]
#                            [--rounds K] [--work DIR] [--no-verify] [--flink-limit SECONDS]
#
# --flink-limit stops a Flink job that runs longer than SECONDS (Flink's q4 and q7 at
# parallelism 1 over 10 M events run for more than 10 minutes here): its row then shows
# "> SECONDS" for Flink's time and "≥" before the ratios, which are lower bounds (Flink's time
# and CPU until it was stopped); a query whose Flink job went over the limit at parallelism 2 is
# not verified.
#
# Prints a Markdown table (and writes DIR/results.tsv): per query and parallelism the median job
# time of each engine, the ratio Fjord/Flink of events/s per core (events / median seconds /
# parallelism), the CPU time of each (user + system of the whole process, /usr/bin/time), events
# per CPU second and the ratio Fjord/Flink of those, peak RSS, and whether the rows agreed.
# Flink's job time is from submitting the job until it finished (the JVM's start and the SQL
# planning before it are left out); "flink empty" is the same query over an empty file (at
# parallelism 1): its time is the fixed cost of deploying the job inside Flink's job time, and
# its CPU time (the JVM's start, planning, deployment) is taken off Flink's CPU time. The CPU
# figures do not depend on what else the machine runs, the times do.
#
# Needs: scripts/infra/install-flink.sh done; a Rust toolchain. Environment as in HELPERS/docs:
# CARGO_TARGET_DIR (default target/), FJORD_CACHE. FLINK_ORACLE_HEAP defaults to -Xmx2g here.
# FJORD_NEXMARK_BIN runs that fjord-nexmark binary instead of building the release one (build
# it with the default features or `--features mimalloc`: without mimalloc the stateful queries
# take about twice as long; the harness's own test, bench/nexmark/tests/harness.rs, passes
# its debug build).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
events=2000000
tps=100000
queries="q0 q1 q2 q3 q4 q5 q7 q8 q9 q10 q11 q13 q14 q15 q16 q17 q18 q19 q20 q21 q22"
parallelisms="1 2"
rounds=2
work=/tmp/fjord-nexmark-compare
verify=1
flink_limit=0
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$repo/bench/nexmark/lib.sh"
nexmark_options '2,24p' "$@"
nexmark_setup
# q13's side input (the benchmark's: lines i,i for i < 10000) where its SQL text reads it,
# ${FLINK_HOME}/data/side_input.txt, FLINK_HOME taken from FJORD_NEXMARK_FLINK_HOME.
export FJORD_NEXMARK_FLINK_HOME="$work/flink-home"
side_input="$FJORD_NEXMARK_FLINK_HOME/data/side_input.txt"
mkdir -p "$(dirname "$side_input")"
seq 0 9999 | awk '{ print $1 "," $1 }' > "$side_input"
# side_args Q → the extra arguments of Fjord's job for query Q
side_args() { [[ $1 == q13 ]] && echo "--side-input $side_input"; true; }
text() { echo "$repo/bench/nexmark/flink/$1.sql"; }

declare -A fj_t fj_m fj_c fl_t fl_m fl_c fl_e fl_ec fl_over
for ((r = 1; r <= rounds; r++)); do
  for q in $queries; do
    for p in $parallelisms; do
      # shellcheck disable=SC2046 # side_args gives words to split
      if ((r % 2)); then
        read -r t m c < <(run_fjord "$q" "$p" "$(input_for "$p")" $(side_args "$q")); fj_t[$q,$p]+="$t "; fj_m[$q,$p]+="$m "; fj_c[$q,$p]+="$c "
        read -r t m c over < <(run_flink "$(text "$q")" "$p" "$(input_for "$p")"); fl_t[$q,$p]+="$t "; fl_m[$q,$p]+="$m "; fl_c[$q,$p]+="$c "; fl_over[$q,$p]+=$over
      else
        read -r t m c over < <(run_flink "$(text "$q")" "$p" "$(input_for "$p")"); fl_t[$q,$p]+="$t "; fl_m[$q,$p]+="$m "; fl_c[$q,$p]+="$c "; fl_over[$q,$p]+=$over
        read -r t m c < <(run_fjord "$q" "$p" "$(input_for "$p")" $(side_args "$q")); fj_t[$q,$p]+="$t "; fj_m[$q,$p]+="$m "; fj_c[$q,$p]+="$c "
      fi
      log "round $r $q p=$p: fjord ${fj_t[$q,$p]}s ${fj_c[$q,$p]}CPU-s ${fj_m[$q,$p]}KB, flink ${fl_t[$q,$p]}s ${fl_c[$q,$p]}CPU-s ${fl_m[$q,$p]}KB (load $(cut -d' ' -f1 /proc/loadavg))"
    done
  done
done
for q in $queries; do
  read -r t _ c < <(run_flink "$(text "$q")" 1 "$work/empty")
  for p in $parallelisms; do fl_e[$q,$p]=$t; fl_ec[$q,$p]=$c; done
  log "flink $q over an empty file: $t s, $c CPU-s"
done

declare -A same
if ((verify)); then
  for q in $queries; do
    if [[ ${fl_over[$q,2]:-} ]]; then
      same[$q]="not checked (Flink over the limit)"
      continue
    fi
    rm -rf "$work/fjord-out" "$work/chk"
    # shellcheck disable=SC2046 # side_args gives words to split
    "$nx" run "$q" --parallelism 2 --checkpoint-interval-ms 10000 --checkpoint-storage "file://$work/chk" \
      --input "$input" --output "$work/fjord-out" $(side_args "$q") > /dev/null
    rm -rf "$work/chk"
    "$flink" nexmark "$input" print 2 10000 "file://$work/chk" "$repo/bench/nexmark/flink/$q.sql" \
      > "$work/flink-out.txt" 2> "$work/flink.err"
    if summary=$("$nx" compare "$work/fjord-out" "$work/flink-out.txt" "$q"); then
      same[$q]="yes ($(cut -d' ' -f1 <<<"$summary") rows)"
    else
      same[$q]="NO: $summary"
    fi
    log "verify $q: ${same[$q]}"

    rm -rf "$work/fjord-out" "$work/flink-out.txt"
  done
fi

printf '| query | p | Fjord s | Flink s | Flink empty s | Fjord/Flink per core (time) | Fjord CPU s | Flink CPU s (empty) | Fjord events/CPU-s | Flink events/CPU-s | Fjord/Flink (CPU) | peak RSS Fjord, Flink | same rows |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
: > "$work/results.tsv"
for q in $queries; do
  for p in $parallelisms; do
    ft=$(median <<<"${fj_t[$q,$p]}"); lt=$(median <<<"${fl_t[$q,$p]}")
    fm=$(median <<<"${fj_m[$q,$p]}"); lm=$(median <<<"${fl_m[$q,$p]}")
    fc=$(median <<<"${fj_c[$q,$p]}"); lc=$(median <<<"${fl_c[$q,$p]}")
    awk -v q="$q" -v p="$p" -v n="$events" -v ft="$ft" -v lt="$lt" -v le="${fl_e[$q,$p]}" \
        -v fc="$fc" -v lc="$lc" -v lec="${fl_ec[$q,$p]}" \
        -v fm="$fm" -v lm="$lm" -v same="${same[$q]:-not checked}" -v tsv="$work/results.tsv" \
        -v over="${fl_over[$q,$p]:+1}" 'BEGIN {
      fr = n / ft / p; lr = n / lt / p; net = lc - lec; if (net < 0.01) net = 0.01;
      fcr = n / fc; lcr = n / net; ge = over ? "≥ " : ""; gt = over ? "> " : "";
      printf "| %s | %d | %.2f | %s%.2f | %.2f | %s%.1fx | %.2f | %s%.2f (%.2f) | %.2f M | %s%.2f M | %s%.1fx | %.0f, %.0f MB | %s |\n", q, p, ft, gt, lt, le, ge, fr / lr, fc, gt, lc, lec, fcr / 1e6, over ? "< " : "", lcr / 1e6, ge, fcr / lcr, fm / 1024, lm / 1024, same;
      printf "%s\t%d\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\n", q, p, ft, lt, le, fr, lr, fc, lc, lec, fm, lm, same >> tsv }'
  done
done
