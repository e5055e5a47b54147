# syntax=docker/dockerfile:1
# One image with both binaries: memha-controller (the Deployment) and memha-sidecar (injected into app pods).
#   docker build -t memha:0.1.0 .
#   docker build --build-arg RUN_TESTS=1 -t memha:0.1.0 .     # also runs the unit tests in the build stage

# ---------------------------------------------------------------- build
FROM debian:bookworm AS build
ARG RUN_TESTS=0
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libevent-dev libcpp-httplib-dev nlohmann-json3-dev prometheus-cpp-dev libssl-dev libyaml-cpp-dev \
      googletest libgtest-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# RelWithDebInfo (-O2, stripped below): the build CI tests with -Werror. GCC 12 at -O3 (Release) reports a
# false -Wrestrict inside std::string (GCC bug 105329) in sidecar/protocol/request.cc, which -Werror turns fatal.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMHA_WERROR=ON \
 && ninja -C /build memha-sidecar memha-controller \
 && if [ "$RUN_TESTS" = 1 ]; then \
      ninja -C /build && ctest --test-dir /build --output-on-failure -E 'k8s|integration'; \
    fi \
 && strip /build/sidecar/memha-sidecar /build/controller/memha-controller

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7 libevent-pthreads-2.1-7 \
      libcpp-httplib0.11 libprometheus-cpp-core1.0 libssl3 libyaml-cpp0.7 zlib1g libbrotli1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 memha \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin memha
COPY --from=build /build/sidecar/memha-sidecar /build/controller/memha-controller /usr/local/bin/
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 65532:65532
# The chart and the injected sidecar name the binary in `command`; plain `docker run` prints the sidecar's help.
CMD ["memha-sidecar", "--help"]
