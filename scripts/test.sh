#!/usr/bin/env bash
# The test command (README): installs what a fresh Debian machine lacks, builds with warnings as errors, runs
# every test (unit, integration on real memcached, the Kubernetes tier on a real kube-apiserver, the benchmark
# harness smoke run), then rebuilds with ASan+UBSan and runs them again (without the Kubernetes tier), then
# builds the threaded parts with TSan (controller, sidecar admin/boot threads) and runs their tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# kube-apiserver, etcd, kubectl, helm for the k8s tier: built once into ~/.cache/memha/k8s (docs/LOCAL_K8S.md).
scripts/k8s-tools/build.sh >/dev/null
# promtool and prometheus for the monitoring tests (ctest -L monitoring): built once into ~/.cache/memha/monitoring.
scripts/monitoring-tools/build.sh --server >/dev/null

cmake -S . -B build -G Ninja -DMEMHA_WERROR=ON >/dev/null
ninja -C build -j2
ctest --test-dir build --output-on-failure --timeout 900

echo "=== ASan + UBSan build ==="
cmake -S . -B build-asan -G Ninja -DMEMHA_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
      -DMEMHA_SANITIZE=address,undefined >/dev/null
ninja -C build-asan -j2
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure --timeout 900 -LE k8s

echo "=== TSan: the threaded parts (controller components; the sidecar's admin and boot threads) ==="
cmake -S . -B build-tsan -G Ninja -DMEMHA_WERROR=ON -DCMAKE_BUILD_TYPE=Debug -DMEMHA_SANITIZE=thread >/dev/null
tsan_targets=(memha-sidecar controller_store controller_kube controller_watch controller_leader controller_topology
              controller_push controller_admin controller_webhook_admission controller_webhook_kube)
ninja -C build-tsan -j2 "${tsan_targets[@]}"
# libcpp-httplib is an uninstrumented shared library: tests/tsan.supp silences reports inside it only.
TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan --output-on-failure --timeout 900 -LE k8s \
        -R '^(controller\.|integration\.(admin|bootstrap)$)'
