"""Boot fetch: a sidecar that starts before any push asks the controller (GET /v1/topology?pod=ns/name) and serves
once it has an answer; a controller that fails at first is retried with backoff. The controller here is a small
scripted HTTP server; the real controller is exercised by the Kubernetes tier."""
import http.server
import json
import os
import tempfile
import threading
import time
import unittest

from harness import Client, Figures, Memcached, PushSigner, Sidecar, free_port, main, pool, topology

TOKEN = "pod-token-1"  # stands for the pod's projected ServiceAccount token (the controller reviews it)


class FakeController:
    """Answers GET /v1/topology: the first `failures` requests get 503, then 200 with `body`."""

    def __init__(self, body, failures=0):
        self.body = body
        self.failures = failures
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Authorization"), time.monotonic()))
                if len(outer.requests) <= outer.failures:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"not synced\n")
                    return
                data = json.dumps(outer.body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class BootstrapTest(unittest.TestCase):
    def setUp(self):
        self.mc = Memcached()
        self.port = free_port()
        self.topo = topology(3, 17, [pool("shop/cache-a", f"127.0.0.1:{self.port}",
                                          [("cache-a-0", self.mc.address, "up")])])

    def tearDown(self):
        self.mc.stop()

    def sidecar(self, ctl, token=TOKEN):
        """A sidecar that boots from `ctl` with its pod's token in a file (what the kubelet mounts)."""
        self.token_file = os.path.join(tempfile.mkdtemp(prefix="memha-boot-"), "token")
        self.write_token(token)
        return Sidecar(signed=PushSigner(pod="shop/app-7"),
                       extra=["--controller-url", ctl.url, "--controller-token-file", self.token_file])

    def write_token(self, token):
        # As the kubelet does: a new file moved into place.
        with open(self.token_file + ".new", "w") as f:
            f.write(token + "\n")
        os.replace(self.token_file + ".new", self.token_file)

    def wait_ready(self, sidecar, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sidecar.http("GET", "/readyz")[0] == 200:
                return time.monotonic()
            time.sleep(0.05)
        self.fail("sidecar never became ready; log:\n" + sidecar.logs())

    def test_fetches_topology_at_boot_and_serves(self):
        ctl = FakeController(self.topo)
        sc = self.sidecar(ctl)
        try:
            self.wait_ready(sc)
            path, auth, _ = ctl.requests[0]
            self.assertEqual(path, "/v1/topology?pod=shop%2Fapp-7")
            self.assertEqual(auth, f"Bearer {TOKEN}")
            c = Client(self.port)
            c.set("k", "v1")
            self.assertEqual(c.get("k"), b"v1")
            c.close()
            status, body = sc.http("GET", "/v1/topology")
            self.assertEqual(status, 200)
            held = json.loads(body)
            self.assertEqual((held["epoch"], held["version"]), (3, 17))
            self.assertEqual(len(ctl.requests), 1, "no further fetches once a topology is held")
        finally:
            self.assertEqual(sc.stop(), 0)
            ctl.stop()

    def test_retries_with_backoff_until_the_controller_answers(self):
        ctl = FakeController(self.topo, failures=3)
        start = time.monotonic()
        sc = self.sidecar(ctl)
        try:
            self.assertEqual(sc.http("GET", "/readyz")[0], 503)
            ready_at = self.wait_ready(sc)
            self.assertEqual(len(ctl.requests), 4)
            gaps = [b[2] - a[2] for a, b in zip(ctl.requests, ctl.requests[1:])]
            self.assertTrue(all(g >= 0.2 for g in gaps), gaps)
            self.assertGreater(gaps[2], gaps[0], f"backoff grows: {gaps}")
            Figures.report("bootstrap_retry", attempts=len(ctl.requests),
                           gaps_ms=",".join(str(int(g * 1000)) for g in gaps),
                           ready_after_ms=int((ready_at - start) * 1000))
        finally:
            self.assertEqual(sc.stop(), 0)
            ctl.stop()

    def test_the_token_file_is_read_again_at_every_attempt(self):
        # The kubelet rotates the projected token (at 80% of its 10 minutes): a sidecar still retrying must present
        # the file's current token, not the one it read at start.
        ctl = FakeController(self.topo, failures=2)
        sc = self.sidecar(ctl)
        try:
            deadline = time.monotonic() + 10
            while not ctl.requests and time.monotonic() < deadline:
                time.sleep(0.01)
            self.write_token("pod-token-2")
            self.wait_ready(sc)
            tokens = [auth for _, auth, _ in ctl.requests]
            self.assertEqual(tokens[0], f"Bearer {TOKEN}")
            self.assertEqual(tokens[-1], "Bearer pod-token-2", tokens)
        finally:
            self.assertEqual(sc.stop(), 0)
            ctl.stop()

    def test_push_before_the_controller_answers_wins(self):
        ctl = FakeController(self.topo, failures=1000)
        sc = self.sidecar(ctl)
        try:
            pushed = topology(4, 1, self.topo["pools"])
            req = sc.http("PUT", "/v1/topology", json.dumps(pushed), sign=True)
            self.assertEqual(req[0], 200)
            self.wait_ready(sc)
            n = len(ctl.requests)
            time.sleep(1.5)
            self.assertLessEqual(len(ctl.requests), n + 1, "fetching stops once a push arrived")
        finally:
            self.assertEqual(sc.stop(), 0)
            ctl.stop()

    def test_bad_flags(self):
        import subprocess
        from harness import SIDECAR
        r = subprocess.run([SIDECAR, "--controller-url", "http://127.0.0.1:1", "--controller-token-file", "/dev/null"],
                           capture_output=True, text=True, env={})
        self.assertEqual(r.returncode, 2)
        self.assertIn("--pod", r.stderr)
        r = subprocess.run([SIDECAR, "--controller-url", "http://127.0.0.1:1", "--pod", "shop/app-7"],
                           capture_output=True, text=True, env={})
        self.assertEqual(r.returncode, 2)
        self.assertIn("--controller-token-file", r.stderr)
        r = subprocess.run([SIDECAR, "--controller-url", "ftp://x"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("http://", r.stderr)


if __name__ == "__main__":
    main()
