#!/usr/bin/env bash
# Build (or reuse from the cache) the Prometheus tools the monitoring tests use:
#   promtool    - go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@<version>
#   prometheus  - the server, same module (only with --server)
#   the Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule) from its Go module
#   github.com/prometheus-operator/prometheus-operator (example/prometheus-operator-crd/), only with --crds
# from the Go module proxy, cached outside the repository in
#   ${MEMHA_MONITORING_CACHE:-${XDG_CACHE_HOME:-~/.cache}/memha/monitoring}/<module version>/bin
# the same way scripts/k8s-tools/build.sh caches the Kubernetes tools. Progress goes to stderr; the last (and only)
# stdout line is the bin directory. A run that finds everything cached costs well under a second.
#
# Usage: scripts/monitoring-tools/build.sh [--force] [--server]
#        scripts/monitoring-tools/build.sh --crds      (prints the directory holding the three CRD files)
# Env:   MEMHA_MONITORING_CACHE  cache root (default ~/.cache/memha/monitoring)
#        GO                      go binary (default: go in PATH, else /usr/local/go/bin/go)
#        MONITORING_TOOLS_JOBS   go build -p value (default 2)
set -euo pipefail

# Prometheus 3.x publishes its Go module as v0.3XX.Y for release v3.XX.Y (the v3 tags are not Go-module versions).
PROMETHEUS_MODULE_VERSION=v0.316.0
# Without the cloud service discoveries (static and file targets stay): the tests need none, and they are most of
# the build (the Azure, AWS, GCE... SDKs).
PROMETHEUS_BUILD_TAGS=remove_all_sd
# The CRDs the chart's ServiceMonitor, PodMonitor and PrometheusRule are validated against (monitoring.crds test).
PROMETHEUS_OPERATOR_VERSION=v0.85.0
CRDS="monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_podmonitors.yaml monitoring.coreos.com_prometheusrules.yaml"

force=0
server=0
crds=0
for a in "$@"; do
    case "$a" in
        --force) force=1 ;;
        --server) server=1 ;;
        --crds) crds=1 ;;
        -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) echo "build.sh: unknown argument: $a" >&2; exit 2 ;;
    esac
done

log() { printf '[monitoring-tools] %s\n' "$*" >&2; }
die() { printf '[monitoring-tools] ERROR: %s\n' "$*" >&2; exit 1; }

cache_root="${MEMHA_MONITORING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memha/monitoring}"
top="$cache_root/$PROMETHEUS_MODULE_VERSION"
bin="$top/bin"
stamp="prometheus=$PROMETHEUS_MODULE_VERSION tags=$PROMETHEUS_BUILD_TAGS"

crd_dir="$cache_root/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION/crds"
crds_fresh() {
    local f
    for f in $CRDS; do [ "$force" = 0 ] && [ -s "$crd_dir/$f" ] || return 1; done
}

fresh() { # fresh TOOL: the cached binary exists and was built from this version
    [ "$force" = 0 ] && [ -x "$bin/$1" ] && [ -f "$bin/.$1.stamp" ] && [ "$(cat "$bin/.$1.stamp")" = "$stamp" ]
}
all_fresh() { fresh promtool && { [ "$server" = 0 ] || fresh prometheus; }; }

if [ "$crds" = 1 ] && crds_fresh; then
    echo "$crd_dir"
    exit 0
fi
if [ "$crds" = 0 ] && all_fresh; then
    echo "$bin"
    exit 0
fi

mkdir -p "$bin"
command -v flock >/dev/null || die "flock (util-linux) is required"
exec 9>"$top/.lock"
if ! flock -w 5 9; then
    log "another build.sh holds $top/.lock; waiting (up to 30 min)"
    flock -w 1800 9 || die "timed out waiting for $top/.lock"
fi
if [ "$crds" = 0 ] && all_fresh; then
    echo "$bin"
    exit 0
fi

if [ -z "${GO:-}" ]; then
    GO="$(command -v go || true)"
    [ -n "$GO" ] || GO=/usr/local/go/bin/go
fi
[ -x "$GO" ] || die "no Go toolchain (looked for go in PATH and /usr/local/go/bin/go; set GO=...)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath" GOWORK=off
jobs="${MONITORING_TOOLS_JOBS:-2}"
log "Go: $("$GO" version)  cache: $top  (go build -p $jobs)"

build() { # build TOOL: go install into a scratch GOBIN, then move into the cache with its stamp
    local t0 out
    t0=$(date +%s)
    out="$top/gobin.$$"
    mkdir -p "$out"
    log "$1: go install github.com/prometheus/prometheus/cmd/$1@$PROMETHEUS_MODULE_VERSION (a few minutes from cold caches)"
    GOBIN="$out" "$GO" install -p "$jobs" -tags "$PROMETHEUS_BUILD_TAGS" \
        "github.com/prometheus/prometheus/cmd/$1@$PROMETHEUS_MODULE_VERSION" ||
        die "go install $1 failed"
    chmod 755 "$out/$1"
    mv -f "$out/$1" "$bin/$1"
    rmdir "$out" 2>/dev/null || true
    printf '%s\n' "$stamp" >"$bin/.$1.stamp"
    log "$1: built in $(( $(date +%s) - t0 ))s: $("$bin/$1" --version 2>&1 | head -n 1)"
}

if [ "$crds" = 1 ]; then
    mod="github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION"
    log "CRDs: go mod download $mod"
    dir="$("$GO" mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -d "$dir/example/prometheus-operator-crd" ] || die "could not download $mod from the module proxy"
    mkdir -p "$crd_dir"
    for f in $CRDS; do cp "$dir/example/prometheus-operator-crd/$f" "$crd_dir/$f.part" && mv -f "$crd_dir/$f.part" "$crd_dir/$f"; done
    echo "$crd_dir"
    exit 0
fi

fresh promtool || build promtool
if [ "$server" = 1 ]; then fresh prometheus || build prometheus; fi
echo "$bin"
