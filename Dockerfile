# syntax=docker/dockerfile:1
# authd and the example downstream service, built in one builder.
#   docker build -t authd .                              # the authd image (last stage)
#   docker build -t authd-downstream --target downstream .
# Every build command here is one .ci/run also runs, so CI proves it works.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
WORKDIR /src
RUN cargo install cargo-chef --locked --version 0.1.78

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The dependency build, in its own layer: rebuilt only when Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p authd -p downstream \
    && mkdir -p /data /certs

# distroless "nonroot" is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS downstream
COPY --from=builder /src/target/release/downstream /usr/local/bin/downstream
# Where compose mounts the certificates volume (to trust authd's CA).
COPY --from=builder --chown=65532:65532 /certs /certs
ENV DOWNSTREAM_LISTEN=0.0.0.0:50061
EXPOSE 50061
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/downstream"]

FROM gcr.io/distroless/cc-debian12:nonroot AS authd
COPY --from=builder /src/target/release/authd /usr/local/bin/authd
COPY --from=builder --chown=65532:65532 /data /data
# Owned by the runtime user, so a named volume mounted here starts writable for
# `authd tls self-signed --out /certs`.
COPY --from=builder --chown=65532:65532 /certs /certs
# SQLite in the volume by default; docker-compose.yml points it at PostgreSQL instead.
ENV AUTHD_LISTEN=0.0.0.0:50051 \
    AUTHD_DATABASE_URL=sqlite:///data/authd.db?mode=rwc \
    AUTHD_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 50051
USER 65532:65532
# Over TLS when AUTHD_HEALTHCHECK_TLS_CA (and _CERT/_KEY for mutual TLS) name the files, as
# docker-compose.yml does.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/authd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/authd"]
CMD ["serve"]
