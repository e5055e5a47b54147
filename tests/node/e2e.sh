#!/usr/bin/env bash
# The node tier end to end (docs/LOCAL_K8S.md, "The node tier"): builds (or reuses from ~/.cache/memha/images) the
# memha image from the Dockerfile, the memcached and app images, brings a real node up with them imported
# (scripts/local-k8s up --node), runs tests/node/e2e.py against it and takes the node down. Root only.
#
#   tests/node/e2e.sh [--window SECONDS] [--only STEP,STEP] [--keep]
# Exit 0 only if every step passed; a failed start is a failure, never a skip.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
args=()
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --window|--only|--rate) args+=("$1" "$2"); shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "e2e.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "FAIL: the node tier needs root (scripts/local-k8s up --node)"; exit 1; }
t_all=$(date +%s)
say() { printf '[node e2e] %s\n' "$*"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/memha-node-e2e.XXXXXX")"
dir="$work/cluster"
cleanup() {
    local rc=$?
    if [ "$keep" = 1 ]; then
        say "kept the node: . $dir/env; scripts/local-k8s down $dir"
    else
        t0=$(date +%s)
        "$repo/scripts/local-k8s" down --if-exists "$dir" 2>&1 | grep -E 'WARNING|ERROR|restored' | sed 's/^/  /' || true
        say "node down in $(($(date +%s) - t0)) s"
        rm -rf "$work"
    fi
    say "total $(($(date +%s) - t_all)) s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# One commit for everything (image, chart, test images): HEAD, unless MEMHA_NODE_SRC=worktree.
if [ "${MEMHA_NODE_SRC:-head}" = worktree ] || ! git -C "$repo" rev-parse --verify -q HEAD >/dev/null; then
    src="$repo"
else
    src="$work/src"
    mkdir -p "$src"
    git -C "$repo" archive HEAD | tar -x -C "$src"
    say "sources: HEAD $(git -C "$repo" rev-parse --short HEAD) (MEMHA_NODE_SRC=worktree: the working tree)"
fi
export MEMHA_IMAGE_SRC="$src"
say "images (scripts/k8s-tools/image.sh; cached while their inputs are unchanged)"
t0=$(date +%s)
memha_tar="$("$repo/scripts/k8s-tools/image.sh" memha 2> >(grep -E '^\[image\]' >&2) | tail -n 1)"
mc_tar="$("$repo/scripts/k8s-tools/image.sh" memcached 2> >(grep -E '^\[image\]' >&2) | tail -n 1)"
app_tar="$("$repo/scripts/k8s-tools/image.sh" app 2> >(grep -E '^\[image\]' >&2) | tail -n 1)"
name_of() { basename "$1" .tar | sed -E 's/^(.*)-([0-9a-f]{16})$/docker.io\/library\/\1:\2/'; }
say "images ready in $(($(date +%s) - t0)) s: $(name_of "$memha_tar") $(name_of "$mc_tar") $(name_of "$app_tar")"


t0=$(date +%s)
MEMHA_NODE_IMAGES="$memha_tar $mc_tar $app_tar" "$repo/scripts/local-k8s" up --node --dir "$dir" --ttl 3600 \
    >"$work/env" 2>"$work/up.log" || { tail -n 40 "$work/up.log"; echo "FAIL: scripts/local-k8s up --node"; exit 1; }
say "node up in $(($(date +%s) - t0)) s (with the images imported)"
# shellcheck disable=SC1091
. "$work/env"
python3 "$repo/tests/node/e2e.py" --chart "$src/charts/memha" --memha-image "$(name_of "$memha_tar")" \
    --memcached-image "$(name_of "$mc_tar")" --app-image "$(name_of "$app_tar")" \
    --containerd-sock "$dir/node/containerd/containerd.sock" "${args[@]}"
