# The `anno` image: one binary, every role (`anno serve`, `anno serve --service auth`,
# `anno migrate`, `anno healthcheck`). How it is built, run and checked: docs/image.md.
#
#   docker build -t anno .
#   docker run --rm -p 5213:5213 -v anno-data:/data anno
#
# Base images are pinned by version and digest. Dependabot (.github/dependabot.yml)
# proposes new digests; to refresh one by hand:
#   docker buildx imagetools inspect rust:1.95.0-slim-bookworm
# The builder's Debian (bookworm) must not be newer than the runtime's (debian12), or
# the binary asks for a glibc the runtime does not have.

# ---- toolchain: Rust (rust-version in Cargo.toml is the floor; Cargo.lock needs
# 1.89 or newer) and cargo-chef, which turns the manifests into a recipe whose
# dependencies build in their own layer.
FROM rust:1.95.0-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS chef
ARG CARGO_CHEF_VERSION=0.1.77
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
    && rm -rf "${CARGO_HOME}/registry"
WORKDIR /src

# ---- planner: the recipe only changes when a manifest or Cargo.lock does.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---- builder: dependencies first (cached while the recipe is unchanged), then
# the workspace's own crates.
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p anno --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p anno \
    && install -D -m 0755 target/release/anno /out/bin/anno \
    && install -d -m 0750 /out/state/data

# ---- runtime: glibc, libgcc, CA certificates and tzdata, no shell, no package
# manager. uid/gid 10001 owns /data and nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime

ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="anno" \
      org.opencontainers.image.description="Anno Platform: web content extraction for AI agents, as a multi-tenant API." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /out/bin/anno /usr/local/bin/anno
# Copying /out/state/'s contents makes /data itself (mode 0750) owned by 10001; the
# binary stays root's, so the process cannot replace it.
COPY --from=builder --chown=10001:10001 /out/state/ /

# Listen on every interface inside the container; keep the embedded shape's SQLite
# files under /data (mount a volume there). Any other ANNO_* setting can be added
# at run time; secrets as ANNO_<KEY>_FILE pointing at a mounted file.
ENV ANNO_LISTEN=0.0.0.0:5213 \
    ANNO_DATA_DIR=/data
WORKDIR /data
USER 10001:10001
EXPOSE 5213

# `anno healthcheck` exits 0 when http://127.0.0.1:5213/ready answers 200. Docker and
# Compose use this; Kubernetes ignores it and uses the chart's probes instead.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/anno", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/anno"]
CMD ["serve"]
