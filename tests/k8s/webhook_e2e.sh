#!/usr/bin/env bash
# End-to-end test of the sidecar injector on the real local kube-apiserver.
#
# Usage: tests/k8s/webhook_e2e.sh MEMHA_WEBHOOK_E2E_BINARY KUBECONFIG
#
# memha-webhook-e2e (tests/controller/webhook/webhook_e2e_server.cc) runs the controller's webhook start-up
# against the apiserver - webhook certificate in a Secret, caBundle patched into a
# MutatingWebhookConfiguration - and serves /mutate on 127.0.0.1 (reached by URL: no kubelet or kube-proxy here,
# so no Service routing). Pods are then created with kubectl and the stored objects checked. No pod ever runs.
# Prints PASS/FAIL lines and "webhook_e2e: N passed, N failed"; exits 1 on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
[ $# -eq 2 ] || { echo "usage: $0 MEMHA_WEBHOOK_E2E_BINARY KUBECONFIG" >&2; exit 2; }
hook_bin="$1"
export KUBECONFIG="$2"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() {
    echo "webhook_e2e: $pass passed, $fail failed"
    [ "$fail" = 0 ] && [ "$pass" -gt 0 ]
    exit $?
}
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi; }

work="$(mktemp -d "${TMPDIR:-/tmp}/memha-webhook-e2e.XXXXXX")"
id="$(date +%s)-$$"
ctl="memha-hook-ctl-$id"   # the "controller" namespace: the webhook TLS Secret
app="memha-hook-app-$id"   # pods opt in by label
nsel="memha-hook-ns-$id"   # namespace labelled memha.io/inject=enabled
dry="memha-hook-dry-$id"   # only dry runs happen here
mwc="memha-hook-$id"
pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "${KUBECTL:-}" ]; then
        "$KUBECTL" delete mutatingwebhookconfiguration "$mwc" --ignore-not-found --wait=false >/dev/null 2>&1
        for n in "$ctl" "$app" "$nsel" "$dry"; do # no namespace controller: delete the objects, not the namespace
            "$KUBECTL" -n "$n" delete pods,secrets --all --wait=false >/dev/null 2>&1
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

bin="$("$repo/scripts/k8s-tools/build.sh" 2>"$work/build.log" | tail -n 1)"
if [ -z "$bin" ] || [ ! -x "$bin/kubectl" ]; then
    bad "tools from scripts/k8s-tools/build.sh"
    finish
fi
KUBECTL="$bin/kubectl"
k() { "$KUBECTL" --request-timeout=30s "$@"; }
[ -x "$hook_bin" ] || { bad "webhook binary $hook_bin exists"; finish; }

for n in "$ctl" "$app" "$nsel" "$dry"; do k create namespace "$n" >/dev/null || bad "create namespace $n"; done
k label namespace "$app" "$dry" "memha-e2e/run=$id" >/dev/null
k label namespace "$nsel" "memha-e2e/run=$id" memha.io/inject=enabled >/dev/null

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# The chart's two webhooks, scoped to this run's namespaces, reached by URL; failurePolicy Fail so that a webhook
# that cannot be called shows up as an error here instead of a silently unmutated pod.
webhook_entry() { # NAME NAMESPACE_LABELS OBJECT_SELECTOR
    cat <<EOF2
- name: $1
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  clientConfig:
    url: https://127.0.0.1:$port/mutate
  rules:
  - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: Namespaced}
  namespaceSelector:
    matchLabels: {$2}
  objectSelector: $3
EOF2
}
{
    printf 'apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: %s\nwebhooks:\n' "$mwc"
    webhook_entry pod.inject.memha.io "memha-e2e/run: \"$id\"" '{matchLabels: {memha.io/inject: "true"}}'
    webhook_entry namespace.inject.memha.io "memha-e2e/run: \"$id\", memha.io/inject: enabled" \
        '{matchExpressions: [{key: memha.io/inject, operator: DoesNotExist}]}'
} >"$work/mwc.yaml"
if k apply -f "$work/mwc.yaml" >"$work/cmd.log" 2>&1; then ok "MutatingWebhookConfiguration $mwc without caBundle"; else
    bad "create MutatingWebhookConfiguration"
    sed 's/^/  | /' "$work/cmd.log"
    finish
fi

start_hook() { # LOGFILE PORTFILE
    "$hook_bin" --kubeconfig "$KUBECONFIG" --namespace "$ctl" --webhook-configuration "$mwc" --port "$port" \
        --port-file "$2" --sidecar-image registry.example/memha:e2e --timeout-s 300 >"$1" 2>&1 &
    pids+=($!)
}
start_hook "$work/hook1.log" "$work/hook1.port"
for _ in $(seq 1 100); do [ -s "$work/hook1.port" ] && break; sleep 0.1; done
if [ -s "$work/hook1.port" ]; then ok "memha-webhook-e2e serves https://127.0.0.1:$port/mutate"; else
    bad "memha-webhook-e2e starts"
    sed 's/^/  | /' "$work/hook1.log"
    finish
fi

# ------------------------------------------------------------- what the start-up stored
expect_eq "webhook certificate Secret $ctl/memha-webhook-tls (kubernetes.io/tls, ca.crt + tls.crt + tls.key)" \
    "kubernetes.io/tls yes yes yes" \
    "$(k -n "$ctl" get secret memha-webhook-tls -o json | python3 -c 'import json,sys
s = json.load(sys.stdin); d = s["data"]
print(s["type"], *("yes" if d.get(x) else "no" for x in ("ca.crt", "tls.crt", "tls.key")))')"
k -n "$ctl" get secret memha-webhook-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >"$work/ca.crt"
bundle="$(k get mutatingwebhookconfiguration "$mwc" -o jsonpath='{.webhooks[*].clientConfig.caBundle}')"
want="$(base64 -w0 <"$work/ca.crt")"
expect_eq "caBundle of both webhooks is the Secret's CA" "$want $want" "$bundle"
k -n "$ctl" get secret memha-webhook-tls -o jsonpath='{.data.tls\.crt}' | base64 -d >"$work/tls.crt"
if openssl verify -CAfile "$work/ca.crt" -purpose sslserver "$work/tls.crt" >/dev/null 2>&1 &&
    openssl x509 -in "$work/tls.crt" -noout -ext subjectAltName | grep -q "DNS:memha-controller.$ctl.svc"; then
    ok "serving certificate verifies against the CA and names memha-controller.$ctl.svc"
else bad "serving certificate verifies and names the Service"; fi
expect_eq "no shared sidecar token Secret (issue 12)" NotFound \
    "$(k -n "$ctl" get secret memha-sidecar-token 2>&1 | grep -o NotFound)"

# ------------------------------------------------------------- pods
pod_yaml() { # NAME LABELS-JSON ANNOTATIONS-JSON
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","labels":%s,"annotations":%s},"spec":{"containers":[{"name":"app","image":"shop/web:1"}]}}' "$1" "$2" "$3"
}
# The apiserver's webhook informer may lag a moment behind the configuration: retry the first pod until mutated.
injected() { k -n "$1" get pod "$2" -o jsonpath='{.spec.initContainers[*].name}' 2>/dev/null; }
got=""
for _ in $(seq 1 40); do
    k -n "$app" delete pod web-a --ignore-not-found --wait=false >/dev/null 2>&1
    pod_yaml web-a '{"memha.io/inject":"true"}' '{"memha.io/pools":"cache-a"}' | k -n "$app" create -f - >/dev/null 2>&1
    got="$(injected "$app" web-a)"
    [ "$got" = memha-sidecar ] && break
    sleep 0.5
done
expect_eq "pod with memha.io/inject=true + memha.io/pools is stored with the sidecar" memha-sidecar "$got"
k -n "$app" get pod web-a -o json >"$work/web-a.json"
expect_eq "the sidecar is a native sidecar running memha-sidecar with the admin and health ports (probes on the health port), token, state, controller URL and pod" \
    "Always registry.example/memha:e2e /readyz 11298 True --admin-address=0.0.0.0 --admin-port=11299 --health-port=11298 --controller-token-file=/var/run/memha/token/token --state-file=/var/run/memha/state/topology.json --controller-url=http://memha-controller.$ctl.svc:8080 --pod=\$(MEMHA_POD_NAMESPACE)/\$(MEMHA_POD_NAME) injected" \
    "$(python3 -c 'import json,sys
p = json.load(open(sys.argv[1])); c = p["spec"]["initContainers"][0]
print(c["restartPolicy"], c["image"], c["startupProbe"]["httpGet"]["path"], c["startupProbe"]["httpGet"]["port"],
      c["securityContext"]["readOnlyRootFilesystem"], " ".join(a for a in c["args"] if not a.startswith("--log-level")),
      p["metadata"]["labels"].get("memha.io/sidecar"))' "$work/web-a.json")"
# The sidecar's identity is the pod's own ServiceAccount token, projected for audience memha only and short-lived:
# the API server stored the volume as injected, and no Secret was made in the application namespace.
expect_eq "the pod's projected ServiceAccount token (audience memha, 600 s) is mounted read-only; no Secret volume" \
    "memha 600 token /var/run/memha/token True no-secret" \
    "$(python3 -c 'import json,sys
p = json.load(open(sys.argv[1])); s = p["spec"]
v = [x for x in s["volumes"] if x["name"] == "memha-token"][0]["projected"]["sources"][0]["serviceAccountToken"]
m = [x for x in s["initContainers"][0]["volumeMounts"] if x["name"] == "memha-token"][0]
print(v["audience"], v["expirationSeconds"], v["path"], m["mountPath"], m["readOnly"],
      "secret" if any("secret" in x for x in s["volumes"]) else "no-secret")' "$work/web-a.json")"
expect_eq "no Secret is created in the application namespace" "" \
    "$(k -n "$app" get secrets -o name 2>/dev/null | grep memha)"

pod_yaml web-b '{"memha.io/inject":"false"}' '{"memha.io/pools":"cache-a"}' | k -n "$app" create -f - >/dev/null 2>&1
expect_eq "pod with memha.io/inject=false is unchanged" "" "$(injected "$app" web-b)"

pod_yaml web-c '{"memha.io/inject":"true"}' '{}' | k -n "$app" create -f - >"$work/c.out" 2>&1
expect_eq "pod without memha.io/pools is created unchanged" "" "$(injected "$app" web-c)"
if grep -q 'Warning: memha: .*memha.io/pools' "$work/c.out"; then ok "kubectl shows the webhook's warning"; else
    bad "kubectl shows the webhook's warning"
    sed 's/^/  | /' "$work/c.out"
fi
pod_yaml web-d '{"memha.io/inject":"true"}' '{"memha.io/pools":"cache-a:99999"}' | k -n "$app" create -f - >/dev/null 2>&1
expect_eq "pod with a malformed memha.io/pools is created unchanged" "" "$(injected "$app" web-d)"

# memha.io/socket: the API server stores the socket emptyDir, mounted in the sidecar and the app container at the
# same path, with MEMHA_SOCKET_DIR set for the app (issue 14).
pod_yaml web-s '{"memha.io/inject":"true"}' '{"memha.io/pools":"cache-a","memha.io/socket":"on"}' |
    k -n "$app" create -f - >/dev/null 2>&1
expect_eq "pod with memha.io/socket=on gets the socket volume in the sidecar and the app, and MEMHA_SOCKET_DIR" \
    "memha-sidecar emptyDir /var/run/memha/sockets /var/run/memha/sockets /var/run/memha/sockets" \
    "$(k -n "$app" get pod web-s -o json | python3 -c 'import json,sys
s = json.load(sys.stdin)["spec"]
v = [x for x in s["volumes"] if x["name"] == "memha-sockets"][0]
mount = lambda c: [m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] == "memha-sockets"][0]
env = [e["value"] for e in s["containers"][0]["env"] if e["name"] == "MEMHA_SOCKET_DIR"][0]
print(s["initContainers"][0]["name"], "emptyDir" if "emptyDir" in v else "?", mount(s["initContainers"][0]),
      mount(s["containers"][0]), env)' 2>&1)"
pod_yaml web-t '{"memha.io/inject":"true"}' '{"memha.io/pools":"cache-a","memha.io/socket":"yes"}' |
    k -n "$app" create -f - >"$work/t.out" 2>&1
expect_eq "pod with a bad memha.io/socket is created unchanged, with the webhook's warning" "yes" \
    "$([ -z "$(injected "$app" web-t)" ] && grep -q 'Warning: memha: memha.io/socket' "$work/t.out" && echo yes)"

pod_yaml web-e '{"app":"web"}' '{"memha.io/pools":"cache-a,sessions:11212"}' | k -n "$nsel" create -f - >/dev/null 2>&1
expect_eq "pod in a namespace labelled memha.io/inject=enabled gets the sidecar" memha-sidecar "$(injected "$nsel" web-e)"
pod_yaml web-f '{"memha.io/inject":"false"}' '{"memha.io/pools":"cache-a"}' | k -n "$nsel" create -f - >/dev/null 2>&1
expect_eq "... unless the pod says memha.io/inject=false" "" "$(injected "$nsel" web-f)"

# An injected pod submitted again (its stored spec under a new name) comes back unchanged.
python3 -c 'import json,sys
p = json.load(open(sys.argv[1]))
p["metadata"] = {"name": "web-a2", "labels": p["metadata"]["labels"], "annotations": p["metadata"]["annotations"]}
p.pop("status", None)
json.dump(p, sys.stdout)' "$work/web-a.json" | k -n "$app" create -f - >/dev/null 2>&1
expect_eq "a re-submitted injected pod keeps exactly one sidecar, unchanged" "memha-sidecar same" \
    "$(k -n "$app" get pod web-a2 -o json | python3 -c 'import json,sys
a = json.load(sys.stdin)["spec"]; b = json.load(open(sys.argv[1]))["spec"]
print(" ".join(c["name"] for c in a["initContainers"]), "same" if a["initContainers"] == b["initContainers"] and a["volumes"] == b["volumes"] else "changed")' "$work/web-a.json")"

# dryRun: the answer shows the sidecar, and nothing is stored (the webhook has no side effects at all).
pod_yaml web-g '{"memha.io/inject":"true"}' '{"memha.io/pools":"cache-a"}' |
    k -n "$dry" create --dry-run=server -o jsonpath='{.spec.initContainers[*].name}' -f - >"$work/dry.out" 2>&1
expect_eq "server-side dry run returns the injected pod" memha-sidecar "$(cat "$work/dry.out")"
expect_eq "... stores nothing and creates no token Secret" "NotFound NotFound" \
    "$(k -n "$dry" get pod web-g 2>&1 | grep -o NotFound) $(k -n "$dry" get secret memha-sidecar-token 2>&1 | grep -o NotFound)"

# A second replica starting up reads the same certificate instead of making a new one.
rv="$(k -n "$ctl" get secret memha-webhook-tls -o jsonpath='{.metadata.resourceVersion}')"
port_save="$port"
port=0
start_hook "$work/hook2.log" "$work/hook2.port"
port="$port_save"
for _ in $(seq 1 100); do [ -s "$work/hook2.port" ] && break; sleep 0.1; done
expect_eq "a second replica reuses the stored certificate (Secret unchanged) and the caBundle stays" \
    "$rv $want" \
    "$(k -n "$ctl" get secret memha-webhook-tls -o jsonpath='{.metadata.resourceVersion}') $(k get mutatingwebhookconfiguration "$mwc" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')"
port2="$(cat "$work/hook2.port" 2>/dev/null)"
if [ -n "$port2" ] && curl -fsS --noproxy '*' --cacert "$work/ca.crt" --resolve "memha-controller.$ctl.svc:$port2:127.0.0.1" \
    "https://memha-controller.$ctl.svc:$port2/healthz" >/dev/null 2>&1; then
    ok "the second replica serves the same certificate (verified by name with the shared CA)"
else bad "the second replica serves the same certificate"; fi

# Bad input straight at the webhook: a clear 400, and it keeps serving.
code="$(curl -sS --noproxy '*' --cacert "$work/ca.crt" -o "$work/bad.out" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data '{not json' "https://127.0.0.1:$port/mutate")"
if [ "$code" = 400 ] && grep -q 'invalid JSON' "$work/bad.out"; then ok "invalid JSON gets 400 with a reason"; else
    bad "invalid JSON gets 400 ('$code' $(cat "$work/bad.out"))"
fi
if grep -q "decision=injected" "$work/hook1.log" && grep -q "decision=no_pools" "$work/hook1.log"; then
    ok "the webhook logged its decisions"
else bad "the webhook logged its decisions"; sed 's/^/  | /' "$work/hook1.log" | tail -20; fi
finish
