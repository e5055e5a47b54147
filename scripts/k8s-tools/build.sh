#!/usr/bin/env bash
# Build (or reuse from the cache) the tools of the local Kubernetes control plane used by the tests:
#   kube-apiserver, kubectl  - from k8s.io/kubernetes via a generated wrapper Go module
#   etcd                     - from go.etcd.io/etcd/server/v3 via a generated wrapper Go module
#   helm                     - go install helm.sh/helm/v3/cmd/helm@version
# and with --node also the tools of a real node (scripts/local-k8s up --node):
#   kubelet, kube-controller-manager, kube-scheduler, kube-proxy - the same wrapper module, one go build
#   coredns                  - go install github.com/coredns/coredns@version
# Everything comes from the Go module proxy and is cached outside the repository in
#   ${MEMHA_K8S_CACHE:-${XDG_CACHE_HOME:-~/.cache}/memha/k8s}/<kubernetes version>/bin
# Progress goes to stderr; the last (and only) stdout line is the bin directory.
# A run that finds everything cached costs well under a second.
#
# Usage: scripts/k8s-tools/build.sh [--force] [--node]
# Env:   MEMHA_K8S_CACHE   cache root (default ~/.cache/memha/k8s)
#        GO                go binary (default: go in PATH, else /usr/local/go/bin/go)
#        K8S_TOOLS_JOBS    go build -p value (default 2)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.env
. "$here/versions.env"

force=0
node=0
for a in "$@"; do
    case "$a" in
        --force) force=1 ;;
        --node) node=1 ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) echo "build.sh: unknown argument: $a" >&2; exit 2 ;;
    esac
done

log() { printf '[k8s-tools] %s\n' "$*" >&2; }
die() { printf '[k8s-tools] ERROR: %s\n' "$*" >&2; exit 1; }

cache_root="${MEMHA_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memha/k8s}"
top="$cache_root/$KUBERNETES_VERSION"
bin="$top/bin"
src="$top/src"

# What each tool's stamp must say for the cached binary to be reused.
stamp_k8s="kubernetes=$KUBERNETES_VERSION"
stamp_etcd="etcd=$ETCD_VERSION"
stamp_helm="helm=$HELM_VERSION"
stamp_coredns="coredns=$COREDNS_VERSION"
node_k8s_tools="kubelet kube-controller-manager kube-scheduler kube-proxy"

fresh() { # fresh TOOL STAMP: the cached binary exists and was built from that version
    [ "$force" = 0 ] && [ -x "$bin/$1" ] && [ -f "$bin/.$1.stamp" ] && [ "$(cat "$bin/.$1.stamp")" = "$2" ]
}
node_fresh() {
    local t
    [ "$node" = 1 ] || return 0
    for t in $node_k8s_tools; do fresh "$t" "$stamp_k8s" || return 1; done
    fresh coredns "$stamp_coredns"
}
all_fresh() {
    fresh kube-apiserver "$stamp_k8s" && fresh kubectl "$stamp_k8s" &&
        fresh etcd "$stamp_etcd" && fresh helm "$stamp_helm" && node_fresh
}

# Fast path: no lock, no Go.
if all_fresh; then
    echo "$bin"
    exit 0
fi

mkdir -p "$bin" "$src"
# Serialise concurrent builders (parallel test setups) on the same cache.
exec 9>"$top/.lock"
if ! flock -w 5 9; then
    log "another build.sh holds $top/.lock; waiting (up to 90 min)"
    flock -w 5400 9 || die "timed out waiting for $top/.lock"
fi
if all_fresh; then
    echo "$bin"
    exit 0
fi

if [ -z "${GO:-}" ]; then
    GO="$(command -v go || true)"
    [ -n "$GO" ] || GO=/usr/local/go/bin/go
fi
# No Go on this machine: take the toolchain from the Go module proxy (module golang.org/toolchain), the same
# place `go` itself downloads toolchains from, into the cache (outside the repository).
if [ ! -x "$GO" ]; then
    gover="${K8S_TOOLS_GO_VERSION:-go1.24.6}"
    gohome="$top/go-$gover"
    if [ ! -x "$gohome/bin/go" ]; then
        proxy="${GOPROXY:-https://proxy.golang.org}"; proxy="${proxy%%,*}"
        url="$proxy/golang.org/toolchain/@v/v0.0.1-$gover.linux-amd64.zip"
        log "no Go toolchain found: fetching $gover from $url"
        command -v curl >/dev/null || die "no Go toolchain and no curl to fetch one"
        curl -fsSL --retry 3 -o "$top/go.zip.part" "$url" || die "could not fetch $url"
        rm -rf "$gohome.part"
        python3 - "$top/go.zip.part" "$gohome.part" <<'PY' || die "could not unpack the Go toolchain"
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        parts = info.filename.split("/", 2)  # golang.org/toolchain@v0.0.1-goX.linux-amd64/<path>
        name = parts[2] if len(parts) == 3 else ""
        if not name or name.endswith("/"):
            continue
        path = os.path.join(dest, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as f, open(path, "wb") as out:
            out.write(f.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(path, mode or 0o644)
PY
        rm -f "$top/go.zip.part"
        mv "$gohome.part" "$gohome"
    fi
    GO="$gohome/bin/go"
fi
[ -x "$GO" ] || die "no Go toolchain (looked for go in PATH and /usr/local/go/bin/go; set GO=...)"
command -v flock >/dev/null || die "flock (util-linux) is required"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath" GOWORK=off
jobs="${K8S_TOOLS_JOBS:-2}"
log "Go: $("$GO" version)  cache: $top  (go build -p $jobs)"

minor_of() { local v="${1#v}"; v="${v#*.}"; echo "${v%%.*}"; }   # v1.33.13 -> 33
patch_of() { local v="${1#v}"; v="${v#*.}"; echo "${v#*.}"; }     # v1.33.13 -> 13

elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

install_bin() { # install_bin BUILT_FILE NAME STAMP
    chmod 755 "$1"
    mv -f "$1" "$bin/$2"
    printf '%s\n' "$3" >"$bin/.$2.stamp"
}

# ---------------------------------------------------------------- kube-apiserver + kubectl
build_kubernetes() {
    local v="$KUBERNETES_VERSION" t0 mod dir upstream staging_ver
    t0=$(date +%s)
    staging_ver="v0.$(minor_of "$v").$(patch_of "$v")"
    dir="$src/kubernetes-$v"
    mkdir -p "$dir"
    log "kubernetes $v: fetching k8s.io/kubernetes go.mod"
    upstream="$("$GO" mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    [ -f "$upstream" ] || die "could not download k8s.io/kubernetes@$v from the module proxy"

    # The wrapper module: require k8s.io/kubernetes, keep its go/godebug lines, and turn every
    # "k8s.io/X => ./staging/src/k8s.io/X" replace into "k8s.io/X => k8s.io/X <published v0.Y.Z>".
    # Other replace lines are copied as they are.
    mod="$dir/go.mod.new"
    {
        echo "// Generated by scripts/k8s-tools/build.sh from k8s.io/kubernetes@$v's go.mod. Do not edit."
        echo "module memha.invalid/k8s-tools/kubernetes"
        echo
        grep -E '^(go|godebug) ' "$upstream" || true
        echo
        echo "require k8s.io/kubernetes $v"
        echo
        echo "replace ("
        awk -v sv="$staging_ver" '
            /^replace[[:space:]]*\(/ { inblock = 1; next }
            inblock && /^\)/ { inblock = 0; next }
            /^replace[[:space:]]/ && !inblock { sub(/^replace[[:space:]]+/, ""); line = $0 }
            inblock { line = $0 }
            line != "" {
                n = split(line, f, /[[:space:]]+/)
                # fields: [""] path [ver] => target [ver]
                for (i = 1; i <= n; i++) if (f[i] == "=>") arrow = i
                lhs = f[arrow - 1]; if (f[arrow - 1] ~ /^v[0-9]/) lhs = f[arrow - 2]
                if (f[arrow + 1] ~ /^\.\/staging\/src\//) printf "\t%s => %s %s\n", lhs, lhs, sv
                else { sub(/^[[:space:]]+/, "", line); printf "\t%s\n", line }
                line = ""
            }' "$upstream"
        echo ")"
    } >"$mod"
    grep -q "k8s.io/api => k8s.io/api $staging_ver" "$mod" || die "generated go.mod has no staging replaces: $mod"
    if ! cmp -s "$mod" "$dir/go.mod"; then
        mv -f "$mod" "$dir/go.mod"
        rm -f "$dir/go.sum"
    else
        rm -f "$mod"
    fi

    local pkg="k8s.io/component-base/version" cpkg="k8s.io/client-go/pkg/version" ld date
    date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    ld="-s -w"
    for p in "$pkg" "$cpkg"; do
        ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$(minor_of "$v")"
        ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    # Every missing command in one go build: they share most of their packages.
    local tools=() pkgs=() t
    for t in kube-apiserver kubectl; do fresh "$t" "$stamp_k8s" || tools+=("$t"); done
    if [ "$node" = 1 ]; then
        for t in $node_k8s_tools; do fresh "$t" "$stamp_k8s" || tools+=("$t"); done
    fi
    for t in "${tools[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$t"); done
    log "kubernetes $v: building ${tools[*]} (the long part: ~10-30 min on 2 cores from cold caches)"
    mkdir -p "$dir/out"
    (cd "$dir" && "$GO" build -mod=mod -p "$jobs" -ldflags "$ld" -o "$dir/out/" "${pkgs[@]}") >&2 ||
        die "building ${tools[*]} $v failed (wrapper module: $dir)"
    for t in "${tools[@]}"; do
        if [ "$t" = kubectl ]; then "$dir/out/$t" version --client >&2; else "$dir/out/$t" --version >&2; fi ||
            die "built $t does not run"
        install_bin "$dir/out/$t" "$t" "$stamp_k8s"
    done
    log "kubernetes $v: done in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- etcd
build_etcd() {
    # go.etcd.io/etcd/server/v3 is itself the etcd main package, but its go.mod has relative
    # replace directives, so it cannot be `go install`ed; a wrapper module that requires it builds it
    # with exactly the dependency versions its release pins (the replaces point at the same versions).
    local v="$ETCD_VERSION" t0 dir
    t0=$(date +%s)
    dir="$src/etcd-$v"
    mkdir -p "$dir/out"
    cat >"$dir/go.mod.new" <<EOF
// Generated by scripts/k8s-tools/build.sh. Do not edit.
module memha.invalid/k8s-tools/etcd

go 1.23

require go.etcd.io/etcd/server/v3 $v
EOF
    if ! cmp -s "$dir/go.mod.new" "$dir/go.mod"; then
        mv -f "$dir/go.mod.new" "$dir/go.mod"
        rm -f "$dir/go.sum"
    else
        rm -f "$dir/go.mod.new"
    fi
    log "etcd $v: building"
    (cd "$dir" && "$GO" build -mod=mod -p "$jobs" -ldflags "-s -w" -o "$dir/out/etcd" go.etcd.io/etcd/server/v3) >&2 ||
        die "building etcd $v failed (wrapper module: $dir)"
    "$dir/out/etcd" --version >&2 || die "built etcd does not run"
    install_bin "$dir/out/etcd" etcd "$stamp_etcd"
    log "etcd $v: done in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- helm
build_helm() {
    local v="$HELM_VERSION" t0 out ld p kminor
    t0=$(date +%s)
    out="$src/helm-$v"
    mkdir -p "$out"
    # The same version stamps helm's Makefile sets; its k8s library minor version is Kubernetes'.
    kminor="$(minor_of "$KUBERNETES_VERSION")"
    ld="-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        ld="$ld -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kminor"
    done
    log "helm $v: building"
    (cd "$out" && GOBIN="$out" "$GO" install -p "$jobs" -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$v") >&2 ||
        die "building helm $v failed"
    "$out/helm" version --short >&2 || die "built helm does not run"
    install_bin "$out/helm" helm "$stamp_helm"
    log "helm $v: done in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- coredns (--node)
build_coredns() {
    local v="$COREDNS_VERSION" t0 out
    t0=$(date +%s)
    out="$src/coredns-$v"
    mkdir -p "$out"
    log "coredns $v: building"
    (cd "$out" && GOBIN="$out" "$GO" install -p "$jobs" -ldflags "-s -w" "github.com/coredns/coredns@$v") >&2 ||
        die "building coredns $v failed"
    "$out/coredns" -version >&2 || die "built coredns does not run"
    install_bin "$out/coredns" coredns "$stamp_coredns"
    log "coredns $v: done in $(elapsed "$t0")"
}

k8s_fresh() {
    local t
    fresh kube-apiserver "$stamp_k8s" && fresh kubectl "$stamp_k8s" || return 1
    [ "$node" = 1 ] || return 0
    for t in $node_k8s_tools; do fresh "$t" "$stamp_k8s" || return 1; done
}

t_all=$(date +%s)
k8s_fresh || build_kubernetes
fresh etcd "$stamp_etcd" || build_etcd
fresh helm "$stamp_helm" || build_helm
[ "$node" = 0 ] || fresh coredns "$stamp_coredns" || build_coredns
force=0
all_fresh || die "tools still missing after the build (see above)"
log "all tools ready in $bin (this run: $(elapsed "$t_all"))"
echo "$bin"
