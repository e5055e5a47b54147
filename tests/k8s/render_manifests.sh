#!/usr/bin/env bash
# Renders manifests/memha.yaml from charts/memha with default values (release memha, namespace memha-system),
# preceded by the Namespace, so `kubectl apply -f manifests/` installs memha without helm.
#
# Usage: tests/k8s/render_manifests.sh [--write]     (stdout, or --write: manifests/memha.yaml)
# helm: $HELM, else the one from scripts/k8s-tools/build.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
helm="${HELM:-}"
if [ -z "$helm" ]; then
    helm="$("$repo/scripts/k8s-tools/build.sh" 2>/dev/null | tail -n 1)/helm"
fi
render() {
    cat <<'HEADER'
# memha: controller, RBAC, webhook configuration and NetworkPolicy for `kubectl apply -f manifests/`.
# GENERATED from charts/memha with default values - do not edit. Regenerate with:
#   tests/k8s/render_manifests.sh --write
# (helm template memha charts/memha -n memha-system, preceded by the Namespace; checked by the k8s_manifests_sync test)
---
apiVersion: v1
kind: Namespace
metadata:
  name: memha-system
  labels:
    app.kubernetes.io/name: memha
HEADER
    (cd "$repo" && "$helm" template memha charts/memha --namespace memha-system)
}
if [ "${1:-}" = --write ]; then
    out="$repo/manifests/memha.yaml"
    render >"$out.tmp"
    mv "$out.tmp" "$out"
    echo "wrote $out"
else
    render
fi
