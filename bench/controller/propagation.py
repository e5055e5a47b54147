#!/usr/bin/python3
"""Controller propagation benchmark (issue 5): from one pod status patch to every one of N sidecars having the new
topology. Driven by bench/controller/propagation.sh, which builds the binaries and brings the local control plane
up and down; this script does the rest against that cluster:

- a pool Service `cache-a` with 3 member pods (IPs 127.0.0.21-23, Ready; nothing listens there: the controller
  never connects to members);
- N application pods (`memha.io/pools: cache-a`) whose pod IPs are N distinct loopback addresses (127.1.0.1
  upwards), all served by ONE `fake_sidecars` process on port 11299 that logs every push it receives;
- one memha-controller (the Release build under test), pushes signed (keys in a Secret it creates), webhook off;
- trials: a member pod patched NotReady / Ready again (alternately, rotating over the members) through the status
  subresource on an already-open HTTPS connection; t0 = CLOCK_MONOTONIC just before the PATCH is written; per
  sidecar, the first push received after t0 whose member states equal the new state;
- the controller's VmRSS/VmHWM idle with the N+3 pods, then after adding unrelated pods (30 other Services of
  equal size, no pools annotation) up to --total-pods in the store, and a few more trials there;
- reconcile and push cost from the controller's /metrics (histogram sums and counts, deltas per phase).

No kubelet: pods are created through the API and their status is patched as a kubelet would (phase Running,
podIP, Ready). Writes a JSON document to --out."""
import argparse
import base64
import http.client
import json
import os
import platform
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

NS = "memha-bench"
OTHER_NS = "memha-bench-other"
MEMBERS = {"cache-a-0": "127.0.0.21", "cache-a-1": "127.0.0.22", "cache-a-2": "127.0.0.23"}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Kubernetes API: plain HTTPS with the local cluster's admin token, one keep-alive connection per thread.

class Api:
    def __init__(self, cluster_dir):
        with open(os.path.join(cluster_dir, "kubeconfig")) as f:
            self.server = re.search(r"server:\s*(\S+)", f.read()).group(1)
        m = re.match(r"https://([^:/]+):(\d+)", self.server)
        self.host, self.port = m.group(1), int(m.group(2))
        with open(os.path.join(cluster_dir, "pki", "admin.token")) as f:
            self.token = f.read().strip()
        self.ctx = ssl.create_default_context(cafile=os.path.join(cluster_dir, "pki", "ca.crt"))
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, content_type="application/json", ok=(200, 201)):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(5):
            c = self.conn()
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                payload = r.read()
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                time.sleep(0.1 * (attempt + 1))
                continue
            if r.status in (429, 500, 503, 504):
                time.sleep(0.2 * (attempt + 1))
                continue
            if r.status not in ok:
                raise RuntimeError(f"{method} {path}: HTTP {r.status}: {payload[:300]!r}")
            return json.loads(payload) if payload else None
        raise RuntimeError(f"{method} {path}: gave up after retries")

    def create(self, ns, kind, obj, ok=(201,)):
        return self.request("POST", f"/api/v1/namespaces/{ns}/{kind}", obj, ok=ok)

    def patch_status(self, ns, pod, status):
        return self.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod}/status", {"status": status},
                            content_type="application/merge-patch+json", ok=(200,))


def pod_status(ip, ready):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cond = "True" if ready else "False"
    return {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": cond, "lastTransitionTime": now},
                           {"type": "ContainersReady", "status": cond, "lastTransitionTime": now}]}


def pod_object(name, labels, annotations=None, port=None, image="registry.example/app:1.0"):
    meta = {"name": name, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    container = {"name": "main", "image": image,
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
    if port:
        container["ports"] = [{"name": "memcache", "containerPort": port}]
    spec = {"containers": [container]}
    if annotations and "memha.io/pools" in annotations:
        # What the webhook injects (the bench runs without it): the controller pushes only to such pods.
        spec["initContainers"] = [{"name": "memha-sidecar", "image": "registry.example/memha-sidecar:1.0",
                                   "restartPolicy": "Always"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def service_object(name, selector, port, target):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "memcache", "port": port, "targetPort": target}]}}


def ip_plus(base, i):
    n = int.from_bytes(socket.inet_aton(base), "big") + i
    return socket.inet_ntoa(n.to_bytes(4, "big"))


def create_pods(api, ns, specs, parallel):
    """specs: [(name, pod object, status)]; created and status-patched in parallel. Returns seconds taken."""
    start = time.monotonic()

    def one(spec):
        name, obj, status = spec
        api.create(ns, "pods", obj)
        if status is not None:
            api.patch_status(ns, name, status)

    with ThreadPoolExecutor(parallel) as ex:
        for _ in ex.map(one, specs):
            pass
    return time.monotonic() - start


# ---------------------------------------------------------------------------------------------------------------
# The fake sidecars' push log.

class PushLog:
    """Reads fake_sidecars' stdout: `t_ns address epoch version states` per push received."""

    def __init__(self, proc):
        self.proc = proc
        self.mu = threading.Lock()
        self.cv = threading.Condition(self.mu)
        self.by_addr = {}
        self.total = 0
        self.ready = False
        self.bad = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("# ready"):
                with self.cv:
                    self.ready = True
                    self.cv.notify_all()
                continue
            parts = line.split(" ", 4)
            if len(parts) != 5:
                continue
            t, addr, epoch, version, states = int(parts[0]), parts[1], int(parts[2]), int(parts[3]), parts[4]
            with self.cv:
                if epoch < 0:
                    self.bad.append(line)
                self.by_addr.setdefault(addr, []).append((t, epoch, version, states))
                self.total += 1
                self.cv.notify_all()

    def wait(self, pred, timeout, poll=0.05):
        """Polls (the timestamps come from fake_sidecars, so polling does not blur them)."""
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def first_match(self, addrs, t0, states):
        """Per address, the first push received at or after t0 carrying `states` (None if none yet)."""
        out = {}
        with self.mu:
            for a in addrs:
                hit = None
                for rec in self.by_addr.get(a, ()):
                    if rec[0] >= t0 and rec[3] == states:
                        hit = rec
                        break
                out[a] = hit
        return out

    def count_since(self, t0):
        with self.mu:
            return sum(1 for recs in self.by_addr.values() for r in recs if r[0] >= t0)

    def versions_monotonic(self):
        """(addresses whose (epoch, version) ever went backwards, total pushes)."""
        backwards = 0
        with self.mu:
            for recs in self.by_addr.values():
                last = (-1, -1)
                for r in recs:
                    if (r[1], r[2]) < last:
                        backwards += 1
                        break
                    last = (r[1], r[2])
            return backwards, self.total


def states_string(state):
    return ",".join(f"{NS}/cache-a/{m}={'up' if state[m] else 'down'}" for m in sorted(MEMBERS))


# ---------------------------------------------------------------------------------------------------------------
# Controller process, metrics, memory.

def http_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def scrape(port):
    status, text = http_get(port, "/metrics")
    if status != 200:
        return {}
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def metric_delta(before, after, key):
    return after.get(key, 0.0) - before.get(key, 0.0)


def cost_summary(before, after):
    def hist(name):
        n = metric_delta(before, after, name + "_count")
        s = metric_delta(before, after, name + "_sum")
        buckets = {}
        for k, v in after.items():
            if k.startswith(name + "_bucket{"):
                le = re.search(r'le="([^"]+)"', k).group(1)
                buckets[le] = v - before.get(k, 0.0)
        return {"count": int(n), "sum_s": s, "mean_ms": (s / n * 1000) if n else None, "buckets": buckets}

    pushes = {}
    for k, v in after.items():
        m = re.match(r'memha_controller_pushes_total\{result="(\w+)"\}', k)
        if m:
            pushes[m.group(1)] = int(v - before.get(k, 0.0))
    return {"reconcile": hist("memha_controller_reconcile_duration_seconds"),
            "push": hist("memha_controller_push_duration_seconds"), "pushes": pushes,
            "pod_changes_ignored": int(metric_delta(before, after, "memha_controller_pod_changes_ignored_total"))}


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "VmSize", "Threads"):
                out[k] = int(v.split()[0])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / tck
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def percentile(sorted_values, q):
    """Nearest rank."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 1)) - 1))
    return sorted_values[k]


def summarize(values_ms):
    v = sorted(values_ms)
    if not v:
        return {"n": 0}
    return {"n": len(v), "min": v[0], "p50": percentile(v, 0.50), "p90": percentile(v, 0.90),
            "p99": percentile(v, 0.99), "max": v[-1], "mean": sum(v) / len(v)}


# ---------------------------------------------------------------------------------------------------------------

def run_trials(api, pushes, ctl_port, addrs, state, trials, label, settle):
    results = []
    samples = []
    warm_conn_pod = "cache-a-0"
    for i in range(trials):
        # Rotate over the members; each is taken down, then brought back by the next trial.
        member = sorted(MEMBERS)[(i // 2) % len(MEMBERS)]
        ready = not state[member]
        state[member] = ready
        want = states_string(state)
        api.request("GET", f"/api/v1/namespaces/{NS}/pods/{warm_conn_pod}")  # the connection is open and warm
        m0 = scrape(ctl_port)
        body = pod_status(MEMBERS[member], ready)
        t0 = time.monotonic_ns()
        api.patch_status(NS, member, body)
        t_api = time.monotonic_ns()
        ok = pushes.wait(lambda: all(v is not None for v in pushes.first_match(addrs, t0, want).values()), 60)
        hits = pushes.first_match(addrs, t0, want)
        lat = [(h[0] - t0) / 1e6 for h in hits.values() if h is not None]
        missing = sum(1 for h in hits.values() if h is None)
        versions = sorted({(h[1], h[2]) for h in hits.values() if h is not None})
        time.sleep(settle)  # let resyncs/retries of this change finish before the next one
        m1 = scrape(ctl_port)
        r = {"trial": i, "phase": label, "member": member, "ready": ready, "api_patch_ms": (t_api - t0) / 1e6,
             "complete": ok, "missing": missing, "latency_ms": summarize(lat),
             "first_ms": min(lat) if lat else None, "last_ms": max(lat) if lat else None,
             "versions": [list(v) for v in versions], "pushes_received": pushes.count_since(t0),
             "controller": cost_summary(m0, m1)}
        log(f"[{label}] trial {i}: {member} {'Ready' if ready else 'NotReady'}: api {r['api_patch_ms']:.1f} ms, "
            f"sidecars {len(lat)}/{len(addrs)} p50 {r['latency_ms'].get('p50', 0):.1f} "
            f"p99 {r['latency_ms'].get('p99', 0):.1f} max {r['latency_ms'].get('max', 0):.1f} ms, "
            f"pushes {r['pushes_received']}, reconcile passes {r['controller']['reconcile']['count']}")
        results.append(r)
        samples.extend(lat)
    return results, samples


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gb": round(mem_kb / 1048576, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="the local-k8s cluster dir")
    ap.add_argument("--controller", required=True)
    ap.add_argument("--fake", required=True, help="fake_sidecars binary")
    ap.add_argument("--out", required=True)
    ap.add_argument("--logs", required=True, help="dir for the controller's and fake sidecars' logs")
    ap.add_argument("--sidecars", type=int, default=1000)
    ap.add_argument("--total-pods", type=int, default=10000, help="pods in the store for the second phase")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--trials-large", type=int, default=6)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds after each trial")
    ap.add_argument("--parallel", type=int, default=16, help="API requests in flight while creating pods")
    ap.add_argument("--first-ip", default="127.1.0.1")
    ap.add_argument("--sidecar-port", type=int, default=11299)
    ap.add_argument("--command", default="", help="recorded in the JSON")
    ap.add_argument("--commit", default="", help="recorded in the JSON")
    ap.add_argument("--versions", default="", help="recorded in the JSON (kube-apiserver/etcd)")
    args = ap.parse_args()

    os.makedirs(args.logs, exist_ok=True)
    api = Api(args.dir)
    result = {"config": {k: v for k, v in vars(args).items() if k not in ("dir",)},
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "loadavg_start": open("/proc/loadavg").read().split()[:3], "machine": machine()}
    procs = []
    try:
        fake = subprocess.Popen([args.fake, args.first_ip, str(args.sidecars), str(args.sidecar_port)],
                                stdout=subprocess.PIPE, stderr=open(os.path.join(args.logs, "fake_sidecars.err"), "w"),
                                text=True, bufsize=1)
        procs.append(fake)
        pushes = PushLog(fake)
        if not pushes.wait(lambda: pushes.ready, 20):
            raise RuntimeError("fake_sidecars did not start (see fake_sidecars.err)")

        # --- the objects --------------------------------------------------------------------------------------
        for ns in (NS, OTHER_NS):
            api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": ns}}, ok=(201,))
        api.create(NS, "services", service_object("cache-a", {"app": "cache-a"}, 11211, 11211))
        members = [(n, pod_object(n, {"app": "cache-a"}, port=11211, image="memcached:1.6"), pod_status(ip, True))
                   for n, ip in MEMBERS.items()]
        create_pods(api, NS, members, args.parallel)

        # --- the controller -----------------------------------------------------------------------------------
        def start_controller(identity, log_name):
            port = free_port()
            out = open(os.path.join(args.logs, log_name), "w")
            t_start = time.monotonic_ns()
            proc = subprocess.Popen([args.controller, "--kubeconfig", os.path.join(args.dir, "kubeconfig"),
                                     "--namespace", NS, "--identity", identity, "--admin-address", "127.0.0.1",
                                     "--admin-port", str(port),
                                     "--sidecar-admin-port", str(args.sidecar_port), "--webhook-port", "0",
                                     "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT)
            procs.append(proc)
            want = states_string(state)
            ok = pushes.wait(lambda: all(v is not None for v in pushes.first_match(addrs, t_start, want).values()),
                             120)
            hits = pushes.first_match(addrs, t_start, want)
            if not ok:
                missing = [a for a, h in hits.items() if h is None]
                raise RuntimeError(f"{len(missing)} sidecars never got their first topology, e.g. {missing[:5]}")
            first = sorted((h[0] - t_start) / 1e6 for h in hits.values())
            log(f"{identity}: topology on all {len(first)} sidecars {first[-1]:.0f} ms after the controller "
                f"started (first {first[0]:.0f} ms)")
            return proc, port, {"sidecars": len(first), "first_ms": first[0], "last_ms": first[-1],
                                "epochs": sorted({h[1] for h in hits.values()}),
                                "note": "from starting the controller process (list, Lease, first pass, pushes)"}

        state = {m: True for m in MEMBERS}

        # --- baseline: a controller with no application pods (only the pool and its members) ------------------
        # Started before the application pods exist; SIGTERM releases the Lease, so the next one leads at once.
        port0 = free_port()
        ctl0 = subprocess.Popen([args.controller, "--kubeconfig", os.path.join(args.dir, "kubeconfig"),
                                 "--namespace", NS, "--identity", "bench-0", "--admin-address", "127.0.0.1",
                                 "--admin-port", str(port0),
                                 "--sidecar-admin-port", str(args.sidecar_port), "--webhook-port", "0",
                                 "--log-level", "info"],
                                stdout=open(os.path.join(args.logs, "controller-0.log"), "w"), stderr=subprocess.STDOUT)
        procs.append(ctl0)
        key = 'memha_controller_cache_objects{kind="pods"}'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if scrape(port0).get(key, -1) == len(MEMBERS) and scrape(port0).get("memha_controller_leader") == 1:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        time.sleep(3)
        result["baseline"] = {"pods_in_store": int(scrape(port0).get(key, 0)), "memory_idle_kb": proc_status(ctl0.pid),
                              "note": "3 s after it led, with only the pool's 3 member pods and its Service"}
        log(f"baseline controller (no application pods): {result['baseline']['memory_idle_kb']}")
        ctl0.send_signal(signal.SIGTERM)
        result["controller_0_exit"] = ctl0.wait(20)

        addrs = [ip_plus(args.first_ip, i) for i in range(args.sidecars)]
        apps = [(f"web-{i:05d}", pod_object(f"web-{i:05d}", {"app": "web"}, {"memha.io/pools": "cache-a"}),
                 pod_status(addrs[i], True)) for i in range(args.sidecars)]
        secs = create_pods(api, NS, apps, args.parallel)
        log(f"created {len(apps)} application pods in {secs:.1f} s ({2 * len(apps) / secs:.0f} API requests/s)")
        result["create_app_pods_s"] = secs

        # --- the controller under test ------------------------------------------------------------------------
        ctl, ctl_port, result["initial"] = start_controller("bench", "controller.log")
        time.sleep(2)

        # --- phase 1: N+3 pods ---------------------------------------------------------------------------------
        m_before = scrape(ctl_port)
        trials, samples = run_trials(api, pushes, ctl_port, addrs, state, args.trials, "small", args.settle)
        m_after = scrape(ctl_port)
        time.sleep(3)
        result["small"] = {"pods_in_store": int(m_after.get('memha_controller_cache_objects{kind="pods"}', 0)),
                           "trials": trials, "latency_ms": summarize(samples),
                           "controller": cost_summary(m_before, m_after), "memory_idle_kb": proc_status(ctl.pid)}
        log(f"phase small: {summarize(samples)}; controller {result['small']['memory_idle_kb']}")

        # --- phase 2: unrelated pods up to --total-pods -------------------------------------------------------
        extra = args.total_pods - args.sidecars - len(MEMBERS)
        if extra > 0:
            services = 30
            for s in range(services):
                api.create(OTHER_NS, "services", service_object(f"svc-{s:02d}", {"app": f"svc-{s:02d}"}, 80, 8080))
            others = []
            for i in range(extra):
                name = f"svc-{i % services:02d}-{i:05d}"
                ip = ip_plus("10.128.0.1", i)  # never connected to: these pods are only data for the store
                others.append((name, pod_object(name, {"app": f"svc-{i % services:02d}", "tier": "backend"}),
                               pod_status(ip, True)))
            m0 = scrape(ctl_port)
            secs = create_pods(api, OTHER_NS, others, args.parallel)
            log(f"created {extra} other pods in {secs:.1f} s ({2 * extra / secs:.0f} API requests/s)")
            key = 'memha_controller_cache_objects{kind="pods"}'
            deadline = time.monotonic() + 60
            while scrape(ctl_port).get(key, 0) < args.total_pods and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(5)
            m1 = scrape(ctl_port)
            mem_large = proc_status(ctl.pid)
            log(f"store has {m1.get(key)} pods; controller {mem_large}")
            trials2, samples2 = run_trials(api, pushes, ctl_port, addrs, state, args.trials_large, "large",
                                           args.settle)
            m2 = scrape(ctl_port)
            result["large"] = {"pods_in_store": int(m1.get(key, 0)), "create_s": secs,
                               "while_creating": cost_summary(m0, m1), "memory_idle_kb": mem_large,
                               "trials": trials2, "latency_ms": summarize(samples2),
                               "controller": cost_summary(m1, m2), "memory_after_trials_kb": proc_status(ctl.pid)}
            log(f"phase large: {summarize(samples2)}")

        all_samples = samples + (samples2 if extra > 0 else [])
        result["all_trials_latency_ms"] = summarize(all_samples)
        backwards, total = pushes.versions_monotonic()
        final = scrape(ctl_port)
        result["pushes"] = {"received_total": total, "addresses_version_went_backwards": backwards,
                            "bad_bodies": pushes.bad[:10],
                            "controller_totals": {k: v for k, v in final.items()
                                                  if k.startswith("memha_controller_pushes_total")},
                            "sidecars_behind_at_end": final.get("memha_controller_sidecars_behind")}
        result["controller_cpu_s"] = proc_status(ctl.pid)["cpu_s"]
        ctl.send_signal(signal.SIGTERM)
        result["controller_exit"] = ctl.wait(20)

        # --- a fresh controller process that lists everything at once -----------------------------------------
        # The first one grew to 10,000 pods through watch events, in heap that the initial list had freed; a
        # restart shows the footprint (and start-up time) of listing the whole store (pages of 500).
        ctl2, ctl2_port, restart = start_controller("bench-2", "controller-2.log")
        time.sleep(5)
        m = scrape(ctl2_port)
        restart["pods_in_store"] = int(m.get('memha_controller_cache_objects{kind="pods"}', 0))
        restart["memory_idle_kb"] = proc_status(ctl2.pid)
        restart["reconcile"] = cost_summary({}, m)["reconcile"]
        result["restart"] = restart
        log(f"restarted controller: {restart}")
        ctl2.send_signal(signal.SIGTERM)
        result["controller_2_exit"] = ctl2.wait(20)
        result["fake_sidecars_cpu_s"] = proc_status(fake.pid)["cpu_s"]
        result["pushes"]["received_total"] = pushes.total
        result["pushes"]["addresses_version_went_backwards"] = pushes.versions_monotonic()[0]
        with open(os.path.join(args.logs, "controller-2.log")) as f:
            passes = re.findall(r'component=reconcile msg="topology changed .*seconds=([0-9.e-]+)', f.read())
        restart["first_pass_ms"] = float(passes[0]) * 1000 if passes else None
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
                p.wait()
        result["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
