# syntax=docker/dockerfile:1
# The operator image: the `fjord-operator` controller the Helm chart deploys.
#
#   docker build -f docker/operator.Dockerfile -t fjord/fjord-operator:0.1.0 .   # the Helm chart's default image.repository

ARG RUST_VERSION=1.90
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p fjord-operator --bin fjord-operator \
 && install -D -m 0755 target/release/fjord-operator /out/fjord-operator

# Small runtime layer: glibc and libgcc only, no shell, runs as uid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/fjord-operator /usr/local/bin/fjord-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/fjord-operator"]
