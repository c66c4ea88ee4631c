#!/usr/bin/env bash
# Raw throughput of the test Kafka broker on this machine, measured with Kafka's own perf tools
# (org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance, i.e. kafka-producer-perf-test
# and kafka-consumer-perf-test): the physical limit a Fjord Kafka -> Kafka job runs against.
#
#   bench/kafka/broker-throughput.sh [RECORDS] [RECORD_BYTES] [PARTITIONS]
#                                    (defaults 2000000 100 4)
#
# Starts its own single-node broker (scripts/infra/kafka.sh) in a temporary directory and runs:
#   1. produce: RECORDS records of RECORD_BYTES into topic `perf-in` (acks=all, idempotent,
#      the producer defaults), as fast as it can;
#   2. consume: all of `perf-in` with one consumer (the rate while fetching, without the group
#      join at the start);
#   3. consume + produce at once: one consumer reading `perf-in` while one producer writes
#      RECORDS records to `perf-out` — what a pass-through job does — on the same broker.
# Prints each tool's summary and a table; stops the broker at the end (also on failure).
# With FJORD_BENCH_KAFKA=<path of the fjord-bench-kafka binary> it then runs Fjord's Kafka jobs
# against the same broker, reading `perf-in` (bench/src/kafka.rs; extra arguments for it in
# FJORD_BENCH_KAFKA_ARGS, e.g. "--parallelism 2 --client 300000"), so the figures sit side by side:
#   cargo build --release -p fjord-bench --bin fjord-bench-kafka
#   FJORD_BENCH_KAFKA=$CARGO_TARGET_DIR/release/fjord-bench-kafka bench/kafka/broker-throughput.sh 1000000 100 4
# Needs scripts/infra/install-kafka.sh to have run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
kafka="$root/scripts/infra/kafka.sh"
records=${1:-2000000}
size=${2:-100}
partitions=${3:-4}

dir=$(mktemp -d "${TMPDIR:-/tmp}/fjord-kafka-bench.XXXXXX")
trap 'bash "$kafka" down "$dir/broker" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

bootstrap=$(bash "$kafka" start "$dir/broker" | sed -n 's/^KAFKA_BOOTSTRAP=//p')
tool() { bash "$kafka" tool "$@"; }
for t in perf-in perf-out; do
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create --topic "$t" \
    --partitions "$partitions" --replication-factor 1 >/dev/null
done

produce() {   # produce TOPIC -> ProducerPerformance's summary line
  tool org.apache.kafka.tools.ProducerPerformance --topic "$1" --num-records "$records" \
    --record-size "$size" --throughput -1 --producer-props bootstrap.servers="$bootstrap" \
    | tail -n 1
}
consume() {   # consume TOPIC GROUP -> ConsumerPerformance's CSV line
  tool org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$bootstrap" --topic "$1" \
    --group "$2" --messages "$records" --timeout 60000 | tail -n 1
}
# rate_p LINE -> records/s of a ProducerPerformance summary
rate_p() { sed -n 's/.* records sent, \([0-9.]*\) records\/sec (\([0-9.]*\) MB\/sec).*/\1 \2/p' <<<"$1"; }
# rate_c LINE -> records/s and MB/s of a ConsumerPerformance CSV line while fetching (fields 10
# and 9: fetch.nMsg.sec, fetch.MB.sec), i.e. without the consumer group's join (rebalance.time.ms)
rate_c() { awk -F', *' '{ print $10, $9 }' <<<"$1"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kafka $(sed -n 's/^KAFKA_VERSION=//p' "$root/scripts/infra/versions.env"), $records records x $size B, $partitions partitions"

p1=$(produce perf-in);   echo "produce:            $p1"
c1=$(consume perf-in g1); echo "consume:            $c1"
consume perf-in g2 >"$dir/c2" & cpid=$!
p2=$(produce perf-out)
wait "$cpid"; c2=$(cat "$dir/c2")
echo "concurrent produce: $p2"
echo "concurrent consume: $c2"

read -r p1r p1m <<<"$(rate_p "$p1")"; read -r c1r c1m <<<"$(rate_c "$c1")"
read -r p2r p2m <<<"$(rate_p "$p2")"; read -r c2r c2m <<<"$(rate_c "$c2")"
echo
echo "| run | records/s | MB/s |"
echo "|---|---|---|"
printf '| produce alone | %.0f | %.1f |\n' "$p1r" "$p1m"
printf '| consume alone | %.0f | %.1f |\n' "$c1r" "$c1m"
printf '| produce, while consuming | %.0f | %.1f |\n' "$p2r" "$p2m"
printf '| consume, while producing | %.0f | %.1f |\n' "$c2r" "$c2m"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n "${FJORD_BENCH_KAFKA:-}" ]]; then
  echo
  echo "Fjord (${FJORD_BENCH_KAFKA}), date $(date -u '+%Y-%m-%d %H:%M UTC'):"
  # shellcheck disable=SC2086 # FJORD_BENCH_KAFKA_ARGS is a list of arguments
  "$FJORD_BENCH_KAFKA" --bootstrap "$bootstrap" --input perf-in --partitions "$partitions" \
    ${FJORD_BENCH_KAFKA_ARGS:-}
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
