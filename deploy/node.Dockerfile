# The gpuflow node as a container image, from a gpuflow-node binary built beforehand.
#
#   cargo build --release --locked -p gpuflow-node
#   mkdir -p /tmp/node-image && cp "$CARGO_TARGET_DIR/release/gpuflow-node" /tmp/node-image/
#   docker build -f deploy/node.Dockerfile -t gpuflow-node /tmp/node-image
#   docker run -d --name gpuflow-node -v gpuflow-node:/data \
#     -p 8080:8080 -p 4001:4001/tcp -p 4001:4001/udp gpuflow-node
#
# The build context is a directory holding only the binary (a context of the checkout
# would send the whole tree to the engine). The binary links against the glibc of the
# machine that built it: BASE must be the same Debian release or a newer one.
#
# Settings: GPUFLOW_* variables (`docker run -e`), flags after the image name, or a
# config file mounted read-only and named with `--config`. The variables set here win
# over a config file, so a mounted node.toml cannot move the data or the HTTP port away
# from what the volume and the health check expect.

ARG BASE=debian:bookworm-slim
FROM ${BASE}

# The binary's name in the build context.
ARG GPUFLOW_NODE_BIN=gpuflow-node

RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin gpuflow \
    && mkdir -p /data \
    && chown gpuflow:gpuflow /data \
    && chmod 0700 /data
COPY ${GPUFLOW_NODE_BIN} /usr/local/bin/gpuflow-node

# The identity key (the node's peer id) and the SQLite index: keep them across upgrades.
VOLUME /data
ENV GPUFLOW_DATA_DIR=/data \
    NO_COLOR=1 \
    GPUFLOW_HTTP=0.0.0.0:8080
# HTTP API; libp2p over TCP and over QUIC (the node's default p2p_listen, on every
# interface).
EXPOSE 8080/tcp 4001/tcp 4001/udp

USER gpuflow
WORKDIR /data

# GET /healthz answers 200 once the index is open. bash's /dev/tcp does the request, so
# the image needs no HTTP client.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${GPUFLOW_HTTP##*:} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/gpuflow-node"]
