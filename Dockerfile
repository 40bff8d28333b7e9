# syntax=docker/dockerfile:1
#
# One image with every rfm binary: rfm, rfm-coordinator, rfm-worker, rfm-dashboard, rfm-web.
#   docker build -t rfm:local .
# docker-compose.yml runs it as the coordinator, the workers and the tools
# (see docs/DOCKER.md).

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- skeleton
# The workspace's manifests, build scripts and .proto files, with every crate
# root replaced by an empty stand-in. Its content changes only when a manifest
# does, so the dependency layer below stays cached across source edits.
FROM ${RUST_IMAGE} AS skeleton
WORKDIR /src
COPY . .
RUN set -eu; mkdir /skeleton; \
    find . -path ./target -prune -o \
        \( -name Cargo.toml -o -name Cargo.lock -o -name build.rs -o -name '*.proto' \) \
        -type f -print | xargs cp --parents -t /skeleton; \
    find . -path ./target -prune -o \
        \( -path '*/src/main.rs' -o -path '*/src/bin/*.rs' -o -path '*/benches/*.rs' \
           -o -path '*/examples/*.rs' \) -type f -print | while read -r f; do \
        mkdir -p "/skeleton/$(dirname "$f")"; echo 'fn main() {}' > "/skeleton/$f"; done; \
    find . -path ./target -prune -o -path '*/src/lib.rs' -type f -print | while read -r f; do \
        mkdir -p "/skeleton/$(dirname "$f")"; : > "/skeleton/$f"; done

# ---------------------------------------------------------------- build
FROM ${RUST_IMAGE} AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never
# rfm-web: the web dashboard (port 8501).
ARG BINARIES="-p rfm-cli -p rfm-coordinator -p rfm-worker -p rfm-dashboard -p rfm-web"
# The cargo profile: `release` (thin LTO) for the image people run. The
# project's end-to-end test builds `dev` (the tests' profile: the same code
# with fewer optimisations), which takes a fraction of the release build's
# time on 2 cores (docs/DOCKER.md#the-image).
ARG PROFILE=release
# 1. Dependencies only (cached until a Cargo.toml or Cargo.lock changes).
COPY --from=skeleton /skeleton/ ./
RUN cargo build --profile "${PROFILE}" --locked ${BINARIES}
# 2. The workspace's own crates. Sources are touched so cargo rebuilds them
#    over the stand-ins whatever their timestamps in the build context.
COPY . .
RUN find . -path ./target -prune -o -name '*.rs' -type f -exec touch {} + \
    && cargo build --profile "${PROFILE}" --locked ${BINARIES} \
    && built="target/$(if [ "${PROFILE}" = dev ]; then echo debug; else echo "${PROFILE}"; fi)" \
    && mkdir -p /out \
    && cp "$built/rfm" "$built/rfm-coordinator" "$built/rfm-worker" \
          "$built/rfm-dashboard" "$built/rfm-web" /out/

# ---------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --home-dir /results --no-create-home rfm \
    && mkdir -p /results /data \
    && chown rfm:rfm /results
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /results
# gRPC: the coordinator on 50051, each worker (tasks and Arrow Flight) on 50052.
EXPOSE 50051 50052
# The servers stop gracefully on SIGINT (docs/cluster.md#shutdown): a worker
# finishes its running tasks, the coordinator its running jobs (up to
# --drain-timeout, 30 s); give them that long (compose: stop_grace_period).
STOPSIGNAL SIGINT
# Healthy when the coordinator answers (the local one, or the one a worker
# joins: RFM_COORDINATOR); `rfm health` exits non-zero when it does not serve.
# Over TLS when RFM_TLS_CA is set (an address without scheme is then https).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD rfm health "${RFM_COORDINATOR:-127.0.0.1:50051}" > /dev/null || exit 1
CMD ["rfm", "--help"]
