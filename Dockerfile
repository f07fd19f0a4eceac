# syntax=docker/dockerfile:1
# Two stages: a Rust toolchain builds the release binary, a slim Debian runs it as a non-root user.
# The dependency graph (SurrealDB is most of a 15-minute cold build) is compiled in its own layer from
# Cargo.toml and Cargo.lock alone, so editing src/ rebuilds only this crate.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /build
# Dependencies only: stub sources with the real manifests.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/load.rs \
 && cargo build --profile dist --locked --bin storefront \
 && rm -rf src benches
# The application itself (schema/ and seed/ are compiled in with include_str!).
COPY src src
COPY schema schema
COPY seed seed
COPY benches benches
RUN touch src/main.rs src/lib.rs && cargo build --profile dist --locked --bin storefront

FROM debian:bookworm-slim AS runtime
# The system's CA certificates: wss:// SurrealDB and rediss:// Redis are verified against them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin storefront \
 && mkdir -p /data \
 && chown storefront /data
# The dist profile (Cargo.toml): stripped, no debug information.
COPY --from=build /build/target/dist/storefront /usr/local/bin/storefront
# Not read at run time (both are compiled in); shipped so the image documents its own schema.
COPY schema /app/schema
COPY seed /app/seed
USER storefront
WORKDIR /app
ENV APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    METRICS_PORT=9091 \
    SURREAL_URL=surrealkv:///data/storefront
# The API, and /metrics for Prometheus (Fly's [metrics] scrapes it over the private network).
EXPOSE 8080 9091
VOLUME ["/data"]
# Graceful shutdown: SIGTERM stops accepting and drains in-flight requests for up to 20 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/storefront"]
CMD ["serve"]
