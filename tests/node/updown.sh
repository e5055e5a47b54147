#!/usr/bin/env bash
# `scripts/local-k8s up --node` then `down` leaves the machine as it was. Its own record of the host (not the one
# local-k8s keeps) before and after: mounts, links, routes, iptables/ip6tables rules and chains, cgroup dirs,
# sysctls (all of them, minus counters), processes of the node's programs, the fixed paths. In between it
# checks that the node runs a pod (Running, with an IP on the bridge) and that the pod has no default route.
#
#   tests/node/updown.sh            (root; the tools from scripts/k8s-tools/build.sh --node)
# Prints PASS:/FAIL: lines and exits 1 on any failure.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root"; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/memha-node-updown.XXXXXX")"
dir="$work/cluster"
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
cleanup() {
    [ -f "$dir/.memha-local-k8s" ] && "$repo/scripts/local-k8s" down --if-exists "$dir" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

snapshot() { # snapshot OUT_DIR
    local o="$1" t
    mkdir -p "$o"
    awk '{print $1, $2, $3}' /proc/self/mounts | sort >"$o/mounts"
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$o/links"
    ip route show table all | sort >"$o/routes"
    ip -6 route show table all 2>/dev/null | sort >"$o/routes6"
    for t in filter nat mangle raw; do
        iptables-save -t "$t" 2>/dev/null | grep -v '^#' | sed 's/ \[[0-9:]*\]$//; s/^\(:[^ ]* [^ ]*\).*/\1/' || true
        ip6tables-save -t "$t" 2>/dev/null | grep -v '^#' | sed 's/ \[[0-9:]*\]$//; s/^\(:[^ ]* [^ ]*\).*/\1/' | sed 's/^/6 /' || true
    done >"$o/iptables"
    find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d 2>/dev/null | sort >"$o/cgroups"
    # All sysctls but counters and per-boot randomness.
    sysctl -a 2>/dev/null | grep -vE '^(kernel\.random\.|fs\.(dentry-state|file-nr|inode-nr|inode-state|quota\.)|kernel\.ns_last_pid|kernel\.pty\.nr|net\.netfilter\.nf_conntrack_count|kernel\.tainted|fs\.aio-nr|kernel\.sched_|net\.ipv4\.tcp_fastopen_key|vm\.stat|kernel\.core_pattern)' |
        grep -vE '^net\.ipv[46]\.(conf|neigh)\.(cni0|veth)' | sort >"$o/sysctl"
    # The node's programs (one node per machine), and anything else naming the cluster dir (its etcd, apiserver;
    # other clusters of other tests may run meanwhile).
    { ps -eo comm= | grep -xE 'containerd|containerd-shim|containerd-shim-runc-v2|kubelet|kube-proxy|kube-controller-manager|kube-scheduler|coredns|pause' || true
      ps -eo args= | grep -F -- "$dir" | grep -v grep || true; } | sort >"$o/procs"
    for t in /var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /var/lib/cni /run/netns /etc/cni /opt/cni /run/memha-local-k8s-node; do
        [ -e "$t" ] && echo "$t"
    done >"$o/paths"
    return 0
}

snapshot "$work/before"
t0=$(date +%s)
if "$repo/scripts/local-k8s" up --node --dir "$dir" --ttl 1800 >"$work/env" 2>"$work/up.log"; then
    pass "up --node in $(($(date +%s) - t0)) s"
else
    fail "up --node"; tail -n 30 "$work/up.log"
fi
if [ -f "$work/env" ] && [ -s "$work/env" ]; then
    # shellcheck disable=SC1091
    . "$work/env"
    if kubectl get node memha-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True; then
        pass "node memha-node Ready"
    else
        fail "node memha-node Ready"
    fi
    # A pod whose only container is the sandbox image's program: nothing to import.
    kubectl run probe --image=registry.k8s.io/pause:3.10 --image-pull-policy=Never --restart=Never >/dev/null
    if kubectl wait --for=condition=Ready pod/probe --timeout=60s >/dev/null; then
        ip="$(kubectl get pod probe -o jsonpath='{.status.podIP}')"
        case "$ip" in 10.88.*) pass "a pod runs, IP $ip on the bridge" ;; *) fail "pod IP $ip not on the bridge" ;; esac
        # The pod's routes, from its netns via its pause process (no tools needed in the image).
        pid="$(pgrep -f '^/pause$' | head -n 1 || true)"
        if [ -n "$pid" ] && nsenter -t "$pid" -n ip route | grep -q '^default'; then
            fail "the pod has a default route: $(nsenter -t "$pid" -n ip route | tr '\n' ';')"
        elif [ -n "$pid" ]; then
            pass "pods have no default route ($(nsenter -t "$pid" -n ip route | tr '\n' ';'))"
        fi
    else
        fail "a pod becomes Ready"
    fi
    t0=$(date +%s)
    if "$repo/scripts/local-k8s" down "$dir" >"$work/down.log" 2>&1; then
        pass "down in $(($(date +%s) - t0)) s"
    else
        fail "down"; tail -n 30 "$work/down.log"
    fi
fi
# What down stopped may take a moment to be reaped.
for ((i = 0; i < 50; i++)); do
    snapshot "$work/after"
    cmp -s "$work/before/procs" "$work/after/procs" && break
    sleep 0.2
done
for f in mounts links routes routes6 iptables cgroups sysctl procs paths; do
    if cmp -s "$work/before/$f" "$work/after/$f"; then
        pass "$f as before"
    else
        fail "$f differ after down:"; diff "$work/before/$f" "$work/after/$f" | head -n 20 | sed 's/^/    /'
    fi
done
echo "node updown: $fails failed"
[ "$fails" = 0 ]
