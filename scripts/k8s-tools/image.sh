#!/usr/bin/env bash
# Build the images the real node runs, without a registry (see docs/LOCAL_K8S.md, "Images"):
#   base        debian:bookworm and debian:bookworm-slim made here by debootstrap (Debian's packages),
#               imported into buildah's storage (in the cache, not /var/lib/containers)
#   memha       the repository's Dockerfile, built by buildah (host network, so apt-get in the build works)
#   memcached   tests/node/images/memcached: Debian's memcached
#   app         tests/node/images/app: the read-through verifying client of the node tier
# Each target prints, as its last stdout line, the path of a docker-archive tarball for
# `ctr -n k8s.io images import` (scripts/local-k8s up --node imports those named in $MEMHA_NODE_IMAGES).
# A tarball is reused while its inputs are unchanged (for memha: Dockerfile, .dockerignore and every tracked
# file of the build context, as they are in the working tree).
#
# Usage: scripts/k8s-tools/image.sh base|memha|memcached|app [--force]
# Env:   MEMHA_IMAGE_CACHE  (default ~/.cache/memha/images), DEBIAN_MIRROR (default http://deb.debian.org/debian),
#        MEMHA_IMAGE_SRC    source tree to build from (default: this checkout)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# The sources to build from: this checkout's working tree, or another tree (tests/node/e2e.sh passes a snapshot
# of HEAD, so that the image, the chart and the test images are of one commit while others edit the tree).
src="${MEMHA_IMAGE_SRC:-$repo}"
cache="${MEMHA_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memha/images}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
target="${1:-}"
force=0
[ "${2:-}" = --force ] && force=1

log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

[ "$(id -u)" = 0 ] || die "building images needs root (debootstrap, buildah)"
for t in buildah debootstrap sha256sum; do command -v "$t" >/dev/null || die "$t is required (apt-get install buildah debootstrap)"; done
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 3600 9 || die "timed out waiting for $cache/.lock"

# buildah keeps its storage in the cache; chroot isolation (no nested runtime), host network.
bah() { buildah --root "$cache/buildah/storage" --runroot "$cache/buildah/run" --storage-driver overlay "$@"; }

base() {
    local stamp="$cache/base.stamp" want="bookworm minbase $mirror v1"
    if [ "$force" = 0 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
        bah inspect --type image docker.io/library/debian:bookworm-slim >/dev/null 2>&1; then
        return 0
    fi
    local t0 rootfs="$cache/rootfs-bookworm"
    t0=$(date +%s)
    if [ ! -f "$rootfs/.complete" ]; then
        log "debootstrap --variant=minbase bookworm ($mirror)"
        rm -rf "$rootfs.part"
        debootstrap --variant=minbase bookworm "$rootfs.part" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
            die "debootstrap failed (see $cache/debootstrap.log)"
        rm -rf "$rootfs" && mv "$rootfs.part" "$rootfs"
        touch "$rootfs/.complete"
    fi
    local name c mnt
    for name in bookworm bookworm-slim; do
        c="$(bah from --name "memha-base-$name" scratch)"
        mnt="$(bah mount "$c")"
        tar -C "$rootfs" --exclude ./.complete -cf - . | tar -C "$mnt" -xf -
        # As Debian's official images: the security and updates suites, apt that keeps no .deb files.
        cat >"$mnt/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
        printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
            'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
            >"$mnt/etc/apt/apt.conf.d/docker-clean"
        rm -rf "$mnt/var/lib/apt/lists/"* "$mnt/var/cache/apt/"*.bin "$mnt/var/log/"*.log "$mnt/dev/"*
        if [ "$name" = bookworm-slim ]; then
            # The official -slim images: no docs, man pages or locales, now or from later packages.
            printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
                'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/info/*' \
                >"$mnt/etc/dpkg/dpkg.cfg.d/docker-slim"
            find "$mnt/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
            rm -rf "$mnt/usr/share/man/"* "$mnt/usr/share/locale/"* "$mnt/usr/share/info/"*
        fi
        bah umount "$c" >/dev/null
        bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash "$c"
        bah commit --rm -q "$c" "docker.io/library/debian:$name" >/dev/null
    done
    echo "$want" >"$stamp"
    log "base images debian:bookworm, debian:bookworm-slim ready in $(elapsed "$t0")"
}

context_key() { # context_key DIR DOCKERFILE: hash of what the build reads
    (
        cd "$1"
        {
            # Contents only: the same sources in another directory (a snapshot of HEAD) give the same key.
            sha256sum <"$2"
            [ -f .dockerignore ] && sha256sum <.dockerignore
            if git -C "$1" rev-parse >/dev/null 2>&1; then
                # tests/node is in the build context but no build step reads it (not a CMake subdirectory unless
                # MEMHA_NODE_TESTS=ON): editing the node tier does not rebuild the image.
                git ls-files -z -- . ':!docs' ':!charts' ':!manifests' ':!scripts' ':!Dockerfile' ':!.dockerignore' ':!tests/node' |
                    xargs -0 -r sha256sum 2>/dev/null
            else
                find . -type f -not -path './.git/*' -not -path './docs/*' -not -path './charts/*' \
                    -not -path './manifests/*' -not -path './scripts/*' -not -path './tests/node/*' -print0 | sort -z | xargs -0 -r sha256sum
            fi
            cat "$cache/base.stamp"
        } | sha256sum | cut -c1-16
    )
}

build() { # build NAME CONTEXT DOCKERFILE: buildah bud -> docker-archive tarball; prints its path
    local name="$1" ctx="$2" file="$3" key tar t0
    base
    key="$(context_key "$ctx" "$file")"
    tar="$cache/$name-$key.tar"
    if [ "$force" = 1 ] || [ ! -s "$tar" ]; then
        # buildah keeps every build's layers (the build stage is ~1 GB a build): past the cap, start afresh.
        local cap_gb="${MEMHA_IMAGE_STORAGE_MAX_GB:-8}"
        if [ -d "$cache/buildah/storage" ] && [ "$(du -s -BG "$cache/buildah/storage" | cut -f1 | tr -d G)" -gt "$cap_gb" ]; then
            log "buildah storage over $cap_gb GB: removing every image in it (the next builds start cold)"
            bah rmi --all --force >/dev/null 2>&1 || true
            rm -f "$cache/base.stamp"
            base
            key="$(context_key "$ctx" "$file")"
            tar="$cache/$name-$key.tar"
        fi
        t0=$(date +%s)
        log "building $name from $file (context $ctx, key $key)"
        bah bud --layers --isolation chroot --network host -f "$file" -t "localhost/$name:$key" "$ctx" >&2 ||
            die "building $name failed"
        rm -f "$tar.part"
        bah push -q "localhost/$name:$key" "docker-archive:$tar.part:docker.io/library/$name:$key" >&2 ||
            die "exporting $name failed"
        mv "$tar.part" "$tar"
        log "$name built in $(elapsed "$t0")"
        # Keep the last three tarballs of this image.
        ls -t "$cache/$name-"*.tar 2>/dev/null | tail -n +4 | xargs -r rm -f
    fi
    log "$name: docker.io/library/$name:$key, $(du -m "$tar" | cut -f1) MB tarball, $(bah inspect --type image \
        --format '{{len .OCIv1.RootFS.DiffIDs}}' "localhost/$name:$key" 2>/dev/null || echo '?') layers"
    echo "$tar"
}

case "$target" in
    base) base; echo "$cache" ;;
    memha) build memha "$src" "$src/Dockerfile" ;;
    memcached) build memha-node-memcached "$src/tests/node/images/memcached" "$src/tests/node/images/memcached/Containerfile" ;;
    app) build memha-node-app "$src/tests/node/images/app" "$src/tests/node/images/app/Containerfile" ;;
    *) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
