#!/usr/bin/env python3
"""A real Prometheus server (scripts/monitoring-tools/build.sh --server) scraping a running memha-controller (on the
real local kube-apiserver: fixture k8s_cluster) and a running memha-sidecar (static topology over real memcached),
with the chart's PrometheusRule loaded, every alert's expression evaluated against what they export.

  A. healthy: every rule evaluates without error and no alert expression has a result
  B. an application pod whose sidecar cannot be reached: MemhaSidecarsBehind and MemhaPoolDegraded
  C. the primary member killed (its pod NotReady), reads through the sidecar: MemhaPoolUnavailable and
     MemhaHighFailoverRate (pool shop/cache-a)
  D. the backup member killed: MemhaBackupDown
  R. a member restarted empty whose refill source refuses metadump: five failed attempts, MemhaRefillFailed
  E. the controller stopped: MemhaNoLeader
Each induced alert must also show in the server's /api/v1/alerts (pending or firing). Every query of the Grafana
dashboard (charts/memha/dashboards/memha.json) runs on the server and returns series. MemhaRefillStuck is
evaluated (no error, no result: no refill hangs here) but not induced; tests/monitoring/alerts_test.yaml fires it
with promtool.
Prints PASS/FAIL lines and "prometheus_e2e: N passed, N failed"; exits 1 on any failure.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "../.."))
CONTROLLER = os.environ.get("MEMHA_CONTROLLER", os.path.join(REPO, "build/controller/memha-controller"))
SIDECAR = os.environ.get("MEMHA_SIDECAR", os.path.join(REPO, "build/sidecar/memha-sidecar"))
MEMCACHED = os.environ.get("MEMCACHED", "memcached")
RELEASE_NS = "memha-system"  # the rules are rendered for it; the controller's scrape target carries it
IPS = {"cache-a-0": "127.0.0.141", "cache-b-0": "127.0.0.151", "web-0": "127.0.0.160", "web-1": "127.0.0.161"}

passed = failed = 0


def ok(what, detail=""):
    global passed
    passed += 1
    print(f"PASS: {what}", flush=True)


def bad(what, detail=""):
    global failed
    failed += 1
    print(f"FAIL: {what}", flush=True)
    for line in str(detail).strip().splitlines()[-25:]:
        print(f"  | {line}")


def tool_dir(script, *args):
    r = subprocess.run([os.path.join(REPO, script), *args], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"{script}: {r.stderr[-2000:]}")
    return r.stdout.strip().splitlines()[-1]


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=30.0, interval=0.25):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() > deadline:
            return v
        time.sleep(interval)


def http_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class Procs:
    def __init__(self, tmp):
        self.tmp, self.procs = tmp, {}

    def start(self, name, cmd):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        self.procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)

    def stop(self, name):
        p, log = self.procs.pop(name)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()

    def tail(self, name, n=20):
        with open(os.path.join(self.tmp, name + ".log")) as f:
            return "".join(f.readlines()[-n:])

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)


class E2E:
    def __init__(self):
        bins = tool_dir("scripts/k8s-tools/build.sh")
        self.kubectl, self.helm = os.path.join(bins, "kubectl"), os.path.join(bins, "helm")
        self.prometheus = os.path.join(tool_dir("scripts/monitoring-tools/build.sh", "--server"), "prometheus")
        self.tmp = tempfile.mkdtemp(prefix="memha-prom-e2e.")
        self.procs = Procs(self.tmp)
        self.ns = f"memha-mon-{os.getpid()}"
        self.ctl_ns = self.ns + "-system"

    def k(self, *args, input=None):
        r = subprocess.run([self.kubectl, "--request-timeout=30s", *args], input=input, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr}")
        return r.stdout

    def apply(self, obj):
        self.k("-n", self.ns, "apply", "-f", "-", input=json.dumps(obj))

    def pod(self, name, labels, annotations=None, sidecar=False):
        spec = {"containers": [{"name": "c", "image": "memcached:1.6"}]}
        if sidecar:  # what the webhook injects: the controller pushes only to such pods
            spec["initContainers"] = [{"name": "memha-sidecar", "image": "memha:test", "restartPolicy": "Always"}]
        meta = {"name": name, "labels": labels}
        if annotations:
            meta["annotations"] = annotations
        self.apply({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
        self.set_ready(name, True)

    def set_ready(self, pod, ready):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        c = "True" if ready else "False"
        patch = {"status": {"phase": "Running", "podIP": IPS[pod], "podIPs": [{"ip": IPS[pod]}],
                            "conditions": [{"type": "Ready", "status": c, "lastTransitionTime": now},
                                           {"type": "ContainersReady", "status": c, "lastTransitionTime": now}]}}
        self.k("-n", self.ns, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p", json.dumps(patch))

    def memcached(self, name):
        cmd = [MEMCACHED, "-l", IPS[name], "-p", str(self.mc_port), "-U", "0", "-t", "1", "-m", "16"]
        if name == "cache-b-0":  # refuses lru_crawler metadump: a refill from it fails (phase R)
            cmd += ["-o", "no_lru_crawler"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        self.procs.start(name, cmd)

    # ------------------------------------------------------------------ setup
    def setup(self):
        self.k("create", "namespace", self.ns)
        self.k("create", "namespace", self.ctl_ns)
        self.mc_port = free_port(IPS["cache-a-0"])
        for name in ("cache-a-0", "cache-b-0"):
            self.memcached(name)
        for svc, backup in (("cache-a", "cache-b"), ("cache-b", None)):
            meta = {"name": svc}
            if backup:
                meta["annotations"] = {"memha.io/backup-pool": backup}
            self.apply({"apiVersion": "v1", "kind": "Service", "metadata": meta,
                        "spec": {"selector": {"app": svc}, "ports": [{"port": 11211, "targetPort": self.mc_port}]}})
        self.pod("cache-a-0", {"app": "cache-a"})
        self.pod("cache-b-0", {"app": "cache-b"})
        # A pool is in use once a pod names it: web-0 (no sidecar container: the controller serves it on GET, does
        # not push to it, and does not count it behind).
        self.pod("web-0", {"app": "web"}, {"memha.io/pools": "cache-a"})

        self.ctl_port = free_port()
        self.procs.start("controller", [
            CONTROLLER, "--kubeconfig", os.environ["KUBECONFIG"], "--namespace", self.ctl_ns, "--identity", "ctl-1",
            "--lease-name", "memha-mon", "--admin-address", "127.0.0.1", "--admin-port", str(self.ctl_port),
            "--sidecar-admin-port", str(free_port()), "--webhook-port", "0", "--resync-s", "5",
            "--push-timeout", "500ms", "--refill-probe-interval", "1s"])

        # The sidecar of an application pod, standing alone (static topology): what the controller would push.
        self.local_port, self.side_admin = free_port(), free_port()
        topo = {"epoch": 1, "version": 1, "pools": [{
            "name": f"{self.ns}/cache-a", "listen": f"127.0.0.1:{self.local_port}",
            "primary": [{"name": "cache-a-0", "address": f"{IPS['cache-a-0']}:{self.mc_port}", "state": "up"}],
            "backup": [{"name": "cache-b-0", "address": f"{IPS['cache-b-0']}:{self.mc_port}", "state": "up"}]}]}
        path = os.path.join(self.tmp, "topology.json")
        with open(path, "w") as f:
            json.dump(topo, f)
        self.procs.start("sidecar", [SIDECAR, "--admin-port", str(self.side_admin), "--config", path])

        # The chart's rules, as the PrometheusRule would hand them to the Prometheus Operator.
        r = subprocess.run([self.helm, "template", "memha", os.path.join(REPO, "charts/memha"), "--namespace",
                            RELEASE_NS, "--set", "monitoring.prometheusRule.enabled=true",
                            "--show-only", "templates/prometheusrule.yaml"], capture_output=True, text=True,
                           check=True)
        self.rules = yaml.safe_load(r.stdout)["spec"]
        with open(os.path.join(self.tmp, "rules.yaml"), "w") as f:
            yaml.safe_dump(self.rules, f)
        self.alerts = {rule["alert"]: rule["expr"] for g in self.rules["groups"] for rule in g["rules"]}
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                {"job_name": "memha-controller", "static_configs": [
                    {"targets": [f"127.0.0.1:{self.ctl_port}"], "labels": {"namespace": RELEASE_NS, "pod": "ctl-1"}}]},
                {"job_name": "memha-sidecars", "static_configs": [
                    {"targets": [f"127.0.0.1:{self.side_admin}"], "labels": {"namespace": self.ns, "pod": "web-1"}}]}]}
        with open(os.path.join(self.tmp, "prometheus.yml"), "w") as f:
            yaml.safe_dump(config, f)
        self.prom_port = free_port()
        self.prom = f"http://127.0.0.1:{self.prom_port}"
        self.procs.start("prometheus", [
            self.prometheus, f"--config.file={self.tmp}/prometheus.yml", f"--storage.tsdb.path={self.tmp}/data",
            f"--web.listen-address=127.0.0.1:{self.prom_port}", "--log.level=warn"])

    def teardown(self):
        self.procs.stop_all()
        # The objects, not the namespaces: no namespace controller runs here (a deleted namespace stays
        # Terminating with its pods, and the next controller would still see these pools).
        for ns in (self.ns, self.ctl_ns):
            subprocess.run([self.kubectl, "-n", ns, "delete", "pods,services,events,leases,secrets,configmaps",
                            "--all", "--wait=false"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ Prometheus
    def query(self, expr):
        d = http_json(f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if d.get("status") != "success":
            raise RuntimeError(f"query {expr!r}: {d}")
        return d["data"]["result"]

    def alert_result(self, name):
        return self.query(self.alerts[name])

    def server_alerts(self):
        return {a["labels"]["alertname"]: a["state"] for a in http_json(f"{self.prom}/api/v1/alerts")["data"]["alerts"]}

    def expect_alert(self, name, what, labels=None, timeout=60):
        res = wait_for(lambda: [r for r in self.alert_result(name)
                                if all(r["metric"].get(k) == v for k, v in (labels or {}).items())], timeout)
        if not res:
            bad(f"{name} expression has a result: {what}", f"{self.alerts[name]}\n-> {self.alert_result(name)}")
            return
        ok(f"{name} expression has a result: {what} ({res[0]['metric'] or '{}'} = {res[0]['value'][1]})")
        state = wait_for(lambda: self.server_alerts().get(name), 15)
        (ok if state in ("pending", "firing") else bad)(f"{name} is {state} on the server (/api/v1/alerts)")

    # ------------------------------------------------------------------ phases
    def run(self):
        ready = wait_for(lambda: self._ready(), 60)
        if not ready:
            bad("Prometheus ready", self.procs.tail("prometheus"))
            return
        up = wait_for(lambda: all(t["health"] == "up" for t in self._targets()) and len(self._targets()) == 2, 60)
        (ok if up else bad)("Prometheus scrapes the controller and the sidecar (both targets up)",
                            json.dumps(self._targets(), indent=1))
        if not up:
            bad("controller log", self.procs.tail("controller"))
            return
        leader = wait_for(lambda: self.query('memha_controller_leader{job="memha-controller"} == 1'), 30)
        (ok if leader else bad)("the controller leads (memha_controller_leader scraped)", self.procs.tail("controller"))
        pools = wait_for(lambda: self.query(f'memha_controller_pools{{namespace="{RELEASE_NS}",phase="Healthy"}} == 2'),
                         30)
        (ok if pools else bad)("both pools Healthy (memha_controller_pools)", self.query("memha_controller_pools"))
        build = self.query("count by (version) (memha_build_info)")
        (ok if len(build) == 1 and build[0]["value"][1] == "2" else bad)(
            "memha_build_info from both binaries, one version", build)

        # A. healthy
        rules_ok = wait_for(lambda: self._rules_health(), 30)
        (ok if rules_ok else bad)(f"all {len(self.alerts)} rules evaluated by the server without error",
                                  json.dumps(self._rule_errors(), indent=1))
        quiet = {name: self.alert_result(name) for name in self.alerts}
        noisy = {n: r for n, r in quiet.items() if r}
        (ok if not noisy else bad)(f"healthy: none of the {len(self.alerts)} alert expressions has a result", noisy)

        # B. an application pod whose sidecar does not answer: pushes fail, the pool is Degraded
        self.pod("web-1", {"app": "web"}, {"memha.io/pools": "cache-a"}, sidecar=True)
        self.expect_alert("MemhaSidecarsBehind", "an injected pod's sidecar cannot be reached")
        self.expect_alert("MemhaPoolDegraded", "cache-a has a sidecar behind")
        self.k("-n", self.ns, "delete", "pod", "web-1", "--wait=false")
        healthy = wait_for(lambda: self.query(
            f'memha_controller_pools{{namespace="{RELEASE_NS}",phase="Healthy"}} == 2'), 30)
        (ok if healthy else bad)("web-1 deleted: both pools Healthy again", self.query("memha_controller_pools > 0"))

        # R. a refill that cannot succeed: cache-b-0 holds keys and refuses metadump; cache-a-0 restarts (empty),
        # the leader tries to refill it from cache-b-0 five times (1 s, 2 s, 4 s, 8 s apart) and gives up
        with socket.create_connection((IPS["cache-b-0"], self.mc_port), timeout=5) as m:
            m.sendall(b"".join(f"set r{i} 0 0 1 noreply\r\nv\r\n".encode() for i in range(50)) + b"mn\r\n")
            wait_for(lambda: m.recv(100).endswith(b"MN\r\n"), 5)
        time.sleep(3)  # the restart must show as a lower uptime than the leader last saw
        self.procs.stop("cache-a-0")
        self.memcached("cache-a-0")
        self.expect_alert("MemhaRefillFailed", "cache-a-0 restarted empty, its refill source refuses metadump",
                          timeout=120)

        # The Grafana dashboard's queries against what was scraped so far (a minute of both binaries, pushes that
        # failed, a refill that failed, reads): all valid, and each returns series.
        with open(os.path.join(REPO, "charts/memha/dashboards/memha.json")) as f:
            panels = json.load(f)["panels"]
        empty, errors, n = [], [], 0
        for p in panels:
            for t in p.get("targets", []):
                n += 1
                expr = t["expr"].replace("$__rate_interval", "1m").replace("$pool", ".*")
                try:
                    if not self.query(expr):
                        empty.append(f"{p['title']}: {expr}")
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(f"{p['title']}: {e}")
        (ok if not errors else bad)(f"dashboard: all {n} queries run on the server", "\n".join(errors))
        (ok if not empty else bad)(f"dashboard: every query returns series from the running binaries", "\n".join(empty))

        # C. the primary member dies: the controller sees cache-a without a member up; the sidecar's reads fail
        # over to the backup
        self.procs.stop("cache-a-0")
        self.set_ready("cache-a-0", False)
        self.expect_alert("MemhaPoolUnavailable", "cache-a's only member NotReady")
        failovers = self.read_through_sidecar(1000)
        print(f"FIGURES prometheus_e2e: failovers_counted_by_sidecar={failovers}", flush=True)
        self.expect_alert("MemhaHighFailoverRate", f"{failovers} reads served by the backup",
                          {"pool": f"{self.ns}/cache-a"})

        # D. the backup member dies too
        self.procs.stop("cache-b-0")
        self.read_through_sidecar(10)
        self.expect_alert("MemhaBackupDown", "cache-b-0 down", {"pool": f"{self.ns}/cache-a"})

        # A refill that hangs is not made here: evaluated, no result
        res = self.alert_result("MemhaRefillStuck")
        (ok if not res else bad)("MemhaRefillStuck expression evaluates, no result (no refill hung)", res)

        # E. no controller: no leader
        self.procs.stop("controller")
        self.expect_alert("MemhaNoLeader", "the only controller stopped")

    def read_through_sidecar(self, n):
        """n pipelined gets through the sidecar; returns memha_failovers_total for the pool afterwards."""
        with socket.create_connection(("127.0.0.1", self.local_port), timeout=10) as s:
            s.sendall(b"".join(f"get k{i}\r\n".encode() for i in range(n)))
            data, ends = b"", 0
            deadline = time.time() + 20
            while ends < n and time.time() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                ends = data.count(b"END\r\n") + data.count(b"SERVER_ERROR")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.side_admin}/metrics", timeout=5) as r:
            text = r.read().decode()
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("memha_failovers_total{") and f'pool="{self.ns}/cache-a"' in line))

    def _ready(self):
        try:
            with urllib.request.urlopen(f"{self.prom}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def _targets(self):
        return http_json(f"{self.prom}/api/v1/targets")["data"]["activeTargets"]

    def _rule_errors(self):
        groups = http_json(f"{self.prom}/api/v1/rules")["data"]["groups"]
        return [(r["name"], r.get("health"), r.get("lastError")) for g in groups for r in g["rules"]]

    def _rules_health(self):
        errs = self._rule_errors()
        return len(errs) == len(self.alerts) and all(h == "ok" for _, h, _ in errs)


def main():
    if "KUBECONFIG" not in os.environ:
        bad("KUBECONFIG set (the k8s_cluster fixture)")
    else:
        e = E2E()
        try:
            e.setup()
            e.run()
        except Exception as ex:  # a broken step is a failure, not a skip
            bad("e2e step raised", repr(ex))
            for name in ("controller", "sidecar", "prometheus"):
                if os.path.exists(os.path.join(e.tmp, name + ".log")):
                    bad(f"{name} log", e.procs.tail(name))
        finally:
            e.teardown()
    print(f"prometheus_e2e: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and passed > 0 else 1)


if __name__ == "__main__":
    main()
