# Build: docker build -t gatehouse .
# Run:   docker run -p 8080:8080 -v $PWD/proxy.conf:/etc/gatehouse/proxy.conf:ro gatehouse
# The config is read from /etc/gatehouse/proxy.conf; inside a container it must listen on
# 0.0.0.0 (server.listen) to be reachable. The admin port stays on 127.0.0.1 for the
# HEALTHCHECK unless you publish it deliberately.

FROM swift:6.1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcurl4-openssl-dev libssl-dev libsqlite3-dev libmimalloc-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product gatehouse --static-swift-stdlib \
    && install -D .build/release/gatehouse /out/gatehouse

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcurl4 libsqlite3-0 libmimalloc2.0 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/gatehouse --create-home gatehouse \
    && mkdir -p /etc/gatehouse
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
USER gatehouse
WORKDIR /var/lib/gatehouse
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
ENTRYPOINT ["gatehouse"]
CMD ["serve", "--config", "/etc/gatehouse/proxy.conf"]
