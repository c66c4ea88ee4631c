# syntax=docker/dockerfile:1
# The worker image: the `fjord` binary with the built-in jobs, S3 checkpoint storage and the
# RocksDB state backend. The operator runs it as `fjord jobmanager --config ...` and
# `fjord taskmanager --config ...`.
#
#   docker build -f docker/worker.Dockerfile -t fjord/fjord:0.1.0 .
#
# The same image without Docker: `scripts/images/build.sh` (what the tests run, docs/images.md).
# This file runs that script in its build stage (`--rootfs`), so both put exactly the same files
# in the image: the stripped binary in /usr/local/bin, the Debian packages that provide the
# shared libraries `ldd` lists (glibc, libgcc, libstdc++; RocksDB is linked in statically)
# plus ca-certificates and libjemalloc2, /etc/passwd with the user 65532 ("nonroot", no shell). Keep
# the USER, ENTRYPOINT, CMD and EXPOSE below equal to the script's image config.
#
# Users with their own jobs build their own worker binary on `fjord_worker::main_with` and set
# PACKAGE and BIN to its crate and binary (the crate must be a member of the build context's
# workspace; examples/custom-worker is one). FEATURES enables fjord-worker's features through
# the package's dependency on it.

ARG RUST_VERSION=1.90
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN} AS build
ARG PACKAGE=fjord-worker
ARG BIN=fjord
ARG FEATURES=fjord-worker/s3,fjord-worker/hdfs,fjord-worker/rocksdb
# libclang for RocksDB's bindings (RocksDB itself is built from the rocksdb crate's sources with
# the image's g++), jq for the image script, jemalloc (the image preloads it; the script packs
# the installed package).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libclang-dev clang jq libjemalloc2
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p "${PACKAGE}" --bin "${BIN}" --features "${FEATURES}" \
 && CARGO_TARGET_DIR=/src/target FJORD_CACHE=/tmp/fjord-cache scripts/images/build.sh \
      --bin-dir /src/target/release --only worker --worker-package "${PACKAGE}" --worker-bin "${BIN}" \
      --rootfs /out/rootfs

# Nothing but that tree: no shell, no package manager.
FROM scratch
COPY --from=build /out/rootfs/ /
COPY --from=build --chown=65532:65532 /out/rootfs/home/nonroot /home/nonroot
# jemalloc preloaded as in Flink's image (RocksDB's native memory fragments glibc's malloc);
# it serves RocksDB's C++ allocations (Rust's go to the mimalloc compiled into the binary);
# run with LD_PRELOAD= (empty) to use glibc's malloc instead.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
USER 65532:65532
# 8081 REST and 6123 RPC (JobManager); 6121 data, 6122 RPC and 9249 metrics (TaskManager).
EXPOSE 8081 6123 6121 6122 9249
ENTRYPOINT ["/usr/local/bin/fjord"]
CMD ["list"]
