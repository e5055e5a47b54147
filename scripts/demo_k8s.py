#!/usr/bin/python3
"""The scenario of scripts/demo-k8s.sh: memha against a local Kubernetes API (run it through demo-k8s.sh).

demo-k8s.sh brings the control plane up (etcd + kube-apiserver, no kubelet) and hands over KUBECONFIG; this
script plays everything else:

  * the pool members: real memcached processes on 127.0.0.x addresses that are their pods' IPs;
  * the kubelet: it creates pods with kubectl and patches their status (Running, podIP, Ready / NotReady);
  * two memha-controller replicas (leader-elected on a Lease) and, for the application pod shop/web-0, a real
    memha-sidecar whose admin address is that pod's IP;
  * the application: a read-through cache client (get; on a miss, set) through the sidecar, one line a second.

Scenario: warm-up, then cache-a-0's memcached is killed (kill -9) and its pod patched NotReady, then it is
restarted EMPTY and patched Ready (the sidecar warms it from the backup pool cache-b), then the Service is
annotated memha.io/write-policy=sync. Checks at the end; exit status 0 = PASS, 1 = FAIL.

Every process it starts has its pid appended to --pids-file (so demo-k8s.sh can stop leftovers) and is stopped
before it exits.
"""

import argparse
import base64
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from pymemcache.client.base import Client

NS = "shop"
CTL_NS = "memha-system"
LEASE = "memha-controller"
SIGNING_SECRET = "memha-push-signing-key"
# "Pod IPs": distinct loopback addresses (Linux routes all of 127/8 to lo), away from the ones the e2e tests use.
APP_IP = "127.0.0.50"
MEMBERS = {"cache-a-0": "127.0.0.51", "cache-a-1": "127.0.0.52", "cache-b-0": "127.0.0.61"}
SHORT = {"cache-a-0": "a-0", "cache-a-1": "a-1", "cache-b-0": "b-0"}
STATE_NAMES = {0: "down", 1: "up", 2: "warming", 3: "replaying"}
PHASE_NOTES = {
    "warm-up": "cold start: the cache fills from empty",
    "a-0 killed": "cache-a-0 dead: its keys are read from the backup cache-b",
    "a-0 empty": "cache-a-0 back EMPTY: misses on it are filled from the backup",
    "sync": "write-policy=sync: writes answered after the backup has them",
}

PRINT_LOCK = threading.Lock()


def out(line=""):
    with PRINT_LOCK:
        print(line, flush=True)


def say(line):
    out(f"  {line}")


def banner(text):
    out("")
    out(f"*** {text} ***")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubectl", required=True)
    p.add_argument("--controller", required=True, help="memha-controller binary")
    p.add_argument("--sidecar", required=True, help="memha-sidecar binary")
    p.add_argument("--memcached", default="memcached")
    p.add_argument("--workdir", required=True, help="logs, token file, sidecar state file")
    p.add_argument("--pids-file", required=True)
    p.add_argument("--quick", action="store_true", help="short phases (the CTest run)")
    p.add_argument("--min-hit", type=float, default=97.0, help="least hit ratio %% after the empty restart")
    p.add_argument("--rate", type=int, default=2000, help="ops per second (upper bound)")
    p.add_argument("--keys", type=int, default=2000)
    p.add_argument("--no-warmup", action="store_true",
                   help="annotate cache-a memha.io/warmup=off first, to see the cold-primary failure (then FAIL)")
    return p.parse_args()


ARGS = None
PROCS = []


# ------------------------------------------------------------------------------------------------ helpers

def kubectl(*args, input=None, check=True):
    r = subprocess.run([ARGS.kubectl, *args], input=input, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def shown(cmd):
    """Print a kubectl command the way a user would type it, then run it."""
    say("$ kubectl " + " ".join(cmd))
    return kubectl(*cmd)


def http(url, token=None, timeout=2.0):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def metric(text, name, labels=None):
    """The value of one sample (name plus a subset of its labels), or None."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head == name or (head.startswith(name + "{") and all(f'{k}="{v}"' in head for k, v in
                                                                (labels or {}).items())):
            if head == name and labels:
                continue
            return float(value)
    return None


def wait_for(what, cond, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling; report the last error
            last = e
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


def port_free_on(hosts, port):
    socks = []
    try:
        for h in hosts:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((h, port))
            socks.append(s)
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def pick_port(hosts, preferred):
    """`preferred` when it is free on every host (the Kubernetes-usual port), else a random free one."""
    if port_free_on(hosts, preferred):
        return preferred
    for _ in range(500):
        port = random.randrange(20000, 32000)
        if port_free_on(hosts, port):
            return port
    raise RuntimeError("no free port")


class Proc:
    def __init__(self, name, cmd):
        self.name = name
        self.log_path = os.path.join(ARGS.workdir, f"{name}.log")
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        with open(ARGS.pids_file, "a") as f:
            f.write(f"{self.pid}\n")
        PROCS.append(self)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode

    def tail(self, n=15):
        try:
            with open(self.log_path) as f:
                return f.readlines()[-n:]
        except OSError:
            return []


def set_pod_status(pod, ip, ready):
    """What the kubelet would do: phase Running, the pod IP, and the Ready condition."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cond = "True" if ready else "False"
    patch = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                        "conditions": [{"type": "Ready", "status": cond, "lastTransitionTime": now},
                                       {"type": "ContainersReady", "status": cond, "lastTransitionTime": now}]}}
    kubectl("-n", NS, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p", json.dumps(patch))


def apply(obj):
    kubectl("apply", "-f", "-", input=json.dumps(obj))


# ------------------------------------------------------------------------------------------------ the system

class System:
    """Everything started for the demo, and the ways to look at it."""

    def __init__(self):
        self.mc_port = pick_port(list(MEMBERS.values()), 11211)
        self.local_port = pick_port(["127.0.0.1"], 11211)
        self.admin_port = pick_port([APP_IP], 11299)
        self.memcached = {}
        self.controllers = {}  # identity -> Proc with .port
        self.sidecar = None
        self.token = None        # web-0's ServiceAccount token (audience memha, bound to the pod)
        self.public_keys = None  # the controller's push-verification keys, as the webhook would inject them
        self.leader = None

    # -- pool members
    def start_memcached(self, name):
        cmd = [ARGS.memcached, "-l", MEMBERS[name], "-p", str(self.mc_port), "-U", "0", "-t", "1", "-m", "64"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        p = Proc(f"memcached-{name}", cmd)
        self.memcached[name] = p

        def listening():
            if not p.alive():
                raise RuntimeError(f"memcached for {name} exited: {''.join(p.tail(5))}")
            with socket.create_connection((MEMBERS[name], self.mc_port), timeout=0.5):
                return True
        wait_for(f"memcached {name} listening", listening, timeout=10)
        return p

    # -- controllers
    def start_controller(self, identity):
        port = pick_port(["127.0.0.1"], 18080 + len(self.controllers))
        cmd = [ARGS.controller, "--kubeconfig", os.environ["KUBECONFIG"], "--namespace", CTL_NS,
               "--identity", identity, "--lease-name", LEASE, "--admin-address", "127.0.0.1",
               "--admin-port", str(port), "--sidecar-admin-port", str(self.admin_port), "--webhook-port", "0",
               "--log-level", "info"]
        p = Proc(identity, cmd)
        p.port = port
        self.controllers[identity] = p

        def ready():
            if not p.alive():
                raise RuntimeError(f"{identity} exited: {''.join(p.tail(5))}")
            return http(f"http://127.0.0.1:{port}/readyz", timeout=1)[0] == 200
        wait_for(f"{identity} ready", ready, timeout=30)
        return p

    def controller_metrics(self, identity):
        status, text = http(f"http://127.0.0.1:{self.controllers[identity].port}/metrics", timeout=1)
        return text if status == 200 else ""

    def find_leader(self):
        for identity, p in self.controllers.items():
            if p.alive() and metric(self.controller_metrics(identity), "memha_controller_leader") == 1:
                return identity
        return None

    def controller_view(self):
        """The leader's topology for shop/web-0: what it pushes."""
        leader = self.leader or "ctl-1"
        status, body = http(f"http://127.0.0.1:{self.controllers[leader].port}/v1/topology?pod={NS}/web-0",
                            self.token, timeout=1)
        return json.loads(body) if status == 200 else None

    # -- the sidecar
    def sidecar_url(self, path):
        return f"http://{APP_IP}:{self.admin_port}{path}"

    def sidecar_topology(self):
        status, body = http(self.sidecar_url("/v1/topology"), timeout=1)
        return json.loads(body) if status == 200 else None

    def sidecar_metrics(self):
        status, text = http(self.sidecar_url("/metrics"), timeout=1)
        return text if status == 200 else ""

    def stop_all(self):
        # The application side first, then the controllers (SIGTERM: they release the Lease), then the members.
        order = [self.sidecar, *self.controllers.values()]
        for p in order + [p for p in PROCS if p not in order]:
            if p is not None and p.alive():
                p.stop(signal.SIGTERM)


def states_of(topology):
    """{member name: state} of the first pool (primary and backup), from a topology JSON."""
    if not topology or not topology.get("pools"):
        return {}
    pool = topology["pools"][0]
    return {m["name"]: m["state"] for m in pool.get("primary", []) + pool.get("backup", [])}


def sidecar_health(metrics_text):
    """{member name: the sidecar's own view} from memha_member_state{member=...}."""
    states = {}
    for m in re.finditer(r'^memha_member_state\{([^}]*)\}\s+(\S+)', metrics_text, re.M):
        name = re.search(r'member="([^"]*)"', m.group(1))
        if name:
            states[name.group(1)] = STATE_NAMES.get(int(float(m.group(2))), m.group(2))
    return states


# ------------------------------------------------------------------------------------------------ traffic

class Stats:
    def __init__(self):
        self.ops = self.errors = self.gets = self.hits = 0
        self.max_latency = 0.0

    def add(self, o):
        self.ops += o.ops
        self.errors += o.errors
        self.gets += o.gets
        self.hits += o.hits
        self.max_latency = max(self.max_latency, o.max_latency)

    def hit_pct(self):
        return 100.0 * self.hits / self.gets if self.gets else float("nan")


class Monitor(threading.Thread):
    """Polls the controller's and the sidecar's views every 100 ms; remembers every distinct state seen."""

    def __init__(self, system):
        super().__init__(daemon=True)
        self.system = system
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ctl = {}        # member -> [states seen since the last take]
        self.side = {}
        self.generations = []  # distinct (epoch, version) the sidecar held, in order
        self.policy = None

    @staticmethod
    def _note(seen, current):
        for name, state in current.items():
            lst = seen.setdefault(name, [])
            if not lst or lst[-1] != state:
                lst.append(state)

    def run(self):
        while not self.stopping.is_set():
            try:
                ctl = states_of(self.system.controller_view())
            except Exception:  # noqa: BLE001 - shown as "?"
                ctl = {}
            try:
                side = sidecar_health(self.system.sidecar_metrics())
                topo = self.system.sidecar_topology()
            except Exception:  # noqa: BLE001
                side, topo = {}, None
            with self.lock:
                self._note(self.ctl, ctl)
                self._note(self.side, side)
                if topo:
                    gen = (topo.get("epoch"), topo.get("version"))
                    if not self.generations or self.generations[-1] != gen:
                        self.generations.append(gen)
                    self.policy = topo["pools"][0].get("write_policy")
            self.stopping.wait(0.1)

    def take(self):
        """'a-0 up a-1 up | b-0 up' for the controller and for the sidecar; a change within the second shows
        as up>down."""
        def fmt(seen):
            parts = []
            for name in MEMBERS:
                lst = seen.get(name)
                s = ">".join(lst) if lst else "?"
                if lst:
                    seen[name] = lst[-1:]
                parts.append(f"{s:<7}" if name != "cache-b-0" else f"| {s:<7}")
            return " ".join(parts)
        with self.lock:
            return fmt(self.ctl), fmt(self.side)


class Traffic(threading.Thread):
    """A read-through cache client: ~90% gets (a miss is filled with a set), ~10% sets, bounded rate."""

    def __init__(self, port, monitor):
        super().__init__(daemon=True)
        self.port = port
        self.monitor = monitor
        self.lock = threading.Lock()
        self.phase = "warm-up"
        self.stopping = threading.Event()
        self.interval = Stats()
        self.totals = {}
        self.seconds = {}
        self.error_samples = []
        self.tick = threading.Condition(self.lock)
        self.lines_in_phase = 0
        self.t_start = time.monotonic()  # reset when the one-second lines begin

    def next_phase(self, phase, seconds_before):
        """Wait until the current phase has had `seconds_before` one-second lines, then switch to `phase` right
        after that line (so every line belongs to one phase)."""
        with self.lock:
            if not self.tick.wait_for(lambda: self.lines_in_phase >= seconds_before or self.stopping.is_set(),
                                      timeout=seconds_before + 10):
                raise RuntimeError("the traffic reporter stalled")
            self.phase = phase
            self.lines_in_phase = 0

    def _count(self, ops=0, errors=0, gets=0, hits=0, latency=0.0, error=None):
        with self.lock:
            for s in (self.interval, self.totals.setdefault(self.phase, Stats())):
                s.ops += ops
                s.errors += errors
                s.gets += gets
                s.hits += hits
                s.max_latency = max(s.max_latency, latency)
            if error and len(self.error_samples) < 10:
                self.error_samples.append(f"{time.monotonic() - self.t_start:5.1f}s [{self.phase}] {error}")

    def run(self):
        rng = random.Random(42)
        keys = [f"shop:product:{i:05d}" for i in range(ARGS.keys)]
        values = {k: (k + ":").encode().ljust(100, b"x") for k in keys}
        client = Client(("127.0.0.1", self.port), connect_timeout=1.0, timeout=1.0, no_delay=True)
        tokens, last = 0.0, time.monotonic()

        def op(fn, *args):
            t = time.monotonic()
            try:
                r = fn(*args)
                self._count(ops=1, latency=time.monotonic() - t)
                return True, r
            except Exception as e:  # any exception is an error the application would have seen
                self._count(ops=1, errors=1, latency=time.monotonic() - t,
                            error=f"{fn.__name__}: {type(e).__name__}: {e}")
                client.close()
                return False, None

        while not self.stopping.is_set():
            now = time.monotonic()
            tokens = min(20.0, tokens + (now - last) * ARGS.rate)
            last = now
            if tokens < 1.0:
                time.sleep(0.002)
                continue
            tokens -= 1.0
            key = rng.choice(keys)
            if rng.random() < 0.10:
                op(client.set, key, values[key])
                continue
            ok, got = op(client.get, key)
            if not ok:
                continue
            if got is None:
                self._count(gets=1)
                tokens -= 1.0
                op(client.set, key, values[key])  # read-through fill
            elif got != values[key]:
                self._count(gets=1, errors=1, error=f"get {key}: wrong value {got[:40]!r}")
            else:
                self._count(gets=1, hits=1)
        client.close()

    def report_loop(self, stop):
        """One line per second until `stop` is set."""
        members = f"{'a-0':<7} {'a-1':<7} | {'b-0':<7}"
        out(f"{'':<46}{'the controller (leader)':<28}  {'the sidecar itself'}")
        out(f"{'time':>5}  {'phase':<11} {'ops':>5} {'errors':>6} {'hit%':>6} {'max ms':>6}  {members:<28}  {members}")
        start = self.t_start = time.monotonic()
        nxt = start + 1.0
        while not stop.wait(max(0.0, nxt - time.monotonic())):
            nxt += 1.0
            with self.lock:
                iv, self.interval = self.interval, Stats()
                phase = self.phase
                self.seconds.setdefault(phase, []).append(iv)
            ctl, side = self.monitor.take()
            hit = f"{iv.hit_pct():5.1f}%" if iv.gets else "    - "
            out(f"{round(time.monotonic() - start):4d}s  {phase:<11} {iv.ops:5d} {iv.errors:6d} {hit:>6} "
                f"{iv.max_latency * 1000:6.1f}  {ctl:<28}  {side}".rstrip())
            with self.lock:
                self.lines_in_phase += 1
                self.tick.notify_all()


# ------------------------------------------------------------------------------------------------ scenario

def create_cluster_objects(system):
    banner(f"Kubernetes objects: namespace {NS}, pools cache-a (2 pods) and cache-b (1 pod, the backup)")
    for ns in (NS, CTL_NS):
        kubectl("create", "namespace", ns)
    kubectl("-n", NS, "create", "serviceaccount", "default", check=False)  # no controller-manager to make it
    say(f"$ kubectl create namespace {NS}   (and {CTL_NS} for the controller)")
    for svc in ("cache-a", "cache-b"):
        apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": NS},
               "spec": {"selector": {"app": svc},
                        "ports": [{"name": "memcache", "port": 11211, "targetPort": system.mc_port}]}})
    say("Services shop/cache-a and shop/cache-b (selector app=<name>, port memcache)")
    for name, ip in MEMBERS.items():
        p = system.start_memcached(name)
        apply({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": NS, "labels": {"app": name.rsplit("-", 1)[0]}},
               "spec": {"containers": [{"name": "memcached", "image": "memcached:1.6",
                                        "ports": [{"name": "memcache", "containerPort": system.mc_port}]}]}})
        set_pod_status(name, ip, True)
        say(f"pod {NS}/{name:<10} memcached pid {p.pid:<7} on {ip}:{system.mc_port} = its pod IP; "
            f"status patched Running + Ready")
    shown(["-n", NS, "annotate", "service", "cache-a", "memha.io/backup-pool=cache-b"])
    if ARGS.no_warmup:
        shown(["-n", NS, "annotate", "service", "cache-a", "memha.io/warmup=off"])


def start_controllers(system):
    banner("memha-controller: two replicas, leader-elected on a Lease")
    system.start_controller("ctl-1")
    system.leader = wait_for("a leader", system.find_leader, timeout=30)
    system.start_controller("ctl-2")
    holder = kubectl("-n", CTL_NS, "get", "lease", LEASE, "-o", "jsonpath={.spec.holderIdentity}")
    for identity, p in system.controllers.items():
        role = "leader" if identity == system.leader else "follower"
        say(f"{identity}  pid {p.pid:<7} admin http://127.0.0.1:{p.port}  ({role})")
    say(f"Lease {CTL_NS}/{LEASE}: holderIdentity={holder}")

    def secret():
        data = kubectl("-n", CTL_NS, "get", "secret", SIGNING_SECRET, "-o", "json", check=False)
        return json.loads(data)["data"] if data else None
    seeds = wait_for(f"Secret {CTL_NS}/{SIGNING_SECRET}", secret, timeout=20)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    def public(seed):
        # The Secret's data is base64 of the value, which is itself the base64 of the 32-byte seed.
        key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(base64.b64decode(seed)))
        return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    system.public_keys = ",".join(public(seeds[k]) for k in ("current", "next") if k in seeds)
    say(f"Secret {CTL_NS}/{SIGNING_SECRET} (created by the first replica): the Ed25519 keys that sign pushes")


def start_application(system):
    banner(f"application pod {NS}/web-0 (annotation memha.io/pools: cache-a) and its memha-sidecar")
    pools = "cache-a" if system.local_port == 11211 else f"cache-a:{system.local_port}"
    apply({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web-0", "namespace": NS, "labels": {"app": "web"},
                        "annotations": {"memha.io/pools": pools}},
           # The memha-sidecar entry is what the webhook would inject (the demo runs the sidecar as a process);
           # the controller pushes only to pods that have it.
           "spec": {"serviceAccountName": "default", "containers": [{"name": "web", "image": "shop/web:1"}],
                    "initContainers": [{"name": "memha-sidecar", "image": "memha/sidecar:demo",
                                        "restartPolicy": "Always"}]}})
    # What the kubelet writes into the injected projected volume: web-0's own token, for audience memha only.
    uid = kubectl("-n", NS, "get", "pod", "web-0", "-o", "jsonpath={.metadata.uid}").strip()
    system.token = kubectl("-n", NS, "create", "token", "default", "--audience", "memha", "--duration", "10m",
                           "--bound-object-kind", "Pod", "--bound-object-name", "web-0",
                           "--bound-object-uid", uid).strip()
    token_file = os.path.join(ARGS.workdir, "web-0.token")
    with open(token_file, "w") as f:
        f.write(system.token + "\n")
    os.chmod(token_file, 0o600)
    cmd = [ARGS.sidecar, "--admin-address", APP_IP, "--admin-port", str(system.admin_port),
           "--controller-token-file", token_file, "--pod", f"{NS}/web-0", "--pod-uid", uid,
           "--push-public-key", system.public_keys,
           "--controller-url", f"http://127.0.0.1:{system.controllers[system.leader].port}",
           "--state-file", os.path.join(ARGS.workdir, "web-0.topology.json")]
    start = time.monotonic()
    system.sidecar = Proc("sidecar-web-0", cmd)

    def booted():
        if not system.sidecar.alive():
            raise RuntimeError(f"the sidecar exited: {''.join(system.sidecar.tail(5))}")
        return system.sidecar_topology()
    t = wait_for("the sidecar's topology from the controller", booted, timeout=30)
    pool = t["pools"][0]
    say(f"memha-sidecar pid {system.sidecar.pid}: admin http://{APP_IP}:{system.admin_port} (the pod IP), "
        f"token file = web-0's projected ServiceAccount token (audience memha)")
    say(f"booted from the controller (GET /v1/topology?pod={NS}/web-0) in {(time.monotonic() - start) * 1000:.0f} ms:"
        f" pool {pool['name']} on {pool['listen']}, primary "
        f"{', '.join(m['name'] for m in pool['primary'])}, backup {', '.join(m['name'] for m in pool['backup'])}, "
        f"write_policy {pool['write_policy']}, epoch {t['epoch']} version {t['version']}")
    set_pod_status("web-0", APP_IP, True)
    leader = system.leader
    wait_for("a push to the sidecar", lambda: (metric(system.controller_metrics(leader),
                                                      "memha_controller_pushes_total", {"result": "ok"}) or 0) >= 1,
             timeout=20)
    say(f"pod web-0 patched Running + Ready with IP {APP_IP}: the leader pushes to {APP_IP}:{system.admin_port} "
        f"(pushes ok: {metric(system.controller_metrics(leader), 'memha_controller_pushes_total', {'result': 'ok'}):.0f})")
    return int(pool["listen"].rsplit(":", 1)[1])


def wait_pushed(system, member, state, start):
    t = wait_for(f"the sidecar to hold {member}={state}",
                 lambda: states_of(system.sidecar_topology()).get(member) == state and system.sidecar_topology(),
                 timeout=30, interval=0.01)
    ms = (time.monotonic() - start) * 1000
    say(f"controller -> sidecar: {member} {state} (epoch {t['epoch']} version {t['version']}), "
        f"{ms:.0f} ms after the status patch")
    return ms


def main():
    global ARGS
    ARGS = parse_args()
    phases = ({"warm-up": 4, "a-0 killed": 5, "a-0 empty": 7, "sync": 3} if ARGS.quick else
              {"warm-up": 10, "a-0 killed": 10, "a-0 empty": 15, "sync": 6})
    system = System()
    result = {"propagation": []}
    traffic = monitor = None
    report_stop = threading.Event()
    reporter = None
    try:
        create_cluster_objects(system)
        start_controllers(system)
        port = start_application(system)

        banner(f"traffic: the application's read-through cache through the sidecar on 127.0.0.1:{port}")
        say(f"{ARGS.keys} keys, get (on a miss: set), ~10% sets, <= {ARGS.rate} ops/s; one line per second.")
        say("controller = the leader's topology for web-0 (what it pushes); sidecar = the sidecar's own view "
            "(/metrics)")
        say(f"phases: warm-up {phases['warm-up']}s, a-0 killed {phases['a-0 killed']}s, "
            f"a-0 back empty {phases['a-0 empty']}s, write-policy sync {phases['sync']}s")
        out("")
        monitor = Monitor(system)
        monitor.start()
        traffic = Traffic(port, monitor)
        traffic.start()
        reporter = threading.Thread(target=traffic.report_loop, args=(report_stop,), daemon=True)
        reporter.start()

        traffic.next_phase("a-0 killed", phases["warm-up"])
        victim = system.memcached["cache-a-0"]
        banner(f"kill -9 cache-a-0's memcached (pid {victim.pid}); the kubelet would then mark the pod NotReady")
        victim.stop(signal.SIGKILL)
        say(f"$ kubectl -n {NS} patch pod cache-a-0 --subresource=status -p '{{\"status\": ... Ready=False}}'"
            "   (the kubelet's part)")
        start = time.monotonic()
        set_pod_status("cache-a-0", MEMBERS["cache-a-0"], False)
        result["propagation"].append(("NotReady", wait_pushed(system, "cache-a-0", "down", start)))
        traffic.next_phase("a-0 empty", phases["a-0 killed"])
        banner("restart cache-a-0's memcached EMPTY on the same pod IP, then patch the pod Ready")
        p = system.start_memcached("cache-a-0")
        say(f"memcached pid {p.pid} on {MEMBERS['cache-a-0']}:{system.mc_port} (empty)")
        say(f"$ kubectl -n {NS} patch pod cache-a-0 --subresource=status -p '{{\"status\": ... Ready=True}}'")
        start = time.monotonic()
        set_pod_status("cache-a-0", MEMBERS["cache-a-0"], True)
        result["propagation"].append(("Ready", wait_pushed(system, "cache-a-0", "up", start)))
        if ARGS.no_warmup:
            say("memha.io/warmup=off: the sidecar reads the empty cache-a-0 as if it were warm (magent's "
                "\"cold primary\")")
        else:
            say("the sidecar probes it, replays the invalidations it missed, and warms it: a miss on cache-a-0 is "
                "looked up on cache-b and written back")
        traffic.next_phase("sync", phases["a-0 empty"])
        banner("change the write policy live, on the Service")
        start = time.monotonic()
        shown(["-n", NS, "annotate", "service", "cache-a", "memha.io/write-policy=sync", "--overwrite"])
        t = wait_for("write_policy sync on the sidecar",
                     lambda: (system.sidecar_topology() or {}).get("pools", [{}])[0].get("write_policy") == "sync"
                     and system.sidecar_topology(), timeout=30, interval=0.02)
        result["policy_ms"] = (time.monotonic() - start) * 1000
        pool = t["pools"][0]
        say(f"$ curl http://{APP_IP}:{system.admin_port}/v1/topology   ({result['policy_ms']:.0f} ms after annotate)")
        say(f"  {{\"epoch\": {t['epoch']}, \"version\": {t['version']}, \"pools\": [{{\"name\": \"{pool['name']}\", "
            f"\"write_policy\": \"{pool['write_policy']}\", \"warmup\": {json.dumps(pool['warmup'])}, ...}}]}}")
        result["policy"] = pool["write_policy"]
        traffic.next_phase("done", phases["sync"])
    except Exception as e:  # noqa: BLE001 - reported as a failed step
        result["error"] = f"{type(e).__name__}: {e}"
    except KeyboardInterrupt:
        result["error"] = "interrupted"
    finally:
        report_stop.set()
        for t in (reporter, traffic, monitor):
            if t is not None and t is not reporter:
                t.stopping.set()
            if t is not None and t.ident is not None:
                t.join(3)
        try:
            rc = summarize(system, traffic, monitor, result)
        finally:
            system.stop_all()
    return rc


def summarize(system, traffic, monitor, result):
    out("")
    out("== summary ==")
    failures = []
    if "error" in result:
        failures.append(f"the scenario stopped: {result['error']}")
    total = Stats()
    if traffic:
        for s in traffic.totals.values():
            total.add(s)
        out(f"  client: {total.ops} ops, {total.errors} errors, max latency {total.max_latency * 1000:.1f} ms")
        out(f"  {'phase':<12} {'hit ratio':>9} {'gets':>7} {'errors':>6}")
        notes = dict(PHASE_NOTES)
        if ARGS.no_warmup:
            notes["a-0 empty"] = "cache-a-0 back EMPTY, warmup=off: its keys miss until the application refills them"
        for name, s in traffic.totals.items():
            if name == "done":  # the last few ms, while the traffic stops (counted in the totals above)
                continue
            out(f"  {name:<12} {s.hit_pct():8.1f}% {s.gets:7d} {s.errors:6d}   {notes.get(name, '')}")
        for e in traffic.error_samples:
            out(f"    client error: {e}")
    for what, ms in result["propagation"]:
        out(f"  propagation: pod {what} in the API -> the sidecar's topology: {ms:.0f} ms")
    if "policy_ms" in result:
        out(f"  propagation: annotate write-policy=sync -> the sidecar's topology: {result['policy_ms']:.0f} ms")
    side = system.sidecar_metrics() if system.sidecar and system.sidecar.alive() else ""
    fills = metric(side, "memha_warmup_total", {"event": "fill"}) if side else None
    lookups = metric(side, "memha_warmup_total", {"event": "lookup"}) if side else None
    if side:
        failovers = sum(float(m.group(1)) for m in re.finditer(r'^memha_failovers_total\{[^}]*\}\s+(\S+)', side, re.M))
        out(f"  sidecar /metrics: warm-up lookups {lookups or 0:.0f}, fills {fills or 0:.0f} (values copied from "
            f"cache-b into the empty cache-a-0); failovers {failovers:.0f}; missed writes "
            f"{metric(side, 'memha_missed_writes_total') or 0:.0f}; replayed "
            f"{metric(side, 'memha_replay_total', {'event': 'invalidation'}) or 0:.0f}; topology updates accepted "
            f"{metric(side, 'memha_topology_updates_total', {'result': 'accepted'}) or 0:.0f}")
    if system.leader and system.leader in system.controllers:
        text = system.controller_metrics(system.leader)
        if text:
            out(f"  controller {system.leader} (leader): pushes ok "
                f"{metric(text, 'memha_controller_pushes_total', {'result': 'ok'}) or 0:.0f}, refused "
                f"{metric(text, 'memha_controller_pushes_total', {'result': 'refused'}) or 0:.0f}, sidecars behind "
                f"{metric(text, 'memha_controller_sidecars_behind') or 0:.0f}")
    if monitor:
        out(f"  sidecar topology generations seen (epoch, version): "
            f"{' -> '.join(str(g) for g in monitor.generations) or 'none'}")

    # The checks.
    if traffic:
        if total.ops == 0:
            failures.append("no traffic")
        if total.errors:
            failures.append(f"{total.errors} client errors")
        s = traffic.totals.get("a-0 empty")
        if s is None or s.gets == 0:
            failures.append("no reads after the empty restart")
        elif s.hit_pct() < ARGS.min_hit:
            failures.append(f"hit ratio after the empty restart {s.hit_pct():.1f}% < {ARGS.min_hit:g}%")
    if "error" not in result:
        if len(result["propagation"]) != 2 or result.get("policy") != "sync":
            failures.append("not every topology change reached the sidecar")
        if monitor and len(monitor.generations) < 3:
            failures.append(f"only {len(monitor.generations)} topology generations seen on the sidecar")
        if not fills:
            failures.append("no warm-up fill counted by the sidecar")
    for p in [system.sidecar, *system.controllers.values()]:
        if p and not p.alive():
            failures.append(f"{p.name} is no longer running")
            for line in p.tail():
                out(f"    {p.name}: {line.rstrip()}")
    out("")
    if failures:
        for f in failures:
            out(f"  FAIL: {f}")
        return 1
    s = traffic.totals["a-0 empty"]
    out(f"  PASS: 0 client errors; hit ratio after the empty restart {s.hit_pct():.1f}% (>= {ARGS.min_hit:g}%); "
        f"NotReady, Ready and write-policy=sync all reached the sidecar")
    return 0


def on_sigterm(*_):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup that follows must not be interrupted
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    sys.exit(main())
