# syntax=docker/dockerfile:1.7
# One Dockerfile, one target per service:
#   docker build --target processor -t gateway-processor .
#   docker build --target api       -t gateway-api .
#   docker build --target dashboard -t gateway-dashboard .
#   docker build --target notifier  -t gateway-notifier .
# The builder stage is shared, so the second and third builds reuse it.
# Runtime: debian:bookworm-slim (the binaries link glibc, zlib and OpenSSL), user
# 10001, no shell needed by the services; curl is there for healthchecks.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# Only what the build reads, so docs or deploy changes do not rebuild.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY model model
COPY envelope envelope
COPY store store
COPY runtime runtime
COPY processor processor
COPY api api
COPY dashboard dashboard
COPY benches benches
COPY testkit testkit
COPY notifier notifier
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p processor -p api -p dashboard -p notifier \
      --bin processor --bin api --bin dashboard --bin notifier \
 && mkdir -p /out \
 && cp target/release/processor target/release/api target/release/dashboard target/release/notifier /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl zlib1g libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --no-create-home --shell /usr/sbin/nologin gateway
ENV LOG_FORMAT=json RUST_LOG=info
USER 10001:10001

FROM runtime AS processor
COPY --from=builder /out/processor /usr/local/bin/processor
ENV HTTP_ADDR=0.0.0.0:9101
EXPOSE 9101
ENTRYPOINT ["/usr/local/bin/processor"]

FROM runtime AS api
COPY --from=builder /out/api /usr/local/bin/api
ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
# `docker run IMAGE accounts create --id ... --name ...` runs the CLI instead.
ENTRYPOINT ["/usr/local/bin/api"]
CMD ["serve"]

FROM runtime AS dashboard
COPY --from=builder /out/dashboard /usr/local/bin/dashboard
ENV HTTP_ADDR=0.0.0.0:8081
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/dashboard"]

FROM runtime AS notifier
COPY --from=builder /out/notifier /usr/local/bin/notifier
ENV HTTP_ADDR=0.0.0.0:9102
EXPOSE 9102
ENTRYPOINT ["/usr/local/bin/notifier"]
