#!/usr/bin/env python3
"""memha end to end on a real node (run by tests/node/e2e.sh, which builds the images and brings the node up).

helm installs charts/memha with the image built from the Dockerfile; memcached runs as StatefulSets (pools
cache-a, 2 members, backup cache-b, 1 member; cache-c for the re-annotation); the application (Deployment shop/web,
2 replicas of tests/node/images/app, a verifying read-through client of localhost:11211) is injected by the real
webhook through its Service. Under that traffic, one step after another:
  container-kill  memcached of cache-a-0 killed (SIGKILL); the kubelet restarts the container, empty
  pod-delete      pod cache-a-1 deleted; the StatefulSet recreates it with a new IP, empty
  rolling-restart kubectl rollout restart statefulset cache-a (every member restarts empty, one at a time)
  leader-delete   the controller replica holding the Lease is deleted
  annotate        kubectl annotate service cache-a memha.io/backup-pool=cache-c --overwrite
  helm-upgrade    helm upgrade with a new sidecar image tag, then the app pods restart onto it
  helm-uninstall  helm uninstall: nothing of the release is left; the sidecars keep serving
Targets: 0 client errors, 0 stale or wrong values, >= 97% hits in the window after every empty restart.
Prints one line per step and a PASS/FAIL table; exit 1 on any failure.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

NS = "shop"
REL = "memha"
RNS = "memha-system"
HIT_TARGET = 97.0


def kubectl(*args, check=True, timeout=120, input=None):
    r = subprocess.run(["kubectl", "--request-timeout=30s", *args], capture_output=True, text=True,
                       timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError("kubectl %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def kjson(*args):
    return json.loads(kubectl(*args, "-o", "json"))


def helm(*args, timeout=300):
    r = subprocess.run(["helm", *args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("helm %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def wait(what, cond, timeout=120, interval=0.3):
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        try:
            v = cond()
            if v:
                return time.time() - t0
        except Exception as e:  # noqa: BLE001 (API hiccups while pods come and go)
            last = e
        time.sleep(interval)
    raise RuntimeError("timed out after %d s waiting for %s (%s)" % (timeout, what, last))


# ----------------------------------------------------------------------------------------------- collector
class Collector:
    """The app pods send their cumulative counters as UDP datagrams; the latest per pod is kept."""

    def __init__(self, host):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.addr = "%s:%d" % self.sock.getsockname()
        self.latest = {}
        self.lock = threading.Lock()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            data, _ = self.sock.recvfrom(65536)
            try:
                m = json.loads(data)
            except ValueError:
                continue
            with self.lock:
                old = self.latest.get(m["pod"])
                if old is None or m["t"] >= old["t"]:
                    self.latest[m["pod"]] = m

    def totals(self):
        keys = ("gets", "hits", "misses", "errors", "stale", "bad", "own_reads", "own_writes")
        with self.lock:
            t = {k: sum(p.get(k, 0) for p in self.latest.values()) for k in keys}
            t["pods"] = len(self.latest)
            t["last_errors"] = [p["pod"] + ": " + p["last_error"] for p in self.latest.values() if p.get("last_error")]
        return t


def delta(a, b):
    d = {k: b[k] - a[k] for k in ("gets", "hits", "misses", "errors", "stale", "bad", "own_reads", "own_writes")}
    d["hit_pct"] = 100.0 * d["hits"] / d["gets"] if d["gets"] else 0.0
    return d


# ----------------------------------------------------------------------------------------------- the cluster
def pod_ready(p):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))


def pods(selector, ns=NS):
    return [p for p in kjson("-n", ns, "get", "pods", "-l", selector)["items"]
            if not p["metadata"].get("deletionTimestamp")]


def sidecar_states(ns=NS):
    """{app pod: {member: (address, state)}} from each sidecar's metrics on its pod IP (the probes' port)."""
    out = {}
    for p in pods("app=web", ns):
        ip = p["status"].get("podIP")
        if not ip or not pod_ready(p):
            continue
        body = urllib.request.urlopen("http://%s:11298/metrics" % ip, timeout=2).read().decode()
        st = {}
        for m in re.finditer(r'^memha_member_state\{([^}]*)\} (\S+)$', body, re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            st[labels.get("member")] = (labels.get("address"), int(float(m.group(2))))
        out[p["metadata"]["name"]] = st
    return out


STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %(name)s, namespace: shop}
spec:
  serviceName: %(name)s
  replicas: %(replicas)d
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: memcached
        image: %(image)s
        imagePullPolicy: Never
        args: ["-m", "64", "-p", "11211", "-U", "0", "-c", "1024"]
        ports: [{containerPort: 11211, name: memcached}]
        readinessProbe: {tcpSocket: {port: 11211}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Service
metadata: {name: %(name)s, namespace: shop}
spec:
  selector: {app: %(name)s}
  ports: [{port: 11211, targetPort: 11211, name: memcached}]
"""

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  strategy: {rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {memha.io/pools: cache-a}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: app
        image: %(image)s
        imagePullPolicy: Never
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: COLLECTOR, value: "%(collector)s"}
        - {name: RATE, value: "%(rate)s"}
        - {name: KEYS, value: "2000"}
"""


class Run:
    def __init__(self, a):
        self.a = a
        self.col = Collector(a.collector_host)
        self.results = []  # (step, ok, detail)
        self.t_start = time.time()

    def log(self, msg):
        print("[%6.1f s] %s" % (time.time() - self.t_start, msg), flush=True)

    def check(self, step, ok, detail):
        self.results.append((step, bool(ok), detail))
        self.log("%s %s: %s" % ("PASS" if ok else "FAIL", step, detail))

    def window(self, seconds):
        a = self.col.totals()
        time.sleep(seconds)
        return delta(a, self.col.totals())

    def traffic_check(self, step, d, hits=True):
        ok = d["errors"] == 0 and d["stale"] == 0 and d["bad"] == 0 and d["gets"] > 0
        if hits:
            ok = ok and d["hit_pct"] >= HIT_TARGET
        self.check(step + " traffic", ok, "%d gets, %.2f%% hits, %d errors, %d stale, %d wrong%s" % (
            d["gets"], d["hit_pct"], d["errors"], d["stale"], d["bad"],
            "" if d["errors"] == 0 else " (last: %s)" % "; ".join(self.col.totals()["last_errors"][:2])))

    # ------------------------------------------------------------------------------------------- setup
    def setup(self):
        a = self.a
        t0 = time.time()
        helm("install", REL, a.chart, "-n", RNS, "--create-namespace", "--wait", "--timeout", "240s",
             "--set", "image.repository=" + a.memha_repo, "--set", "image.tag=" + a.memha_tag,
             "--set", "image.pullPolicy=Never")
        self.check("helm install", True, "controller Deployment available in %.1f s (image %s:%s)" % (
            time.time() - t0, a.memha_repo, a.memha_tag))
        t_helm = time.time()
        kubectl("create", "namespace", NS)
        kubectl("label", "namespace", NS, "memha.io/inject=enabled")
        wait("the default ServiceAccount of shop", lambda: kubectl("-n", NS, "get", "sa", "default", check=False))
        # A user deploys right after `helm install --wait`: the webhook must inject by then. A server-side dry run
        # calls it without creating anything; the wait goes on (so the steps still run) and its length is the figure.
        probe = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": NS,
                            "annotations": {"memha.io/pools": "cache-a"}},
                            "spec": {"containers": [{"name": "c", "image": a.app_image}]}})

        def injected():
            p = json.loads(kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=probe))
            return any(c["name"] == "memha-sidecar" for c in p["spec"].get("initContainers", []))
        first = injected()
        t_inj = 0.0 if first else wait("the webhook injects", injected, timeout=120, interval=0.5)
        self.check("webhook ready with helm install --wait", first,
                   "a dry-run pod %s (%.1f s after helm returned)" % (
                       "was injected at once" if first else "was injected only %.1f s later" % t_inj,
                       time.time() - t_helm))
        for name, n in (("cache-a", 2), ("cache-b", 1), ("cache-c", 1)):
            kubectl("apply", "-f", "-", input=STATEFULSET % {"name": name, "replicas": n, "image": a.memcached_image})
        kubectl("-n", NS, "annotate", "service", "cache-a", "memha.io/backup-pool=cache-b")
        wait("memcached pods Ready", lambda: len([p for p in pods("app in (cache-a,cache-b,cache-c)") if pod_ready(p)]) == 4)
        t0 = time.time()
        kubectl("apply", "-f", "-", input=APP % {"image": a.app_image, "collector": self.col.addr, "rate": a.rate})
        wait("web pods Ready", lambda: len([p for p in pods("app=web") if pod_ready(p)]) == 2, timeout=180)
        p = pods("app=web")[0]
        inits = [c["name"] for c in p["spec"].get("initContainers", []) if c.get("restartPolicy") == "Always"]
        images = [c["image"] for c in p["spec"].get("initContainers", [])]
        self.check("injection", "memha-sidecar" in inits or any("sidecar" in n for n in inits),
                   "web pods Ready in %.1f s; native sidecars %s (%s)" % (time.time() - t0, inits, ", ".join(images)))
        st = wait("sidecars see cache-a and cache-b", lambda: all(
            {"cache-a-0", "cache-a-1", "cache-b-0"} <= set(s) for s in sidecar_states().values()) and sidecar_states())
        self.log("sidecars have their topology (%.1f s)" % st)
        wait("traffic from both app pods", lambda: self.col.totals()["pods"] >= 2 and self.col.totals()["gets"] > 500,
             timeout=60)

    # ------------------------------------------------------------------------------------------- steps
    def member_back(self, member, old_addr=None):
        """Time until every sidecar holds member up or warming (at a new address if old_addr is given)."""
        def ok():
            ss = sidecar_states()
            return ss and all(member in s and s[member][1] in (1, 2) and (old_addr is None or s[member][0] != old_addr)
                              for s in ss.values())
        return wait("%s back in every sidecar" % member, ok, timeout=90, interval=0.1)

    def step_container_kill(self):
        p = kjson("-n", NS, "get", "pod", "cache-a-0")
        cid = p["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
        restarts = p["status"]["containerStatuses"][0]["restartCount"]
        before = self.col.totals()
        t0 = time.time()
        subprocess.run(["ctr", "--address", self.a.containerd_sock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL",
                        cid], check=True, capture_output=True)
        wait("cache-a-0 restarted", lambda: kjson("-n", NS, "get", "pod", "cache-a-0")["status"]["containerStatuses"][0]
             ["restartCount"] > restarts and pod_ready(kjson("-n", NS, "get", "pod", "cache-a-0")), timeout=90, interval=0.2)
        t_restart = time.time() - t0
        t_back = self.member_back("cache-a-0")
        d = self.window(self.a.window)
        self.traffic_check("container-kill", delta(before, self.col.totals()))
        self.check("container-kill", True, "kubelet restarted the container in %.1f s; sidecars had it back %.1f s "
                   "later; window after: %.2f%% hits" % (t_restart, t_back, d["hit_pct"]))
        if d["hit_pct"] < HIT_TARGET:
            self.check("container-kill hits after empty restart", False, "%.2f%%" % d["hit_pct"])

    def step_pod_delete(self):
        old_ip = kjson("-n", NS, "get", "pod", "cache-a-1")["status"]["podIP"]
        old_uid = kjson("-n", NS, "get", "pod", "cache-a-1")["metadata"]["uid"]
        before = self.col.totals()
        t0 = time.time()
        kubectl("-n", NS, "delete", "pod", "cache-a-1", "--wait=false")

        def recreated():
            p = kjson("-n", NS, "get", "pod", "cache-a-1")
            return p["metadata"]["uid"] != old_uid and pod_ready(p)
        wait("cache-a-1 recreated", recreated, timeout=120)
        t_pod = time.time() - t0
        new_ip = kjson("-n", NS, "get", "pod", "cache-a-1")["status"]["podIP"]
        t_back = self.member_back("cache-a-1", "%s:11211" % old_ip if new_ip != old_ip else None)
        d = self.window(self.a.window)
        self.traffic_check("pod-delete", delta(before, self.col.totals()))
        self.check("pod-delete", new_ip != old_ip and d["hit_pct"] >= HIT_TARGET,
                   "recreated Ready in %.1f s with IP %s (was %s); every sidecar on the new address %.1f s later; "
                   "window after: %.2f%% hits" % (t_pod, new_ip, old_ip, t_back, d["hit_pct"]))

    def step_rolling_restart(self):
        before = self.col.totals()
        t0 = time.time()
        kubectl("-n", NS, "rollout", "restart", "statefulset", "cache-a")
        kubectl("-n", NS, "rollout", "status", "statefulset", "cache-a", "--timeout=180s", timeout=200)
        t_roll = time.time() - t0
        t_back = self.member_back("cache-a-0")
        self.member_back("cache-a-1")
        d = self.window(self.a.window)
        self.traffic_check("rolling-restart", delta(before, self.col.totals()))
        self.check("rolling-restart", d["hit_pct"] >= HIT_TARGET,
                   "rollout of cache-a done in %.1f s; sidecars current %.1f s later; window after: %.2f%% hits" % (
                       t_roll, t_back, d["hit_pct"]))

    def lease_holder(self):
        for l in kjson("-n", RNS, "get", "leases")["items"]:
            h = l["spec"].get("holderIdentity")
            if h and "controller" in l["metadata"]["name"]:
                return h, l["metadata"]["name"]
        return None, None

    def step_leader_delete(self):
        holder, lease = self.lease_holder()
        before = self.col.totals()
        t0 = time.time()
        kubectl("-n", RNS, "delete", "pod", holder, "--wait=false")
        t_new = wait("a new leader", lambda: self.lease_holder()[0] not in (None, holder), timeout=90)
        new = self.lease_holder()[0]
        wait("2 controller replicas Ready", lambda: len([p for p in pods("app.kubernetes.io/name=memha", RNS)
                                                          if pod_ready(p)]) >= 2, timeout=120)
        # A change after the failover must still reach every sidecar: the new leader pushes.
        old_ip = kjson("-n", NS, "get", "pod", "cache-b-0")["status"]["podIP"]
        kubectl("-n", NS, "delete", "pod", "cache-b-0", "--wait=false")
        t1 = time.time()
        wait("cache-b-0 recreated", lambda: kjson("-n", NS, "get", "pod", "cache-b-0")["status"].get("podIP") not in
             (None, old_ip) and pod_ready(kjson("-n", NS, "get", "pod", "cache-b-0")), timeout=120)
        t_back = self.member_back("cache-b-0", "%s:11211" % old_ip)
        self.window(2)
        self.traffic_check("leader-delete", delta(before, self.col.totals()), hits=False)
        self.check("leader-delete", True, "lease %s: %s -> %s in %.1f s; then backup cache-b-0 recreated, new address "
                   "in every sidecar %.1f s after it was Ready (%.1f s after the delete)" % (
                       lease, holder, new, t_new, t_back, time.time() - t1))

    def step_annotate(self):
        before = self.col.totals()
        t0 = time.time()
        kubectl("-n", NS, "annotate", "service", "cache-a", "memha.io/backup-pool=cache-c", "--overwrite")

        def switched():
            ss = sidecar_states()
            return ss and all("cache-c-0" in s and "cache-b-0" not in s for s in ss.values())
        t = wait("backup cache-c in every sidecar", switched, timeout=60, interval=0.05)
        self.window(3)
        self.traffic_check("annotate", delta(before, self.col.totals()), hits=False)
        self.check("annotate", True, "backup-pool cache-b -> cache-c in every sidecar %.2f s after kubectl annotate"
                   % t)
        del t0

    def step_helm_upgrade(self):
        a = self.a
        new_tag = a.memha_tag + "-v2"
        subprocess.run(["ctr", "--address", a.containerd_sock, "-n", "k8s.io", "images", "tag", "--force",
                        "%s:%s" % (a.memha_repo, a.memha_tag), "%s:%s" % (a.memha_repo, new_tag)], check=True,
                       capture_output=True)
        before = self.col.totals()
        t0 = time.time()
        helm("upgrade", REL, a.chart, "-n", RNS, "--reuse-values", "--set", "sidecar.image.tag=" + new_tag,
             "--wait", "--timeout", "240s")
        t_helm = time.time() - t0
        kubectl("-n", NS, "rollout", "restart", "deployment", "web")
        kubectl("-n", NS, "rollout", "status", "deployment", "web", "--timeout=240s", timeout=260)
        t_roll = time.time() - t0
        imgs = sorted({c["image"] for p in pods("app=web") for c in p["spec"].get("initContainers", [])})
        wait("sidecars of the new pods have their topology", lambda: len(sidecar_states()) == 2 and all(
            "cache-a-0" in s for s in sidecar_states().values()), timeout=60)
        time.sleep(2)
        d = delta(before, self.col.totals())
        self.traffic_check("helm-upgrade", d, hits=False)
        self.check("helm-upgrade", imgs == ["%s:%s" % (a.memha_repo, new_tag)],
                   "helm upgrade (controller rolled) %.1f s; app pods restarted onto sidecar %s in %.1f s" % (
                       t_helm, ", ".join(imgs), t_roll))

    def step_helm_uninstall(self):
        before = self.col.totals()
        t0 = time.time()
        helm("uninstall", REL, "-n", RNS, "--wait", "--timeout", "180s")
        t_un = time.time() - t0
        wait("controller pods gone", lambda: not kjson("-n", RNS, "get", "pods")["items"], timeout=120)
        t_gone = time.time() - t0
        left = []
        for kind in ("all", "secrets", "configmaps", "serviceaccounts", "roles", "rolebindings", "leases",
                     "networkpolicies", "poddisruptionbudgets"):
            for o in kjson("-n", RNS, "get", kind)["items"]:
                n = o["metadata"]["name"]
                if kind == "configmaps" and n == "kube-root-ca.crt" or kind == "serviceaccounts" and n == "default":
                    continue
                left.append("%s/%s" % (o["kind"], n))
        for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations", "clusterroles",
                     "clusterrolebindings"):
            for o in kjson("get", kind)["items"]:
                if "memha" in o["metadata"]["name"]:
                    left.append("%s/%s" % (o["kind"], o["metadata"]["name"]))
        for kind in ("secrets", "configmaps"):
            for o in kjson("-n", NS, "get", kind)["items"]:
                if o["metadata"]["name"] != "kube-root-ca.crt":
                    left.append("shop: %s/%s" % (o["kind"], o["metadata"]["name"]))
        self.window(5)
        self.traffic_check("helm-uninstall", delta(before, self.col.totals()), hits=False)
        self.check("helm-uninstall", not left, "uninstalled in %.1f s, controller pods gone after %.1f s; "
                   "left behind: %s" % (t_un, t_gone, ", ".join(left) if left else "nothing"))

    def main(self):
        steps = [("setup", self.setup), ("warm-up", None), ("container-kill", self.step_container_kill),
                 ("pod-delete", self.step_pod_delete), ("rolling-restart", self.step_rolling_restart),
                 ("leader-delete", self.step_leader_delete), ("annotate", self.step_annotate),
                 ("helm-upgrade", self.step_helm_upgrade), ("helm-uninstall", self.step_helm_uninstall)]
        timings = []
        for name, fn in steps:
            if self.a.only and name not in self.a.only.split(",") and name not in ("setup", "warm-up"):
                continue
            t0 = time.time()
            try:
                if fn is None:
                    # Until the cache is warm (>= 99% hits over 3 s), so that a step's hit ratio is its own.
                    a0 = self.col.totals()
                    while time.time() - t0 < 90:
                        d = self.window(3)
                        if d["hit_pct"] >= 99.0:
                            break
                    d = delta(a0, self.col.totals())
                    self.traffic_check("warm-up", d, hits=False)
                    self.log("warm: %.2f%% hits over the last 3 s after %.0f s" % (
                        self.window(3)["hit_pct"], time.time() - t0))
                else:
                    fn()
            except Exception as e:  # noqa: BLE001
                self.check(name, False, "%s: %s" % (type(e).__name__, e))
                if name == "setup":
                    break
            timings.append((name, time.time() - t0))
        tot = self.col.totals()
        self.check("whole run", tot["errors"] == 0 and tot["stale"] == 0 and tot["bad"] == 0,
                   "%d gets (%.2f%% hits), %d own-key reads, %d own-key writes, %d errors, %d stale, %d wrong" % (
                       tot["gets"], 100.0 * tot["hits"] / max(1, tot["gets"]), tot["own_reads"], tot["own_writes"],
                       tot["errors"], tot["stale"], tot["bad"]))
        print("\nstep timings: " + ", ".join("%s %.1f s" % t for t in timings))
        failed = [r for r in self.results if not r[1]]
        print("node e2e: %d checks, %d failed (%.0f s)" % (len(self.results), len(failed), time.time() - self.t_start))
        for r in failed:
            print("  FAILED %s: %s" % (r[0], r[2]))
        return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chart", required=True)
    ap.add_argument("--memha-image", required=True, help="repo:tag")
    ap.add_argument("--memcached-image", required=True)
    ap.add_argument("--app-image", required=True)
    ap.add_argument("--containerd-sock", required=True)
    ap.add_argument("--collector-host", default="10.88.0.1")
    ap.add_argument("--window", type=float, default=10)
    ap.add_argument("--rate", default="300")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    a.memha_repo, a.memha_tag = a.memha_image.rsplit(":", 1)
    return Run(a).main()


if __name__ == "__main__":
    sys.exit(main())
