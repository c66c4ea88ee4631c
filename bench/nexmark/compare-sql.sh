#!/usr/bin/env bash
# compare-sql.sh — Nexmark in SQL: each query's SQL text on Fjord (fjord-sql, `fjord-nexmark sql`)
# and on Apache Flink 2.3 SQL (scripts/infra/flink.sh nexmark), beside the same query as Fjord's
# hand-written DataStream job (`fjord-nexmark run`), all over the same event files, exactly-once
# checkpoints every 10 s, runs interleaved (the engines' order rotates each round), sinks
# discarding rows. Then one verification run per query at parallelism 2: Fjord SQL's rows must
# equal Flink SQL's (compared as multisets).
#
#   bench/nexmark/compare-sql.sh [--events N] [--tps R] [--queries "q0 q1 q2 q5 q7"]
#                                [--parallelism "1 2"] [--rounds K] [--work DIR] [--no-verify]
#
# The SQL text of qN is bench/nexmark/sql/qN.sql where it exists (q5 and q7: window Top-N forms
# of the benchmark's joins, see their headers), else the benchmark's bench/nexmark/flink/qN.sql.
# Prints a Markdown table (and writes DIR/results-sql.tsv): per query and parallelism the median
# job time of each engine, events/s per core (events / median seconds / parallelism), the ratios
# Fjord SQL / Fjord DataStream and Fjord SQL / Flink SQL of events/s per core, the CPU time of
# each (user + system of the whole process; Flink's includes its JVM's start and planning), peak
# RSS, and whether the rows agreed. Job times as in compare.sh (Flink's from submission to the end).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
events=2000000
tps=100000
queries="q0 q1 q2 q5 q7"
parallelisms="1 2"
rounds=3
work=/tmp/fjord-nexmark-compare
verify=1
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$repo/bench/nexmark/lib.sh"
nexmark_options '2,18p' "$@"
((${flink_limit:-0} == 0)) || { echo "--flink-limit is an option of compare.sh only" >&2; exit 2; }
nexmark_setup
text() {
  if [[ -f "$repo/bench/nexmark/sql/$1.sql" ]]; then echo "$repo/bench/nexmark/sql/$1.sql"
  else echo "$repo/bench/nexmark/flink/$1.sql"; fi
}

engines=(ds sql flink)
# one ENGINE Q P → "seconds rss_kb cpu_s"
one() {
  case $1 in
    ds) run_fjord "$2" "$3" "$(input_for "$3")" ;;
    sql) run_fjord_sql "$(text "$2")" "$3" "$(input_for "$3")" ;;
    flink) run_flink "$(text "$2")" "$3" "$(input_for "$3")" ;;
  esac
}
declare -A secs rss cpu
for ((r = 1; r <= rounds; r++)); do
  for q in $queries; do
    for p in $parallelisms; do
      for ((i = 0; i < 3; i++)); do
        e=${engines[$(((i + r) % 3))]}
        read -r t m c < <(one "$e" "$q" "$p"); secs[$e,$q,$p]+="$t "; rss[$e,$q,$p]+="$m "; cpu[$e,$q,$p]+="$c "
      done
      log "round $r $q p=$p: datastream ${secs[ds,$q,$p]}s, sql ${secs[sql,$q,$p]}s, flink ${secs[flink,$q,$p]}s (load $(cut -d' ' -f1 /proc/loadavg))"
    done
  done
done

declare -A same
if ((verify)); then
  for q in $queries; do
    rm -rf "$work/fjord-out" "$work/chk"
    "$nx" sql "$(text "$q")" --parallelism 2 --checkpoint-interval-ms 10000 \
      --checkpoint-storage "file://$work/chk" --input "$input" --output "$work/fjord-out" > /dev/null
    rm -rf "$work/chk"
    "$flink" nexmark "$input" print 2 10000 "file://$work/chk" "$(text "$q")" \
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

printf '| query | p | DataStream s | Fjord SQL s | Flink SQL s | DataStream ev/s/core | Fjord SQL ev/s/core | Flink SQL ev/s/core | SQL / DataStream | Fjord SQL / Flink SQL | CPU s DataStream, SQL, Flink | RSS DataStream, SQL, Flink | same rows as Flink |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
: > "$work/results-sql.tsv"
for q in $queries; do
  for p in $parallelisms; do
    d=$(median <<<"${secs[ds,$q,$p]}"); s=$(median <<<"${secs[sql,$q,$p]}"); f=$(median <<<"${secs[flink,$q,$p]}")
    dm=$(median <<<"${rss[ds,$q,$p]}"); sm=$(median <<<"${rss[sql,$q,$p]}"); fm=$(median <<<"${rss[flink,$q,$p]}")
    dc=$(median <<<"${cpu[ds,$q,$p]}"); sc=$(median <<<"${cpu[sql,$q,$p]}"); fc=$(median <<<"${cpu[flink,$q,$p]}")
    awk -v q="$q" -v p="$p" -v n="$events" -v d="$d" -v s="$s" -v f="$f" -v dm="$dm" -v sm="$sm" \
        -v dc="$dc" -v sc="$sc" -v fc="$fc" -v fm="$fm" -v same="${same[$q]:-not checked}" -v tsv="$work/results-sql.tsv" 'BEGIN {
      dr = n / d / p; sr = n / s / p; fr = n / f / p;
      printf "| %s | %d | %.2f | %.2f | %.2f | %.2f M | %.2f M | %.2f M | %.2fx | %.1fx | %.2f, %.2f, %.2f | %.0f, %.0f, %.0f MB | %s |\n", q, p, d, s, f, dr / 1e6, sr / 1e6, fr / 1e6, sr / dr, sr / fr, dc, sc, fc, dm / 1024, sm / 1024, fm / 1024, same;
      printf "%s\t%d\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", q, p, d, s, f, dr, sr, fr, dm, sm, fm, dc, sc, fc, same >> tsv }'
  done
done
