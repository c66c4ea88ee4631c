#!/usr/bin/env bash
# Installs what building and checking Fjord needs on a fresh machine, and nothing that is
# already there: the Rust components (rustfmt, clippy) and Debian packages for native
# dependencies (libclang for RocksDB's bindings, a C++ compiler for RocksDB's bundled sources),
# the connectors' test servers
# (Redis, RabbitMQ, PostgreSQL), containerd and runc for the image tests, and the dashboard's
# browser tests (Chromium, ChromeDriver, Node.js and npm where missing). The control-plane protocol
# needs no protoc: it is compiled by protox, in Rust.
# Idempotent: a second run only checks and returns.
set -euo pipefail

log() { printf '[deps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    log "installing Rust component ${component}"
    rustup component add "${component}"
  fi
done

missing=()
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
command -v clang >/dev/null 2>&1 || missing+=(clang)
# The RocksDB state backend (state-rocksdb/) builds RocksDB from the rocksdb crate's bundled
# C++ sources and links it statically: it needs a C++ compiler (the Rust toolchain needs `cc`
# only). No system RocksDB library.
command -v c++ >/dev/null 2>&1 || missing+=(g++)
# jemalloc, which the worker image preloads (as Flink's image does): RocksDB's native memory
# fragments glibc's malloc arenas (BENCHMARKS.md, "jemalloc"); scripts/images/build.sh packs it.
dpkg -s libjemalloc2 >/dev/null 2>&1 || missing+=(libjemalloc2)
# The dashboard's browser tests (e2e/tests/dashboard.rs): Playwright from npm drives Debian's
# Chromium (/usr/bin/chromium) headless; Node.js and npm run them (scripts/install-node-deps.sh).
dpkg -s chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s chromium-driver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The connectors' servers for their integration tests (connectors/redis, connectors/rabbitmq):
# Debian's Redis and RabbitMQ. The tests start their own instances on free loopback ports with
# their own data directories (scripts/infra/redis.sh, scripts/infra/rabbitmq.sh); the packages'
# system services are not used.
dpkg -s redis-server >/dev/null 2>&1 || missing+=(redis-server)
dpkg -s rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
# The PostgreSQL connector's server (connectors/postgres): Debian's PostgreSQL 15 binaries
# (initdb, postgres, psql), run by scripts/infra/postgres.sh with its own data directory, port
# and socket (the package's cluster and system service are not used).
dpkg -s postgresql-15 >/dev/null 2>&1 || missing+=(postgresql-15)
# The images as real containers (e2e/tests/images.rs): Debian's containerd 1.6 and runc, run by
# scripts/infra/containerd.sh with their own root, state and socket (the package's system
# service is not used), and what scripts/images/build.sh assembles the images with (jq for the
# OCI JSON; apt-get, dpkg-deb, tar, gzip and binutils' objcopy are already there).
dpkg -s containerd >/dev/null 2>&1 || missing+=(containerd)
dpkg -s runc >/dev/null 2>&1 || missing+=(runc)
command -v jq >/dev/null 2>&1 || missing+=(jq)
# The real kubelet nodes (scripts/infra/kubelet-node.sh, e2e/tests/real_nodes.rs): kube-proxy in
# nftables mode programs ClusterIPs with `nft` (and clears stale UDP flows with `conntrack`);
# the kubelet and the CNI portmap plugin call `iptables`. socat forwards the loopback API server
# and MinIO to the Pods' bridge.
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
# GNU time: the Nexmark harness (bench/nexmark/lib.sh, tested by bench/nexmark/tests/harness.rs)
# takes each run's peak RSS and CPU time from /usr/bin/time.
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
log "build dependencies present"
