#!/usr/bin/env bash
# Controller propagation benchmark (issue 5): one pod status patch -> every one of 1,000 sidecars has the new
# topology; controller RSS with 1,003 and 10,000 pods in the store; reconcile/push cost from /metrics.
#
#   bench/controller/propagation.sh [--no-docs] [propagation.py options: --trials 10 --trials-large 6
#                                    --sidecars 1000 --total-pods 10000 --settle 1.0 ...]
#
# Builds memha-controller (Release, in $MEMHA_CTLBENCH_BUILD, default build-ctlbench/) and bench/controller/
# fake_sidecars.cc, brings up the local control plane (scripts/local-k8s, tools from scripts/k8s-tools/build.sh)
# in a temp dir and takes it down on exit, runs bench/controller/propagation.py, writes
# bench/results/controller/propagation.json (+ logs/) and, unless --no-docs, the "Controller propagation" section
# of docs/BENCHMARKS.md (bench/controller/report.py, only between its own markers).
# MEMHA_CONTROLLER=path skips the controller build and measures that binary. About 5 minutes.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${MEMHA_CTLBENCH_BUILD:-$REPO/build-ctlbench}
OUT=${MEMHA_CTLBENCH_OUT:-$REPO/bench/results/controller}
DOCS=1
ARGS=()
for a in "$@"; do
    if [ "$a" = "--no-docs" ]; then DOCS=0; else ARGS+=("$a"); fi
done
COMMAND="bench/controller/propagation.sh${*:+ $*}"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ -z "${MEMHA_CONTROLLER:-}" ]; then
    log "building memha-controller (Release) in $BUILD"
    cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    ninja -C "$BUILD" -j2 memha-controller >/dev/null
    MEMHA_CONTROLLER=$BUILD/controller/memha-controller
fi
FAKE=$BUILD/bench-controller/fake_sidecars
if [ ! -x "$FAKE" ] || [ "$REPO/bench/controller/fake_sidecars.cc" -nt "$FAKE" ]; then
    log "building fake_sidecars"
    mkdir -p "$(dirname "$FAKE")"
    g++ -O2 -std=c++20 -Wall -Wextra "$REPO/bench/controller/fake_sidecars.cc" -o "$FAKE"
fi

BIN=$("$REPO/scripts/k8s-tools/build.sh" | tail -n 1)
CLUSTER=$(mktemp -d /tmp/memha-ctlbench.XXXXXX)
cleanup() {
    local rc=$?
    "$REPO/scripts/local-k8s" down --if-exists "$CLUSTER" >/dev/null 2>&1 || true
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "starting the local control plane in $CLUSTER"
"$REPO/scripts/local-k8s" up --dir "$CLUSTER" --bin "$BIN" --ttl 1800 >/dev/null

COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
if ! git -C "$REPO" diff --quiet HEAD -- controller common 2>/dev/null; then COMMIT="$COMMIT+dirty(controller/common)"; fi
VERSIONS="kube-apiserver $("$BIN/kube-apiserver" --version 2>/dev/null | awk '{print $2}'), etcd $("$BIN/etcd" --version 2>/dev/null | awk '/etcd Version/{print $3}')"

rm -rf "$OUT/logs"
mkdir -p "$OUT/logs"
python3 "$REPO/bench/controller/propagation.py" --dir "$CLUSTER" --controller "$MEMHA_CONTROLLER" --fake "$FAKE" \
    --out "$OUT/propagation.json" --logs "$OUT/logs" --command "$COMMAND" --commit "$COMMIT" \
    --versions "$VERSIONS" "${ARGS[@]}"
rm -f "$OUT/logs/token"

if [ "$DOCS" = 1 ]; then
    python3 "$REPO/bench/controller/report.py" "$OUT/propagation.json" --docs "$REPO/docs/BENCHMARKS.md"
else
    python3 "$REPO/bench/controller/report.py" "$OUT/propagation.json"
fi
