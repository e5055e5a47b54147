#!/usr/bin/env bash
# Tests of charts/memha and manifests/.
#
#   chart_test.sh sync              helm lint --strict; manifests/memha.yaml equals a fresh render (no cluster)
#   chart_test.sh install KUBECONFIG  helm install/upgrade/uninstall on the real local apiserver; objects and RBAC
#   chart_test.sh apply KUBECONFIG    kubectl apply -f manifests/ (server-side dry-run, then for real), then delete
#
# The local cluster has no kubelet, scheduler or controller-manager: the Deployment is stored but no pod is ever
# created or run. These tests check what the API server accepts and stores, not a running controller.
# Prints PASS/FAIL lines and "<mode>: N passed, N failed"; exits 1 on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mode="${1:-}"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() {
    echo "$mode: $pass passed, $fail failed"
    [ "$fail" = 0 ] && [ "$pass" -gt 0 ]
    exit $?
}
work="$(mktemp -d "${TMPDIR:-/tmp}/memha-chart-test.XXXXXX")"
cleanup_cmds=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    for c in "${cleanup_cmds[@]}"; do eval "$c" >/dev/null 2>&1; done
    rm -rf "$work"
}
trap cleanup EXIT
: >"$work/cmd.log"
check() { # check DESCRIPTION CMD...
    local what="$1"
    shift
    if "$@" >>"$work/cmd.log" 2>&1; then ok "$what"; else
        bad "$what"
        echo "  command: $*"
        tail -n 15 "$work/cmd.log" | sed 's/^/  | /'
    fi
}
expect_eq() { # expect_eq DESCRIPTION WANT GOT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi
}

bin="$("$repo/scripts/k8s-tools/build.sh" 2>"$work/build.log" | tail -n 1)"
if [ -z "$bin" ] || [ ! -x "$bin/helm" ] || [ ! -x "$bin/kubectl" ]; then
    bad "tools from scripts/k8s-tools/build.sh"
    tail -n 20 "$work/build.log" | sed 's/^/  | /'
    finish
fi
export PATH="$bin:$PATH"
export HELM="$bin/helm"
chart="$repo/charts/memha"
k() { kubectl --request-timeout=30s "$@"; }

case "$mode" in
sync)
    check "helm lint --strict (default values)" helm lint --strict "$chart"
    check "helm lint --strict (sidecar NetworkPolicies, failurePolicy Fail, custom images)" helm lint --strict "$chart" \
        --set 'networkPolicy.sidecars.namespaces={shop,cart}' --set webhook.failurePolicy=Fail \
        --set image.repository=registry.example/memha --set sidecar.image.tag=canary
    if "$here/render_manifests.sh" >"$work/rendered.yaml" 2>>"$work/cmd.log"; then
        if diff -u "$repo/manifests/memha.yaml" "$work/rendered.yaml" >"$work/diff.txt"; then
            ok "manifests/memha.yaml is the chart rendered with default values"
        else
            bad "manifests/memha.yaml is out of date with charts/memha; regenerate with: tests/k8s/render_manifests.sh --write"
            head -n 40 "$work/diff.txt" | sed 's/^/  | /'
        fi
    else
        bad "render the chart"
        tail -n 15 "$work/cmd.log" | sed 's/^/  | /'
    fi
    # Two renders are identical: nothing random (tokens, certificates) is generated at render time.
    "$here/render_manifests.sh" >"$work/again.yaml" 2>/dev/null
    if cmp -s "$work/rendered.yaml" "$work/again.yaml" && ! grep -q '^ *caBundle:' "$work/rendered.yaml"; then
        ok "rendering is deterministic (no generated secrets or caBundle in the chart)"
    else
        bad "rendering is deterministic"
    fi
    # webhook.certManager (issue 12): cert-manager owns the certificate and the caBundle, the controller reads.
    check "helm lint --strict (webhook.certManager.enabled)" helm lint --strict "$chart" --set webhook.certManager.enabled=true
    if helm template memha "$chart" -n memha-system --set webhook.certManager.enabled=true >"$work/cm.yaml" 2>>"$work/cmd.log"; then
        expect_eq "certManager: the Certificate the annotation names covers the Service; the controller only reads" \
            "memha-system/memha-webhook memha-webhook-tls svc=yes on patch=no tls-update=no ca=memha-webhook-ca" \
            "$(python3 -c 'import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
mwc = by[("MutatingWebhookConfiguration", "memha-sidecar-injector")]
ref = mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
cert = by[("Certificate", ref.split("/")[1])]["spec"]
args = by[("Deployment", "memha-controller")]["spec"]["template"]["spec"]["containers"][0]["args"]
rules = [r for d in docs if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]
patch = any("mutatingwebhookconfigurations" in r["resources"] for r in rules)
tls_update = any("memha-webhook-tls" in r.get("resourceNames", []) and "update" in r["verbs"] for r in rules)
print(ref, cert["secretName"], "svc=" + ("yes" if "memha-controller.memha-system.svc" in cert["dnsNames"] else "no"),
      "on" if "--webhook-cert-manager=on" in args else "off", "patch=" + ("yes" if patch else "no"),
      "tls-update=" + ("yes" if tls_update else "no"), "ca=" + cert["issuerRef"]["name"])' "$work/cm.yaml")"
    else
        bad "render the chart with webhook.certManager.enabled"
    fi
    ;;

install)
    [ $# -eq 2 ] || { echo "usage: $0 install KUBECONFIG" >&2; exit 2; }
    export KUBECONFIG="$2"
    ns="memha-chart-$(date +%s)-$$"
    rel="memha-e2e"
    cleanup_cmds+=("helm uninstall $rel -n $ns --timeout 60s")
    check "helm install $rel -n $ns --create-namespace" \
        helm install "$rel" "$chart" -n "$ns" --create-namespace --wait=false --timeout 120s \
        --set 'networkPolicy.sidecars.namespaces={'"$ns"'}'
    for kind in deployment/$rel-controller service/$rel-controller serviceaccount/$rel-controller \
        role/$rel-controller rolebinding/$rel-controller poddisruptionbudget/$rel-controller \
        networkpolicy/$rel-controller networkpolicy/$rel-sidecar-admin; do
        check "$kind exists in $ns" k -n "$ns" get "$kind"
    done
    for kind in clusterrole/$rel-controller clusterrolebinding/$rel-controller \
        mutatingwebhookconfiguration/$rel-sidecar-injector; do
        check "$kind exists" k get "$kind"
    done
    expect_eq "Deployment has 2 replicas" 2 "$(k -n "$ns" get deploy "$rel-controller" -o jsonpath='{.spec.replicas}')"
    expect_eq "Service ports http 8080, webhook 8443" "http:8080 webhook:8443 " \
        "$(k -n "$ns" get svc "$rel-controller" -o jsonpath='{range .spec.ports[*]}{.name}:{.port} {end}')"
    mwc="$(k get mutatingwebhookconfiguration "$rel-sidecar-injector" -o json)"
    expect_eq "webhooks: failurePolicy Ignore, sideEffects None, service $ns/$rel-controller:8443/mutate" \
        "pod.inject.memha.io Ignore None $ns/$rel-controller:8443/mutate;namespace.inject.memha.io Ignore None $ns/$rel-controller:8443/mutate;" \
        "$(python3 -c 'import json,sys
for w in json.load(sys.stdin)["webhooks"]:
    s = w["clientConfig"]["service"]
    print("%s %s %s %s/%s:%s%s" % (w["name"], w["failurePolicy"], w["sideEffects"], s["namespace"], s["name"], s["port"], s["path"]), end=";")' <<<"$mwc")"
    expect_eq "controller args name the release's webhook configuration, Secrets and Lease" \
        "--webhook-configuration=$rel-sidecar-injector --webhook-secret=$rel-webhook-tls --push-signing-secret=$rel-push-signing-key --lease-name=$rel-controller" \
        "$(k -n "$ns" get deploy "$rel-controller" -o json | python3 -c 'import json,sys
a = json.load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]["args"]
want = ("--webhook-configuration=", "--webhook-secret=", "--push-signing-secret=", "--lease-name=")
print(" ".join(x for w in want for x in a if x.startswith(w)))')"
    expect_eq "no kubelet: the Deployment is stored, no pod runs (0 ready replicas)" "" \
        "$(k -n "$ns" get deploy "$rel-controller" -o jsonpath='{.status.readyReplicas}')"

    # RBAC as the controller's service account: what it needs, and not more.
    sa="system:serviceaccount:$ns:$rel-controller"
    can() { k auth can-i --as="$sa" "$@" 2>/dev/null; }
    for q in "list pods -A" "watch services -A" "create events -n default" "create tokenreviews" \
        "create secrets -n $ns" "get secrets/$rel-webhook-tls -n $ns" "get secrets/$rel-push-signing-key -n $ns" \
        "update secrets/$rel-push-signing-key -n $ns" "update leases/$rel-controller -n $ns" "create leases -n $ns" \
        "patch mutatingwebhookconfigurations/$rel-sidecar-injector"; do
        # shellcheck disable=SC2086 # q is a list of words on purpose
        expect_eq "RBAC allows: $q" yes "$(can $q)"
    done
    # Issue 12: no Secret outside its namespace (it could mint a service-account-token Secret for any
    # ServiceAccount and read it), no token minting, no impersonation, nothing it does not use.
    for q in "get secrets/other -n shop" "list secrets -A" "delete pods -n shop" "get secrets/$rel-webhook-tls -n shop" \
        "update leases/other -n $ns" "patch mutatingwebhookconfigurations/other" \
        "get secrets/$rel-push-signing-key -n shop" "get secrets/$rel-push-signing-key -n kube-system" \
        "get secrets -n kube-system" "update secrets/other -n $ns" \
        "create secrets -n shop" "create secrets -n kube-system" "create secrets -A" \
        "get secrets/memha-sidecar-token -n shop" "update secrets/memha-sidecar-token -n shop" \
        "get secrets/$rel-sidecar-token -n $ns" "create serviceaccounts/token -n shop" "create serviceaccounts -n shop" \
        "impersonate serviceaccounts -n shop" "get pods -n shop" "patch pods -n shop" "create pods -n shop" \
        "patch leases/$rel-controller -n $ns"; do
        # shellcheck disable=SC2086
        expect_eq "RBAC denies: $q" no "$(can $q)"
    done

    # The controller patches caBundle in; a helm upgrade must not blank it (the chart does not manage the field).
    fake_bundle="$(printf 'not a real CA' | base64 -w0)"
    check "patch caBundle of both webhooks, as the controller does" k patch mutatingwebhookconfiguration \
        "$rel-sidecar-injector" --type=json -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$fake_bundle\"},{\"op\":\"add\",\"path\":\"/webhooks/1/clientConfig/caBundle\",\"value\":\"$fake_bundle\"}]"
    check "helm upgrade with the same values (no change needed)" \
        helm upgrade "$rel" "$chart" -n "$ns" --wait=false --timeout 120s --set 'networkPolicy.sidecars.namespaces={'"$ns"'}'
    check "helm upgrade --set webhook.failurePolicy=Fail" \
        helm upgrade "$rel" "$chart" -n "$ns" --wait=false --timeout 120s --reuse-values --set webhook.failurePolicy=Fail
    expect_eq "upgrade changed failurePolicy" "Fail Fail" \
        "$(k get mutatingwebhookconfiguration "$rel-sidecar-injector" -o jsonpath='{.webhooks[0].failurePolicy} {.webhooks[1].failurePolicy}')"
    expect_eq "helm upgrades keep the caBundle the controller set" "$fake_bundle $fake_bundle" \
        "$(k get mutatingwebhookconfiguration "$rel-sidecar-injector" -o jsonpath='{.webhooks[0].clientConfig.caBundle} {.webhooks[1].clientConfig.caBundle}')"
    check "helm uninstall" helm uninstall "$rel" -n "$ns" --timeout 120s
    if k get mutatingwebhookconfiguration "$rel-sidecar-injector" >/dev/null 2>&1 ||
        k get clusterrole "$rel-controller" >/dev/null 2>&1; then
        bad "uninstall removed the cluster-scoped objects"
    else
        ok "uninstall removed the cluster-scoped objects"
    fi
    ;;

apply)
    [ $# -eq 2 ] || { echo "usage: $0 apply KUBECONFIG" >&2; exit 2; }
    export KUBECONFIG="$2"
    m="$repo/manifests"
    # All but the Namespace: no namespace controller runs here, so a deleted namespace would stay Terminating.
    without_namespace() { python3 -c 'import sys
docs = open(sys.argv[1]).read().split("\n---\n")
print("\n---\n".join(d for d in docs if "kind: Namespace" not in d))' "$m/memha.yaml"; }
    cleanup_cmds+=("without_namespace | kubectl delete --ignore-not-found --wait=false -f -")
    # A server-side dry run needs the namespace to exist already: create just that first.
    check "kubectl apply the Namespace of manifests/" bash -c "python3 -c 'import sys
docs = open(sys.argv[1]).read().split(\"\\n---\\n\")
print(\"\\n---\\n\".join(d for d in docs if \"kind: Namespace\" in d))' '$m/memha.yaml' | kubectl apply -f -"
    check "kubectl apply --dry-run=server -f manifests/" k apply --dry-run=server -f "$m"
    check "kubectl apply -f manifests/" k apply -f "$m"
    fake_bundle="$(printf 'not a real CA' | base64 -w0)"
    check "patch caBundle, as the controller does" k patch mutatingwebhookconfiguration memha-sidecar-injector \
        --type=json -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$fake_bundle\"}]"
    check "kubectl apply -f manifests/ again (idempotent)" k apply -f "$m"
    expect_eq "a re-apply keeps the caBundle the controller set" "$fake_bundle" \
        "$(k get mutatingwebhookconfiguration memha-sidecar-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}')"
    for obj in deployment/memha-controller service/memha-controller serviceaccount/memha-controller \
        poddisruptionbudget/memha-controller networkpolicy/memha-controller role/memha-controller; do
        check "$obj exists in memha-system" k -n memha-system get "$obj"
    done
    check "mutatingwebhookconfiguration/memha-sidecar-injector exists" k get mutatingwebhookconfiguration memha-sidecar-injector
    check "clusterrole/memha-controller exists" k get clusterrole memha-controller
    # No namespace controller runs here, so the namespace itself would stay Terminating: delete what is in it.
    if without_namespace | k delete --wait=false -f - >>"$work/cmd.log" 2>&1; then
        ok "kubectl delete -f manifests/ (all but the Namespace)"
    else
        bad "kubectl delete -f manifests/ (all but the Namespace)"
        tail -n 15 "$work/cmd.log" | sed 's/^/  | /'
    fi
    ;;
*)
    echo "usage: $0 sync | install KUBECONFIG | apply KUBECONFIG" >&2
    exit 2
    ;;
esac
finish
