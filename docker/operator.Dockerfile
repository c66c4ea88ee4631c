# syntax=docker/dockerfile:1
# The operator image: the `fjord-operator` controller the Helm chart deploys.
#
#   docker build -f docker/operator.Dockerfile -t fjord/fjord-operator:0.1.0 .   # the Helm chart's default image.repository
#
# The same image without Docker: `scripts/images/build.sh` (what the tests run, docs/images.md).
# This file runs that script in its build stage (`--rootfs`), so both put exactly the same files
# in the image: the stripped binary in /usr/local/bin, the Debian packages that provide the
# shared libraries `ldd` lists (glibc, libgcc) plus ca-certificates, /etc/passwd with the user
# 65532 ("nonroot", no shell). Keep the USER, ENTRYPOINT and EXPOSE below equal to the script's
# image config.

ARG RUST_VERSION=1.90
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p fjord-operator --bin fjord-operator \
 && CARGO_TARGET_DIR=/src/target FJORD_CACHE=/tmp/fjord-cache scripts/images/build.sh \
      --bin-dir /src/target/release --only operator --rootfs /out/rootfs

# Nothing but that tree: no shell, no package manager.
FROM scratch
COPY --from=build /out/rootfs/ /
COPY --from=build --chown=65532:65532 /out/rootfs/home/nonroot /home/nonroot
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
# Health probes and metrics (FJORD_HTTP_ADDR, the chart's metrics.port).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fjord-operator"]
