#!/usr/bin/env bash
# fuzz.sh — runs the fuzz targets of fuzz/ (cargo fuzz, libFuzzer) for a bounded time each:
# the data port's decoding of a producer connection (data_frames), the REST API's request
# bodies and path parameters (rest_requests), and SQL scripts as a session JobManager plans
# them (sql_scripts). scripts/test.sh runs it after the tests.
#
#   scripts/fuzz.sh                  every target, FJORD_FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh data_frames      named targets only
#
# Builds with the stable toolchain and no sanitizer (`-s none`: Rust code is memory-safe; what
# the fuzzer looks for is panics, hangs and allocations out of proportion to the input), in
# the dev profile so a cold build stays short. cargo-fuzz is installed from crates.io into
# ~/.cache/fjord/tools; the build goes to ~/.cache/fjord/fuzz-target and each target's corpus
# grows in ~/.cache/fjord/fuzz-corpus/<target>, seeded from fuzz/seeds/<target> (and examples/sql for the SQL target). A finding
# fails the script and leaves the input in fuzz/artifacts/<target>/ (reproduce it with
# `cargo fuzz run -s none --dev <target> <file>` in fuzz/).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=infra/lib.sh
source "$root/scripts/infra/lib.sh"
cache="$(fjord_cache)"
version=0.13.2
tool="$cache/tools/cargo-fuzz-$version/bin/cargo-fuzz"
if [[ ! -x "$tool" ]]; then
  cargo install cargo-fuzz --version "$version" --locked --root "$cache/tools/cargo-fuzz-$version" \
    || fjord_die "cannot install cargo-fuzz $version from crates.io"
fi
seconds="${FJORD_FUZZ_SECONDS:-30}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || fjord_die "FJORD_FUZZ_SECONDS must be a positive number of seconds, not '$seconds'"
targets=("$@")
((${#targets[@]})) || targets=(data_frames rest_requests sql_scripts)

cd "$root/fuzz"
export CARGO_TARGET_DIR="$cache/fuzz-target"
cargo fmt --check
"$tool" fuzz build -s none --dev
for target in "${targets[@]}"; do
  [[ -d "seeds/$target" ]] || fjord_die "no fuzz target '$target' (see fuzz/fuzz_targets)"
  corpus="$cache/fuzz-corpus/$target"
  mkdir -p "$corpus"
  echo "fuzz: $target for ${seconds}s (corpus $corpus)" >&2
  log="$cache/fuzz-corpus/$target.log"
  status=0
  # The SQL examples users copy are seeds too.
  extra=()
  [[ "$target" != sql_scripts ]] || extra=("$root/examples/sql")
  "$tool" fuzz run -s none --dev "$target" "$corpus" "seeds/$target" "${extra[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" >&2 || true
  if ((status != 0)); then
    tail -n 40 "$log" >&2
    fjord_die "fuzz target $target found a failing input (exit $status); see fuzz/artifacts/$target/ and $log"
  fi
done
