#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs build dependencies and the test
# infrastructure (Kubernetes control plane, MinIO, Helm; built once and cached under
# ~/.cache/fjord), checks formatting and lints, then runs every test including the
# end-to-end ones, which start and stop their own servers.
#
#   scripts/test.sh            everything
#   scripts/test.sh -p fjord   extra arguments go to `cargo test`
#
# Environment: FJORD_CACHE (default ~/.cache/fjord) holds the Rust build output and the
# built tools, so later runs are quick.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export FJORD_CACHE="${FJORD_CACHE:-$HOME/.cache/fjord}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FJORD_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One build from a clean target directory: incremental compilation data would only cost disk
# (13 GB for the workspace) and time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# fjord-rocksdb builds RocksDB from the crate's bundled sources (once; the build is cached in
# the target directory). A ROCKSDB_LIB_DIR left in the environment would make it link a system
# library instead, of another RocksDB version.
unset ROCKSDB_LIB_DIR ROCKSDB_STATIC
mkdir -p "$FJORD_CACHE"

step() {
  local name="$1"
  shift
  local start=$SECONDS rc=0
  printf '\n==> %s\n' "$name" >&2
  # `|| rc=$?`, not set -e: a step called as `step ... || x` would otherwise run on after a
  # failure and report success.
  "$@" || rc=$?
  if ((rc == 0)); then
    printf '<== %s done in %ds\n' "$name" $((SECONDS - start)) >&2
  else
    printf '<== %s FAILED (exit %d) after %ds\n' "$name" "$rc" $((SECONDS - start)) >&2
  fi
  return "$rc"
}

step "build dependencies" scripts/install-deps.sh
step "dashboard npm packages" scripts/install-node-deps.sh
step "format check" cargo fmt --all -- --check
# Lints during the tests' own build, not in a separate `cargo clippy`: clippy-driver (what
# `cargo clippy` runs) wraps rustc for the workspace's crates only and compiles them for real,
# so the dependencies are built once instead of once checked and once built (a cold clippy
# pass cost 15-20 min on 2 cores). The lints and the deny level are `cargo clippy --all-targets
# -- -D warnings`'s; CLIPPY_ARGS is how cargo-clippy hands its arguments to the driver.
clippy_driver="$(rustup which clippy-driver 2>/dev/null || true)"
[[ -x "$clippy_driver" ]] || clippy_driver="$(dirname "$(command -v cargo-clippy)")/clippy-driver"
[[ -x "$clippy_driver" ]] || { echo "clippy-driver not found: rustup component add clippy" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The test infrastructure (servers and tools built from Go modules, jars from Maven Central,
# packages from npm: minutes of downloads on a fresh machine) installs meanwhile, into its own
# log, printed when it is waited for.
infra_log="$FJORD_CACHE/install-infrastructure.log"
scripts/infra/install.sh > "$infra_log" 2>&1 &
infra_pid=$!
trap 'kill "$infra_pid" 2>/dev/null || true' EXIT
wait_for_infrastructure() {
  if wait "$infra_pid"; then
    tail -n 25 "$infra_log" >&2
  else
    cat "$infra_log" >&2
    echo "scripts/infra/install.sh failed (log above, and in $infra_log)" >&2
    return 1
  fi
}
# --timings: each crate's compile time, in $CARGO_TARGET_DIR/cargo-timings/ (what to look at when
# the build gets slower).
step "build and lints" cargo test --workspace --all-targets --all-features --locked --no-run --timings
step "test infrastructure" wait_for_infrastructure
# With arguments, plain `cargo test` with them (no fuzzing).
if (($# > 0)); then
  step "tests" cargo test --workspace --all-features --locked "$@"
  exit 0
fi
# Fuzzing, bounded (FJORD_FUZZ_SECONDS per target, default 30), runs beside the tests at the
# lowest CPU priority: its cold build (cargo-fuzz, then the engine and the SQL planner with
# every connector, all instrumented for coverage: a second compile of most dependencies) took
# minutes of CI time after the tests, while the tests mostly wait for servers and JVMs.
fuzz_log="$FJORD_CACHE/fuzz.log"
nice -n 19 scripts/fuzz.sh > "$fuzz_log" 2>&1 &
fuzz_pid=$!
trap 'kill "$infra_pid" "$fuzz_pid" 2>/dev/null || true' EXIT
wait_for_fuzzing() {
  if wait "$fuzz_pid"; then
    cat "$fuzz_log" >&2
  else
    cat "$fuzz_log" >&2
    echo "scripts/fuzz.sh failed (log above, and in $fuzz_log)" >&2
    return 1
  fi
}
# The whole suite runs three test binaries at a time (scripts/run-tests.sh). A failed test does
# not stop the fuzzing's report: both results are printed, then the first failure is the exit.
tests_rc=0
step "tests" scripts/run-tests.sh || tests_rc=$?
fuzz_rc=0
step "fuzz (ran beside the tests)" wait_for_fuzzing || fuzz_rc=$?
((tests_rc == 0)) || exit "$tests_rc"
exit "$fuzz_rc"
