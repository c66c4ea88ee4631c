# syntax=docker/dockerfile:1
# The worker image: the `fjord` binary with the built-in jobs. The operator runs it as
# `fjord jobmanager --config /etc/fjord/fjord-conf.yaml` (and later `fjord taskmanager ...`).
#
#   docker build -f docker/worker.Dockerfile -t fjord/fjord:0.1.0 .
#
# Users with their own jobs build their own worker binary on `fjord_worker::main_with` and set
# PACKAGE and BIN to its crate and binary (the crate must be a member of the build context's
# workspace).

ARG RUST_VERSION=1.90
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN} AS build
ARG PACKAGE=fjord-worker
ARG BIN=fjord
# s3:// checkpoint and savepoint storage (MinIO-compatible); a user's package needs its own
# `s3` feature forwarding to fjord-worker/s3, or set FEATURES="".
ARG FEATURES=s3
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p "${PACKAGE}" --bin "${BIN}" --features "${FEATURES}" \
 && install -D -m 0755 "target/release/${BIN}" /out/fjord

# Small runtime layer: glibc and libgcc only, no shell, runs as uid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/fjord /usr/local/bin/fjord
USER 65532:65532
# REST API and /metrics, RPC from TaskManagers (reserved), TaskManager data exchange (later).
# 8081 REST and 6123 RPC (JobManager); 6121 data, 6122 RPC and 9249 metrics (TaskManager).
EXPOSE 8081 6123 6121 6122 9249
ENTRYPOINT ["/usr/local/bin/fjord"]
CMD ["list"]
