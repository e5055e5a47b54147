"""Admin HTTP: topology pushes (auth, validation, ordering), swaps under load, health, metrics, state file; and the
admin server under attack: a wedged event loop, slow and many connections, big unauthenticated bodies."""
import ctypes
import errno
import json
import os
import socket
import subprocess
import threading
import time
import unittest

from harness import Client, Figures, Memcached, Sidecar, free_port, main, pool, topology



class AdminTest(unittest.TestCase):
    def setUp(self):
        self.mc = [Memcached() for _ in range(4)]
        self.port = free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.state = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"memha-state-{self.port}.json")
        self.sidecar = Sidecar(signed=True, state_file=self.state)

    def tearDown(self):
        self.assertEqual(self.sidecar.stop(), 0)
        for m in self.mc:
            m.stop()
        if os.path.exists(self.state):
            os.unlink(self.state)

    def topo(self, version, primaries, backups, epoch=1, **kw):
        return topology(epoch, version, [pool("shop/cache-a", self.listen,
                                              [(f"cache-a-{i}", m.address, "up") for i, m in enumerate(primaries)],
                                              [(f"cache-b-{i}", m.address, "up") for i, m in enumerate(backups)],
                                              **kw)])

    def put(self, body, sign=True):
        return self.sidecar.http("PUT", "/v1/topology", json.dumps(body) if not isinstance(body, str) else body,
                                 sign=sign)

    def test_push_contract(self):
        self.assertEqual(self.sidecar.http("GET", "/readyz")[0], 503)
        self.assertEqual(self.sidecar.http("GET", "/v1/topology")[0], 404)
        good = self.topo(5, self.mc[:2], self.mc[2:3])
        self.assertEqual(self.put(good, sign=False)[0], 401)
        status, body = self.put("{not json")
        self.assertEqual(status, 400)
        self.assertIn("invalid JSON", body)
        bad = self.topo(5, self.mc[:2], [])
        bad["pools"][0]["write_policy"] = "sometimes"
        status, body = self.put(bad)
        self.assertEqual(status, 400)
        self.assertIn("write_policy", body)
        self.assertEqual(self.sidecar.http("GET", "/readyz")[0], 503, "a rejected push must change nothing")

        self.assertEqual(self.put(good)[0], 200)
        self.assertEqual(self.sidecar.http("GET", "/readyz")[0], 200)
        self.assertEqual(self.put(good)[0], 200, "re-pushing the same state is idempotent")
        older = self.topo(4, self.mc[:1], [])
        self.assertEqual(self.put(older)[0], 409)
        changed_same_version = self.topo(5, self.mc[:1], [])
        self.assertEqual(self.put(changed_same_version)[0], 409)
        newer_epoch = self.topo(1, self.mc[:2], self.mc[2:3], epoch=2)
        self.assertEqual(self.put(newer_epoch)[0], 200, "a new leader's epoch wins over a higher version")
        status, body = self.sidecar.http("GET", "/v1/topology")
        self.assertEqual(json.loads(body)["epoch"], 2)
        with open(self.state) as f:
            self.assertEqual(json.load(f)["epoch"], 2, "the state file keeps the last good topology")

        c = Client(self.port)
        self.assertEqual(c.set("k", "v"), b"STORED")
        self.assertEqual(c.get("k"), b"v")
        _, metrics = self.sidecar.http("GET", "/metrics")
        for name in ("memha_requests_total", "memha_request_duration_seconds_bucket", "memha_member_state",
                     "memha_failovers_total", "memha_mirror_queue_depth", "memha_mirror_writes_total",
                     "memha_warmup_total", "memha_replay_total", "memha_client_connections",
                     "memha_topology_updates_total"):
            self.assertIn(name, metrics)
        self.assertEqual(self.sidecar.metric("memha_requests_total", command="set", result="ok"), 1)
        self.assertGreaterEqual(self.sidecar.metric("memha_topology_updates_total", result="rejected"), 3)

    def test_listen_conflict_rejects_whole_push(self):
        self.assertEqual(self.put(self.topo(1, self.mc[:1], []))[0], 200)
        clash = self.topo(2, self.mc[:1], [])
        clash["pools"].append(pool("other", f"127.0.0.1:{self.mc[3].port}", [("x", self.mc[3].address, "up")]))
        status, body = self.put(clash)
        self.assertEqual(status, 500)
        self.assertIn("listen", body)
        self.assertEqual(json.loads(self.sidecar.http("GET", "/v1/topology")[1])["version"], 1)

    def test_swaps_under_load_drop_nothing(self):
        self.assertEqual(self.put(self.topo(1, self.mc[:2], self.mc[2:4]))[0], 200)
        stop = threading.Event()
        counts = {"ops": 0, "errors": 0, "samples": []}

        def load(wid):
            c = Client(self.port)
            i = 0
            while not stop.is_set():
                i += 1
                key = f"w{wid}:{i % 200}"
                try:
                    if c.set(key, str(i)) != b"STORED":
                        raise RuntimeError("set failed")
                    if c.get(key) != str(i).encode():
                        raise RuntimeError("read back a different value")
                    counts["ops"] += 2
                except Exception as e:  # noqa: BLE001
                    counts["errors"] += 1
                    if len(counts["samples"]) < 3:
                        counts["samples"].append(repr(e))
                    c = Client(self.port)

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        pushes = 0
        t0 = time.time()
        version = 1
        while time.time() - t0 < 3:
            version += 1
            # Alternate write policy and warm-up; members and ring stay, so every value stays readable.
            body = self.topo(version, self.mc[:2], self.mc[2:4],
                             write_policy=("sync" if version % 2 else "async"), warmup=bool(version % 3))
            self.assertEqual(self.put(body)[0], 200)
            pushes += 1
        stop.set()
        for t in threads:
            t.join()
        Figures.report("push_under_load", pushes=pushes, ops=counts["ops"], errors=counts["errors"])
        self.assertEqual(counts["errors"], 0, counts["samples"])
        self.assertGreater(pushes, 10)


# --- helpers for the robustness tests -----------------------------------------------------------------------------

def raw_http(port, data, timeout=2.0, read_first=False, host="127.0.0.1"):
    """Sends `data` (bytes) on a fresh connection and returns (status, text, seconds until the reply arrived).
    Status is None if no reply came (timeout, reset before anything was read)."""
    t0 = time.monotonic()
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may refuse while we are still sending; its reply can still be read
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
                if read_first and b"\r\n\r\n" in out:
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    finally:
        sock.close()
    elapsed = time.monotonic() - t0
    if not out.startswith(b"HTTP/1."):
        return None, out.decode(errors="replace"), elapsed
    return int(out.split(b" ", 2)[1]), out.decode(errors="replace"), elapsed


def timed_get(port, path, timeout=1.0):
    """(status or None, seconds) for GET `path` with a `timeout`-second budget."""
    t0 = time.monotonic()
    try:
        status, _, _ = raw_http(port, f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode(),
                                timeout=timeout)
    except OSError:
        status = None
    return status, time.monotonic() - t0


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class LoopThreadFreeze:
    """Stops exactly one thread of a child process (ptrace: a tracer can interrupt a single thread; SIGSTOP would
    stop every thread). Used on the sidecar's main thread, which runs the data-plane event loop: the loop is
    really wedged, while the admin and health threads keep running, as with a callback that never returns."""

    PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207

    def __init__(self, tid):
        self.tid = tid
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.attached = False

    def freeze(self):
        if self.libc.ptrace(self.PTRACE_SEIZE, self.tid, None, None) != 0:
            err = ctypes.get_errno()
            raise unittest.SkipTest(f"ptrace(PTRACE_SEIZE) not permitted here: {os.strerror(err)}")
        self.attached = True
        if self.libc.ptrace(self.PTRACE_INTERRUPT, self.tid, None, None) != 0:
            raise OSError(ctypes.get_errno(), "PTRACE_INTERRUPT")
        os.waitpid(self.tid, 0x40000000)  # __WALL: consume the stop, so Popen never sees it

    def thaw(self):
        if self.attached:
            self.libc.ptrace(self.PTRACE_DETACH, self.tid, None, None)
            self.attached = False


class Slowloris:
    """`n` connections that each send one byte of an endless request head every `interval` seconds, reconnecting
    when the server drops them (as an attacker would)."""

    def __init__(self, port, n, interval=2.0):
        self.port, self.n, self.interval = port, n, interval
        self.stop = threading.Event()
        self.reconnects = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        time.sleep(0.5)  # every connection open before the probes start
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        s.setblocking(False)
        return [s, 0]

    def run(self):
        head = b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-Slow: " + b"a" * 100000
        conns = [self.connect() for _ in range(self.n)]
        while not self.stop.is_set():
            for c in conns:
                try:
                    c[0].recv(4096, socket.MSG_DONTWAIT)
                    raise ConnectionError("answered or closed: the server dropped this one")
                except BlockingIOError:
                    pass
                except OSError:
                    c[0].close()
                    c[:] = self.connect()
                    self.reconnects += 1
                    continue
                try:
                    c[0].send(head[c[1]:c[1] + 1])
                    c[1] += 1
                except OSError:
                    c[0].close()
                    c[:] = self.connect()
                    self.reconnects += 1
            self.stop.wait(self.interval)
        for c in conns:
            c[0].close()


class AdminRobustnessTest(unittest.TestCase):
    """What issue 9 found against the admin port: each test fails on the old httplib admin server (thread pool,
    body read before the token check, /healthz answered without looking at the loop)."""

    def setUp(self):
        self.mc = Memcached()
        self.sidecar = None

    def tearDown(self):
        if self.sidecar is not None:
            self.assertEqual(self.sidecar.stop(), 0)
        self.mc.stop()

    def start(self, *extra):
        self.sidecar = Sidecar(primary=[self.mc.address], signed=True, extra=extra)
        self.assertEqual(self.sidecar.http("GET", "/healthz")[0], 200)
        return self.sidecar

    def test_wedged_event_loop_fails_healthz(self):
        # Default flags: the liveness limit is 5 s of a loop that does not turn.
        sc = self.start()
        c = Client(sc.port, timeout=0.5)
        self.assertEqual(c.set("k", "v"), b"STORED")
        freezer = LoopThreadFreeze(sc.proc.pid)
        first_503 = None
        reason = ""
        try:
            freezer.freeze()
            wedged_at = time.monotonic()
            c.send("get k\r\n")
            with self.assertRaises(socket.timeout, msg="the event loop is frozen: nothing can answer the client"):
                c.line()
            while time.monotonic() - wedged_at < 9:
                status, _, _ = raw_http(sc.admin_port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", timeout=1)
                if status == 503:
                    first_503 = time.monotonic() - wedged_at
                    reason = sc.http("GET", "/healthz")[1]
                    break
                time.sleep(0.2)
            metrics_during = sc.http("GET", "/metrics")
        finally:
            freezer.thaw()
        Figures.report("wedged_loop", first_503_after_s=round(first_503, 2) if first_503 else None)
        self.assertIsNotNone(first_503, "a wedged event loop must fail /healthz")
        self.assertGreater(first_503, 4.5, "not before the 5 s limit")
        self.assertLess(first_503, 7.0)
        self.assertIn("event loop stalled", reason)
        self.assertEqual(metrics_during[0], 200, "metrics stay readable while the loop is stuck")
        self.assertIn("memha_event_loop_heartbeat_age_seconds", metrics_during[1])
        c.sock.settimeout(5)
        self.assertEqual(c.line(), b"VALUE k 0 1", "the request waiting in the frozen loop is served after it")
        deadline = time.monotonic() + 2
        while sc.http("GET", "/healthz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(sc.http("GET", "/healthz")[0], 200, "healthy again once the loop turns")
        self.assertGreaterEqual(sc.metric("memha_event_loop_lag_seconds_bucket", le="+Inf"), 1)

    def check_probes_under(self, port, slow_connections):
        sc = self.sidecar
        samples, failures = [], []
        with Slowloris(port, slow_connections) as attack:
            t_end = time.monotonic() + 7  # longer than the 5 s request timeout: attackers get dropped and return
            while time.monotonic() < t_end:
                for path in ("/healthz", "/metrics", "/readyz"):
                    status, secs = timed_get(port, path, timeout=1.0)
                    samples.append(secs)
                    if status != 200:
                        failures.append((path, status, round(secs, 3)))
                time.sleep(0.2)
        samples.sort()
        figures = dict(slow_connections=slow_connections, probes=len(samples), failed=len(failures),
                       p50_ms=round(samples[len(samples) // 2] * 1000, 1), max_ms=round(samples[-1] * 1000, 1),
                       attacker_reconnects=attack.reconnects)
        Figures.report(f"slowloris_{slow_connections}", **figures)
        self.assertEqual(failures, [], f"{len(failures)} of {len(samples)} probes failed under {slow_connections} "
                                       f"slow connections")
        self.assertLess(samples[-1], 1.0)
        return sc

    # The probes' own limit on the data-plane loop (5 s) is test_wedged_event_loop_fails_healthz's subject: here it is
    # out of the way (60 s), so a loop slowed down by a sanitizer on a loaded machine (CI's TSan phase once saw one
    # 503 "event loop stalled" among 105 probes) is not taken for an admin server that starves its probes.
    def test_slow_connections_do_not_starve_probes(self):
        sc = self.start("--loop-stall-ms", "60000")
        self.check_probes_under(sc.admin_port, 16)
        self.assertGreaterEqual(sc.metric("memha_admin_http_connections_total", server="admin", result="timeout"), 16,
                                "a request head that takes over 5 s is dropped")

    def test_many_slow_connections_do_not_starve_probes(self):
        # More slow connections than the connection cap (64): the oldest unfinished ones are dropped for newcomers.
        sc = self.start("--loop-stall-ms", "60000")
        self.check_probes_under(sc.admin_port, 200)
        self.assertGreater(sc.metric("memha_admin_http_connections_total", server="admin", result="evicted"), 0)

    def test_big_bodies_are_refused_unread(self):
        sc = self.start()
        port = sc.admin_port
        big = 8 * 1024 * 1024
        head = f"PUT /v1/topology HTTP/1.1\r\nHost: t\r\nContent-Length: {big}\r\n"
        # The reply comes from the head alone: the client has not sent a byte of the body.
        status, text, secs = raw_http(port, (head + "\r\n").encode(), timeout=3, read_first=True)
        self.assertEqual(status, 401, text)
        self.assertLess(secs, 1.0)
        status, text, secs = raw_http(port, (head + "Authorization: Bearer wrong\r\n\r\n").encode(), timeout=3,
                                      read_first=True)
        self.assertEqual(status, 401, text)
        # Signed for this pod (the signature over the body is checked once it is read; it never is here).
        signature = "".join(f"{k}: {v}\r\n" for k, v in sc.signer.headers(b"").items())
        status, text, secs = raw_http(port, (head + signature + "\r\n").encode(), timeout=3,
                                      read_first=True)
        self.assertEqual(status, 413, text)
        self.assertIn("over the limit", text)
        self.assertLess(secs, 1.0)
        chunked = (f"PUT /v1/topology HTTP/1.1\r\nHost: t\r\n{signature}"
                   "Transfer-Encoding: chunked\r\n\r\n")
        self.assertEqual(raw_http(port, chunked.encode(), timeout=3, read_first=True)[0], 501)
        many_headers = "GET /healthz HTTP/1.1\r\n" + "".join(f"X-{i}: {'v' * 100}\r\n" for i in range(200)) + "\r\n"
        self.assertEqual(raw_http(port, many_headers.encode(), timeout=3, read_first=True)[0], 431)

        # The outside tester's attack: unauthenticated 8 MB bodies, sent whole, from 8 connections at a time.
        before = rss_kb(sc.proc.pid)
        body = b"x" * big
        replies = []

        def blast():
            try:
                replies.append(raw_http(port, (head + "\r\n").encode() + body, timeout=5)[0])
            except OSError as e:
                replies.append(errno.errorcode.get(e.errno, str(e)))

        t0 = time.monotonic()
        for _ in range(3):
            threads = [threading.Thread(target=blast) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elapsed = time.monotonic() - t0
        after = rss_kb(sc.proc.pid)
        Figures.report("big_bodies", requests=len(replies), rss_before_kb=before, rss_after_kb=after,
                       growth_kb=after - before, seconds=round(elapsed, 2),
                       replies=",".join(sorted(set(str(r) for r in replies))))
        self.assertLess(after - before, 4 * 1024, "refused bodies must not be buffered")
        self.assertTrue(all(r in (401, None) or isinstance(r, str) for r in replies), replies)
        self.assertEqual(sc.http("GET", "/healthz")[0], 200)

    def test_valid_pushes_still_work(self):
        sc = self.start()
        mc2 = Memcached()
        try:
            listen = f"127.0.0.1:{sc.port}"
            # A large but legitimate topology (~600 KB: 4,000 members) is under the 1 MiB limit.
            members = [(f"cache-a-{i}-{'n' * 100}", self.mc.address, "up") for i in range(4000)]
            body = json.dumps(topology(1, 1, [pool("static", listen, members)]))
            self.assertGreater(len(body), 500 * 1024)
            status, text = sc.http("PUT", "/v1/topology", body, sign=True)
            self.assertEqual(status, 200, text)
            # curl's way for big bodies: Expect: 100-continue, the body only after the interim reply.
            small = json.dumps(topology(1, 2, [pool("static", listen, [("b", mc2.address, "up")])])).encode()
            sock = socket.create_connection(("127.0.0.1", sc.admin_port), timeout=3)
            signature = "".join(f"{k}: {v}\r\n" for k, v in sc.signer.headers(small).items())
            sock.sendall(f"PUT /v1/topology HTTP/1.1\r\nHost: t\r\n{signature}"
                         f"Expect: 100-continue\r\nContent-Length: {len(small)}\r\n\r\n".encode())
            interim = sock.recv(4096)
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
            sock.sendall(small)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            sock.close()
            self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply)
            self.assertEqual(json.loads(sc.http("GET", "/v1/topology")[1])["version"], 2)
            c = Client(sc.port)
            self.assertEqual(c.set("k", "v"), b"STORED")
            self.assertEqual(Client(mc2.port).get("k"), b"v", "the pushed topology is the one serving")
        finally:
            mc2.stop()


def non_loopback_ipv4():
    """An address of this machine that is not loopback (a connection to it comes from it, as from another pod)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the source address of a route
            ip = s.getsockname()[0]
        except OSError:
            ip = ""
    if ip and not ip.startswith("127."):
        return ip
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return next((a for a in out if "." in a and not a.startswith("127.")), None)


class AdminPortExposureTest(unittest.TestCase):
    """Issue 12: the injected admin port listens on the pod IP for the controller's pushes. From anywhere but the pod
    itself it answers only the probe paths and signed pushes: GET /v1/topology and /metrics (member pod IPs) were
    served to any pod in the cluster."""

    def test_only_health_and_signed_pushes_from_outside_the_pod(self):
        outside = non_loopback_ipv4()
        self.assertIsNotNone(outside, "this test needs an address that is not loopback (hostname -I)")
        mc = Memcached()
        health = free_port()
        sc = Sidecar(signed=True, extra=["--admin-address", "0.0.0.0", "--health-port", str(health)])
        try:
            port = free_port()
            body = json.dumps(topology(1, 1, [pool("shop/cache-a", f"127.0.0.1:{port}",
                                                   [("cache-a-0", mc.address, "up")])]))
            signature = "".join(f"{k}: {v}\r\n" for k, v in sc.signer.headers(body).items())
            put = (f"PUT /v1/topology HTTP/1.1\r\nHost: t\r\n{signature}Content-Length: {len(body)}\r\n\r\n"
                   f"{body}").encode()
            status, text, _ = raw_http(sc.admin_port, put, host=outside)
            self.assertEqual(status, 200, "a signed push from another address (the controller) is applied: " + text)
            for path in ("/v1/topology", "/metrics"):
                status, text, _ = raw_http(sc.admin_port, f"GET {path} HTTP/1.1\r\n\r\n".encode(), host=outside)
                self.assertEqual(status, 403, f"GET {path} from {outside}: {text}")
                self.assertNotIn(mc.address, text)
            for path in ("/healthz", "/readyz"):
                self.assertEqual(raw_http(sc.admin_port, f"GET {path} HTTP/1.1\r\n\r\n".encode(), host=outside)[0],
                                 200, path)
            unsigned = f"PUT /v1/topology HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
            self.assertEqual(raw_http(sc.admin_port, unsigned, host=outside)[0], 401)
            # The pod itself (loopback: another container, kubectl exec or port-forward) still reads both.
            status, text, _ = raw_http(sc.admin_port, b"GET /v1/topology HTTP/1.1\r\n\r\n")
            self.assertEqual(status, 200)
            self.assertIn(mc.address, text)
            self.assertEqual(raw_http(sc.admin_port, b"GET /metrics HTTP/1.1\r\n\r\n")[0], 200)
            # Prometheus scrapes the health port, which never takes a push.
            self.assertEqual(raw_http(health, b"GET /metrics HTTP/1.1\r\n\r\n", host=outside)[0], 200)
            self.assertEqual(raw_http(health, put, host=outside)[0], 404)
        finally:
            self.assertEqual(sc.stop(), 0)
            mc.stop()


class HealthPortTest(unittest.TestCase):
    """--health-port: the probe paths (and only those) on a port of their own, as the injected sidecar runs."""

    def test_health_port(self):
        mc = Memcached()
        health = free_port()
        sc = Sidecar(primary=[mc.address], signed=True,
                     extra=["--health-port", str(health), "--loop-stall-ms", "1000"])
        try:
            for path, want in (("/healthz", "ok"), ("/readyz", "ready"), ("/metrics", "memha_requests_total")):
                status, text, _ = raw_http(health, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                self.assertEqual(status, 200, path)
                self.assertIn(want, text)
            self.assertEqual(raw_http(health, b"GET /v1/topology HTTP/1.1\r\n\r\n")[0], 404)
            signature = "".join(f"{k}: {v}\r\n" for k, v in sc.signer.headers("{}").items())
            put = f"PUT /v1/topology HTTP/1.1\r\n{signature}Content-Length: 2\r\n\r\n{{}}"
            self.assertEqual(raw_http(health, put.encode())[0], 404, "no pushes on the health port")
            self.assertEqual(raw_http(health, b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n")[0], 405)
            # --loop-stall-ms 1000: a frozen loop fails both probes after about a second, with the reason.
            freezer = LoopThreadFreeze(sc.proc.pid)
            try:
                freezer.freeze()
                time.sleep(1.6)
                hz = raw_http(health, b"GET /healthz HTTP/1.1\r\n\r\n")
                rz = raw_http(health, b"GET /readyz HTTP/1.1\r\n\r\n")
            finally:
                freezer.thaw()
            self.assertEqual(hz[0], 503, hz[1])
            self.assertIn("event loop stalled", hz[1])
            self.assertEqual(rz[0], 503, rz[1])
            self.assertLess(hz[2], 0.5, "a stalled loop is reported at once, not by a probe timeout")
            time.sleep(0.5)
            self.assertEqual(raw_http(health, b"GET /healthz HTTP/1.1\r\n\r\n")[0], 200)
        finally:
            self.assertEqual(sc.stop(), 0)
            mc.stop()


class StaticFileTest(unittest.TestCase):
    def test_config_file_and_sighup_reload(self):
        a, b = Memcached(), Memcached()
        port = free_port()
        cfg = topology(0, 1, [pool("p", f"127.0.0.1:{port}", [("a", a.address, "up")])])
        s = Sidecar(config=cfg)
        try:
            c = Client(port)
            self.assertEqual(c.set("k", "1"), b"STORED")
            cfg = topology(0, 2, [pool("p", f"127.0.0.1:{port}", [("b", b.address, "up")])])
            with open(s.config_path, "w") as f:
                json.dump(cfg, f)
            s.proc.send_signal(1)  # SIGHUP
            deadline = time.time() + 5
            while time.time() < deadline and json.loads(s.http("GET", "/v1/topology")[1])["version"] != 2:
                time.sleep(0.05)
            self.assertEqual(c.set("k2", "2"), b"STORED", "the same client connection survives the reload")
            self.assertEqual(Client(b.port).get("k2"), b"2")
            with open(s.config_path, "w") as f:
                f.write("{broken")
            s.proc.send_signal(1)
            time.sleep(0.3)
            self.assertEqual(c.get("k2"), b"2", "a broken file keeps the last good topology")
            self.assertIn("reload failed", s.logs())
        finally:
            self.assertEqual(s.stop(), 0)
            a.stop()
            b.stop()


if __name__ == "__main__":
    main()
