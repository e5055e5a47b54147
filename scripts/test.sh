#!/usr/bin/env bash
# The test command (README): installs what a fresh Debian machine lacks, builds with warnings as errors, runs
# every test (unit, integration on real memcached), then rebuilds with ASan+UBSan and runs them again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# kube-apiserver, etcd, kubectl, helm for the k8s tier: built once into ~/.cache/memha/k8s (docs/LOCAL_K8S.md).
scripts/k8s-tools/build.sh >/dev/null

cmake -S . -B build -G Ninja -DMEMHA_WERROR=ON >/dev/null
ninja -C build -j2
ctest --test-dir build --output-on-failure --timeout 900

echo "=== ASan + UBSan build ==="
cmake -S . -B build-asan -G Ninja -DMEMHA_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
      -DMEMHA_SANITIZE=address,undefined >/dev/null
ninja -C build-asan -j2
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure --timeout 900 -LE k8s
