#!/usr/bin/env bash
# Smoke test of the local Kubernetes control plane (scripts/local-k8s): everything memha's
# controller, webhook and chart will rely on, against the real kube-apiserver.
#
# Usage: tests/k8s/smoke.sh KUBECONFIG
# The tools come from scripts/k8s-tools/build.sh (cached); if they cannot be built this FAILS.
# Prints one PASS/FAIL line per check and "smoke: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() {
    echo "smoke: $pass passed, $fail failed"
    [ "$fail" = 0 ] && [ "$pass" -gt 0 ]
    exit $?
}
# check DESCRIPTION CMD...: run CMD (output to the log), PASS/FAIL on its exit code
check() {
    local what="$1"
    shift
    if "$@" >>"$work/cmd.log" 2>&1; then ok "$what"; else
        bad "$what"
        echo "  command: $*"
        tail -n 15 "$work/cmd.log" | sed 's/^/  | /'
        return 1
    fi
}

[ $# -eq 1 ] || { echo "usage: $0 KUBECONFIG" >&2; exit 2; }
export KUBECONFIG="$1"

work="$(mktemp -d "${TMPDIR:-/tmp}/memha-k8s-smoke.XXXXXX")"
webhook_pid=""
ns=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    [ -n "$webhook_pid" ] && kill "$webhook_pid" 2>/dev/null
    if [ -n "$ns" ] && [ -n "${KUBECTL:-}" ]; then
        "$KUBECTL" delete mutatingwebhookconfiguration "$ns-label" --ignore-not-found --wait=false >/dev/null 2>&1
        # No namespace controller runs, so the namespace itself would stay Terminating; delete its objects.
        "$KUBECTL" -n "$ns" delete pods,services,serviceaccounts,roles,rolebindings,configmaps --all \
            --wait=false >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap cleanup EXIT
: >"$work/cmd.log"

# ---------------------------------------------------------------- tools
bin="$("$repo/scripts/k8s-tools/build.sh" 2>"$work/build.log" | tail -n 1)"
if [ -z "$bin" ] || [ ! -x "$bin/kubectl" ] || [ ! -x "$bin/helm" ]; then
    bad "tools from scripts/k8s-tools/build.sh"
    tail -n 30 "$work/build.log" | sed 's/^/  | /'
    finish
fi
ok "tools from scripts/k8s-tools/build.sh: $bin"
export PATH="$bin:$PATH"
KUBECTL="$bin/kubectl"
k() { "$KUBECTL" --request-timeout=30s "$@"; }

[ -f "$KUBECONFIG" ] || { bad "kubeconfig $KUBECONFIG exists (is the k8s_cluster fixture up?)"; finish; }
server="$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
api() { # api PATH [curl args...]: the API with the admin client certificate from the kubeconfig
    local p="$1"
    shift
    curl --noproxy '*' -fsS --max-time 40 --cacert "$work/ca.crt" --cert "$work/admin.crt" --key "$work/admin.key" \
        "$@" "$server$p"
}
k config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$work/ca.crt"
k config view --raw --minify -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d >"$work/admin.crt"
k config view --raw --minify -o jsonpath='{.users[0].user.client-key-data}' | base64 -d >"$work/admin.key"

# ---------------------------------------------------------------- the cluster answers
if ver="$(api /version | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')" &&
    [ -n "$ver" ]; then
    ok "apiserver $server answers /version: $ver"
else
    bad "apiserver $server answers /version"
    finish
fi
check "/readyz is ok" api /readyz
check "RBAC authorization is on (rbac.authorization.k8s.io API served, admin can do '*')" \
    bash -c "'$KUBECTL' api-versions | grep -qx rbac.authorization.k8s.io/v1 && [ \"\$('$KUBECTL' auth can-i '*' '*')\" = yes ]"

# ---------------------------------------------------------------- namespace, Service, Pod
ns="memha-smoke-$(date +%s)-$$"
check "create namespace $ns" k create namespace "$ns"
check "label namespace for the test webhook" k label namespace "$ns" memha-smoke/webhook=enabled
check "create Service cache" k -n "$ns" create service clusterip cache --tcp=11211:11211
cip="$(k -n "$ns" get service cache -o jsonpath='{.spec.clusterIP}' 2>>"$work/cmd.log")"
if [[ "$cip" =~ ^10\.0\.0\.[0-9]+$ ]]; then ok "Service got a cluster IP ($cip)"; else bad "Service got a cluster IP ('$cip')"; fi

cat >"$work/pod.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: cache-0
  labels: {app: cache}
spec:
  containers:
  - name: memcached
    image: memcached:1.6
    ports: [{containerPort: 11211}]
EOF
check "create Pod cache-0 (no kubelet: it stays Pending)" k -n "$ns" apply -f "$work/pod.yaml"
rv="$(k -n "$ns" get pod cache-0 -o jsonpath='{.metadata.resourceVersion}' 2>>"$work/cmd.log")"
phase="$(k -n "$ns" get pod cache-0 -o jsonpath='{.status.phase}' 2>>"$work/cmd.log")"
if [ "$phase" = Pending ] && [ -n "$rv" ]; then ok "Pod is Pending (resourceVersion $rv)"; else bad "Pod is Pending ('$phase', rv '$rv')"; fi

# ---------------------------------------------------------------- watches, then a status patch
# A raw API watch from the pod's resourceVersion, as memha's controller will do it...
# (curl and kubectl run directly, not through the helper functions, so that $! is their own pid.)
curl --noproxy '*' -fsS -N --max-time 60 --cacert "$work/ca.crt" --cert "$work/admin.crt" --key "$work/admin.key" \
    "$server/api/v1/namespaces/$ns/pods?watch=1&resourceVersion=$rv&fieldSelector=metadata.name%3Dcache-0&timeoutSeconds=60" \
    >"$work/watch.json" 2>"$work/watch.err" &
watch_pid=$!
# ...and kubectl's own watch.
"$KUBECTL" --request-timeout=60s -n "$ns" get pod cache-0 --watch-only -o 'jsonpath={.status.podIP}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}' \
    >"$work/kwatch.txt" 2>&1 &
kwatch_pid=$!
sleep 1

now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
status_patch='{"status":{"phase":"Running","podIP":"127.0.0.2","podIPs":[{"ip":"127.0.0.2"}],
 "conditions":[{"type":"Ready","status":"True","lastTransitionTime":"'"$now"'"},
               {"type":"ContainersReady","status":"True","lastTransitionTime":"'"$now"'"}]}}'
check "patch Pod status through the status subresource (Ready=True, podIP 127.0.0.2)" \
    k -n "$ns" patch pod cache-0 --subresource=status --type=merge -p "$status_patch"
got="$(k -n "$ns" get pod cache-0 -o jsonpath='{.status.podIP} {.status.conditions[?(@.type=="Ready")].status}' 2>>"$work/cmd.log")"
if [ "$got" = "127.0.0.2 True" ]; then ok "Pod status reads back: $got"; else bad "Pod status reads back ('$got')"; fi
check "kubectl wait --for=condition=Ready sees the Pod ready" k -n "$ns" wait pod/cache-0 --for=condition=Ready --timeout=20s

seen_watch() {
    python3 - "$work/watch.json" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    ev = json.loads(line)
    st = ev["object"].get("status", {})
    ready = [c["status"] for c in st.get("conditions", []) if c["type"] == "Ready"]
    if ev["type"] == "MODIFIED" and st.get("podIP") == "127.0.0.2" and ready == ["True"]:
        sys.exit(0)
sys.exit(1)
EOF
}
for _ in $(seq 1 100); do seen_watch && break; sleep 0.1; done
if seen_watch; then ok "API watch (?watch=1) saw MODIFIED with podIP and Ready=True"; else
    bad "API watch (?watch=1) saw MODIFIED with podIP and Ready=True"
    head -c 2000 "$work/watch.json" "$work/watch.err" | sed 's/^/  | /'
fi
for _ in $(seq 1 100); do grep -qx '127.0.0.2 True' "$work/kwatch.txt" && break; sleep 0.1; done
if grep -qx '127.0.0.2 True' "$work/kwatch.txt"; then ok "kubectl get --watch saw the change"; else
    bad "kubectl get --watch saw the change"
    sed 's/^/  | /' "$work/kwatch.txt"
fi
kill "$watch_pid" "$kwatch_pid" 2>/dev/null
wait "$watch_pid" "$kwatch_pid" 2>/dev/null

# ---------------------------------------------------------------- service accounts, tokens, RBAC
check "create ServiceAccount reader" k -n "$ns" create serviceaccount reader
token="$(k -n "$ns" create token reader --duration=10m 2>>"$work/cmd.log")"
if [ -n "$token" ]; then ok "kubectl create token works (signing key configured)"; else bad "kubectl create token works"; fi
# As the service account only: no client certificate from the admin kubeconfig.
ksa() { "$KUBECTL" --request-timeout=30s --kubeconfig=/dev/null --server="$server" \
    --certificate-authority="$work/ca.crt" --token="$token" "$@"; }
who="$(ksa auth whoami -o jsonpath='{.status.userInfo.username}' 2>>"$work/cmd.log")"
if [ "$who" = "system:serviceaccount:$ns:reader" ]; then ok "the token authenticates as $who"; else bad "the token authenticates ('$who')"; fi
if out="$(ksa -n "$ns" get pods 2>&1)"; then bad "RBAC denies the service account before a RoleBinding"; else
    if grep -q 'Forbidden' <<<"$out"; then ok "RBAC denies the service account before a RoleBinding"; else
        bad "RBAC denies the service account before a RoleBinding (not a Forbidden error)"
        echo "  | $out"
    fi
fi
check "create Role + RoleBinding pod-reader" bash -c "'$KUBECTL' -n '$ns' create role pod-reader --verb=get,list,watch --resource=pods &&
    '$KUBECTL' -n '$ns' create rolebinding pod-reader --role=pod-reader --serviceaccount='$ns':reader"
# The RBAC authorizer reads from an informer: give the new binding a moment.
for _ in $(seq 1 20); do ksa -n "$ns" get pods >/dev/null 2>&1 && break; sleep 0.25; done
check "RBAC allows the service account after the RoleBinding" ksa -n "$ns" get pods

# ---------------------------------------------------------------- a mutating webhook the apiserver really calls
if (
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 1 \
        -keyout wh-ca.key -out wh-ca.crt -subj "/CN=memha-smoke-webhook-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout wh.key -out wh.csr \
            -subj "/CN=127.0.0.1" &&
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >wh.ext &&
        openssl x509 -req -in wh.csr -CA wh-ca.crt -CAkey wh-ca.key -CAcreateserial -sha256 -days 1 \
            -extfile wh.ext -out wh.crt
) >>"$work/cmd.log" 2>&1; then ok "webhook serving certificate for 127.0.0.1"; else bad "webhook serving certificate"; fi

python3 "$here/webhook_server.py" --cert "$work/wh.crt" --key "$work/wh.key" --port-file "$work/wh.port" \
    --timeout 240 >"$work/webhook.log" 2>&1 &
webhook_pid=$!
for _ in $(seq 1 100); do [ -s "$work/wh.port" ] && break; sleep 0.1; done
whport="$(cat "$work/wh.port" 2>/dev/null)"
if [ -n "$whport" ]; then ok "test webhook listens on https://127.0.0.1:$whport"; else
    bad "test webhook starts"
    sed 's/^/  | /' "$work/webhook.log"
fi

cat >"$work/mwc.yaml" <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: $ns-label
webhooks:
- name: label.smoke.memha.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  clientConfig:
    url: https://127.0.0.1:$whport/mutate
    caBundle: $(base64 -w0 <"$work/wh-ca.crt")
  namespaceSelector:
    matchLabels: {memha-smoke/webhook: enabled}
  rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["pods"]
EOF
check "create MutatingWebhookConfiguration (url + caBundle)" k apply -f "$work/mwc.yaml"
# The apiserver's webhook configuration informer can lag a moment behind the create.
label=""
for _ in $(seq 1 30); do
    k -n "$ns" delete pod cache-1 --ignore-not-found --wait=false >>"$work/cmd.log" 2>&1
    sed 's/name: cache-0/name: cache-1/' "$work/pod.yaml" | k -n "$ns" apply -f - >>"$work/cmd.log" 2>&1
    label="$(k -n "$ns" get pod cache-1 -o jsonpath='{.metadata.labels.memha\.io/mutated}' 2>>"$work/cmd.log")"
    [ "$label" = true ] && break
    sleep 0.5
done
if [ "$label" = true ]; then ok "the apiserver called the webhook: Pod cache-1 has label memha.io/mutated=true"; else
    bad "the apiserver called the webhook (label memha.io/mutated='$label')"
    sed 's/^/  | /' "$work/webhook.log"
fi
if grep -q "CREATE $ns/cache-1" "$work/webhook.log"; then ok "the webhook logged the AdmissionReview for $ns/cache-1"; else
    bad "the webhook logged the AdmissionReview for $ns/cache-1"
    sed 's/^/  | /' "$work/webhook.log"
fi
check "delete the MutatingWebhookConfiguration" k delete mutatingwebhookconfiguration "$ns-label"

# ---------------------------------------------------------------- helm
chart="$work/chart/tiny"
mkdir -p "$chart/templates"
cat >"$chart/Chart.yaml" <<'EOF'
apiVersion: v2
name: tiny
description: A throwaway chart for the local-k8s smoke test
type: application
version: 0.1.0
appVersion: "1.0"
EOF
cat >"$chart/values.yaml" <<'EOF'
greeting: hello
port: 11211
EOF
cat >"$chart/templates/configmap.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-tiny
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
data:
  greeting: {{ .Values.greeting | quote }}
EOF
cat >"$chart/templates/service.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-tiny
spec:
  selector:
    app.kubernetes.io/instance: {{ .Release.Name }}
  ports:
  - port: {{ .Values.port }}
    targetPort: {{ .Values.port }}
EOF
check "helm lint" helm lint "$chart" --strict
if helm template smoke "$chart" -n "$ns" --set greeting=bonjour >"$work/rendered.yaml" 2>>"$work/cmd.log" &&
    grep -q 'name: smoke-tiny' "$work/rendered.yaml" && grep -q 'greeting: "bonjour"' "$work/rendered.yaml"; then
    ok "helm template renders the chart with --set"
else
    bad "helm template renders the chart"
    sed 's/^/  | /' "$work/rendered.yaml"
fi
check "server-side dry-run of the rendered manifests" k -n "$ns" apply --dry-run=server -f "$work/rendered.yaml"
check "helm install into the cluster" helm install smoke "$chart" -n "$ns" --wait=false --timeout 60s
g="$(k -n "$ns" get configmap smoke-tiny -o jsonpath='{.data.greeting}' 2>>"$work/cmd.log")"
if [ "$g" = hello ]; then ok "helm-installed ConfigMap is in the cluster"; else bad "helm-installed ConfigMap is in the cluster ('$g')"; fi
check "helm uninstall" helm uninstall smoke -n "$ns" --timeout 60s

finish
