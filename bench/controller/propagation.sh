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
# The controller measured: by default the working tree's, built in build-ctlbench/ (uncommitted changes under
# controller/ or common/ are named in the results); MEMHA_CONTROLLER_REV=<rev> builds that commit from
# `git archive` in build-ctlbench/rev-<rev>/ (what the published figures use); MEMHA_CONTROLLER=path measures a
# given binary. About 3-5 minutes, plus the build.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${MEMHA_CTLBENCH_BUILD:-$REPO/build-ctlbench}
OUT=${MEMHA_CTLBENCH_OUT:-$REPO/bench/results/controller}
DOCS=1
ARGS=()
for a in "$@"; do
    if [ "$a" = "--no-docs" ]; then DOCS=0; else ARGS+=("$a"); fi
done
COMMAND="${MEMHA_CONTROLLER_REV:+MEMHA_CONTROLLER_REV=$MEMHA_CONTROLLER_REV }bench/controller/propagation.sh${*:+ $*}"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
if [ -n "${MEMHA_CONTROLLER:-}" ]; then
    COMMIT="given binary $MEMHA_CONTROLLER (tree at $COMMIT)"
elif [ -n "${MEMHA_CONTROLLER_REV:-}" ]; then
    # A committed revision, untouched by uncommitted work in the tree: git archive, Release build.
    rev=$(git -C "$REPO" rev-parse --short "$MEMHA_CONTROLLER_REV")
    dir=$BUILD/rev-$rev
    if [ ! -x "$dir/build/controller/memha-controller" ]; then
        log "building memha-controller of $rev (git archive, Release) in $dir"
        rm -rf "$dir/src"
        mkdir -p "$dir/src"
        git -C "$REPO" archive "$rev" | tar -x -C "$dir/src"
        cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
        ninja -C "$dir/build" -j2 memha-controller >/dev/null
    fi
    MEMHA_CONTROLLER=$dir/build/controller/memha-controller
    COMMIT="$rev (controller/ and common/ last changed in $(git -C "$REPO" log -1 --format=%h "$rev" -- controller common))"
else
    log "building memha-controller (Release, working tree) in $BUILD"
    cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    ninja -C "$BUILD" -j2 memha-controller >/dev/null
    MEMHA_CONTROLLER=$BUILD/controller/memha-controller
    if [ -n "$(git -C "$REPO" status --porcelain -- controller common)" ]; then
        COMMIT="$COMMIT + uncommitted changes under controller/ or common/"
    fi
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

VERSIONS="kube-apiserver $("$BIN/kube-apiserver" --version 2>/dev/null | awk '{print $2}'), etcd $("$BIN/etcd" --version 2>/dev/null | awk '/etcd Version/{print $3}')"

rm -rf "$OUT/logs"
mkdir -p "$OUT/logs"
python3 "$REPO/bench/controller/propagation.py" --dir "$CLUSTER" --controller "$MEMHA_CONTROLLER" --fake "$FAKE" \
    --out "$OUT/propagation.json" --logs "$OUT/logs" --command "$COMMAND" --commit "$COMMIT" \
    --versions "$VERSIONS" "${ARGS[@]}"

if [ "$DOCS" = 1 ]; then
    python3 "$REPO/bench/controller/report.py" "$OUT/propagation.json" --docs "$REPO/docs/BENCHMARKS.md"
else
    python3 "$REPO/bench/controller/report.py" "$OUT/propagation.json"
fi
