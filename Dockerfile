# syntax=docker/dockerfile:1
#
# One image for every Helios role: `helios operator`, `helios ingest`, `helios detect`, ...
# (the Helm chart runs the operator from it and, by default, the workers too).
#
#   docker build -t ghcr.io/helios-dev/helios:0.1.0 .
#   docker run --rm ghcr.io/helios-dev/helios:0.1.0 --help
#
# NOT BUILT HERE: the development machine has no container engine and no registry access, so
# this file is not exercised by the test suite. It is kept conventional so it builds wherever
# Docker/BuildKit (or podman/buildah/kaniko) is available.

ARG RUST_VERSION=1.95.0

# ---- build -------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
# librdkafka is compiled by rdkafka-sys (make, a C/C++ compiler, cmake, perl, zlib, OpenSSL).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libssl-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p helios \
 && install -D -m 0755 target/release/helios /out/helios \
 && mkdir -p /out/lib \
 && cp "$(ldd /out/helios | awk '/libz\.so/ {print $3}')" /out/lib/

# ---- runtime -----------------------------------------------------------------------------
# distroless/cc: glibc, libgcc, OpenSSL 3 and CA certificates; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/lib/ /usr/lib/
COPY --from=build /out/helios /usr/local/bin/helios
# 65532:65532 (nonroot), matching the chart's securityContext.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["helios"]
CMD ["--help"]
