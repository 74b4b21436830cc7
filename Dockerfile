# statusgate: multi-stage build on Debian 12.
#
#   scripts/image.sh                       (podman; or: docker build -t statusgate .)
#   docker run -p 8080:8080 -v statusgate-data:/var/lib/statusgate \
#              -e STATUSGATE_PUBLISH_TOKEN=change-me statusgate
#
# Package versions are pinned to the Debian 12 (bookworm) versions the project
# is built and tested with. When Debian publishes a security update the old
# version leaves the mirror: update the pins below (dpkg -l shows them).

############################ build ############################
FROM debian:12 AS build

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential=12.9 \
      cmake=3.25.1-1 \
      pkg-config=1.8.1-1 \
      libwebsockets-dev=4.1.6-3 \
      libwebsockets17=4.1.6-3 \
      libwebsockets-evlib-ev=4.1.6-3 \
      libev-dev=1:4.33-1 \
      librabbitmq-dev=0.11.0-1+deb12u3 \
      libjansson-dev=2.14-2 \
      libsqlite3-dev=3.40.1-2+deb12u2 \
      libssl-dev=3.0.22-1~deb12u2 \
 && rm -rf /var/lib/apt/lists/*

# The whole build context: .dockerignore leaves out only what the daemon's
# build never reads (VCS, build trees, tests, benchmarks, docs, deploy files),
# so a file CMakeLists.txt comes to need is copied without editing this file.
# GW_BUILD_TESTS/GW_BUILD_BENCH=OFF keep CMake away from tests/ and bench/;
# tests/integration/image_test.py builds this image in CI, so drift fails there.
WORKDIR /src
COPY . ./

# The install prefix is compiled in as the default --web-dir
# (/usr/share/statusgate/web), so the runtime needs no --web-dir.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
          -DGW_WERROR=ON -DGW_BUILD_TESTS=OFF -DGW_BUILD_BENCH=OFF \
 && cmake --build build -j"$(nproc)" --target statusgate \
 && DESTDIR=/out cmake --install build --strip \
 && /out/usr/bin/statusgate version

# The runtime packages: every package that owns a library the binary links,
# plus the libev plugin lws loads at run time, each pinned to the version
# installed here (so build and runtime match exactly).
RUN { ldd /out/usr/bin/statusgate \
        | awk '$3 ~ /^\// {n = split($3, a, "/"); print "*/" a[n-1] "/" a[n]}' \
        | xargs -r -d '\n' dpkg -S | cut -d: -f1 ; \
      echo libwebsockets-evlib-ev; } \
    | sort -u \
    | xargs dpkg-query -W -f='${Package}=${Version}\n' > /out/runtime-packages \
 && cat /out/runtime-packages

############################ runtime ############################
FROM debian:12-slim

ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && groupadd --system --gid 10001 statusgate \
 && useradd --system --uid 10001 --gid statusgate --home-dir /var/lib/statusgate --shell /usr/sbin/nologin statusgate \
 && install -d -o statusgate -g statusgate -m 0750 /var/lib/statusgate

COPY --from=build /out/usr/bin/statusgate /usr/bin/statusgate
COPY --from=build /out/usr/share/statusgate /usr/share/statusgate

# A fixed, numeric user: Kubernetes' runAsNonRoot can verify it, and the
# manifests in deploy/kubernetes/ set the same uid and fsGroup for the volume.
USER 10001:10001
WORKDIR /var/lib/statusgate
VOLUME /var/lib/statusgate
EXPOSE 8080

# Every option can also be given as STATUSGATE_<NAME> (docker run -e ...);
# the listen address is one too, so `serve --amqp ...` as the command keeps it.
ENV STATUSGATE_LISTEN=0.0.0.0:8080 \
    STATUSGATE_DB=/var/lib/statusgate/statusgate.db

# No curl in the image: bash's /dev/tcp asks /healthz for its status line, on
# the port of STATUSGATE_LISTEN (plain HTTP: with --tls-cert, probe from outside).
# timeout(1) bounds it itself: Debian 12's podman (4.3) does not kill a check
# that overruns --timeout, so a hung gateway would never turn unhealthy there.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["timeout", "2", "bash", "-c", "p=${STATUSGATE_LISTEN##*:}; exec 3<>/dev/tcp/127.0.0.1/${p:-8080} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]

# statusgate handles SIGTERM itself (closes sockets with 1001, commits, exits 0)
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/statusgate"]
CMD ["serve"]
