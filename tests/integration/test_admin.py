"""Admin HTTP: topology pushes (auth, validation, ordering), swaps under load, health, metrics, state file."""
import json
import os
import threading
import time
import unittest

from harness import Client, Figures, Memcached, Sidecar, free_port, main, pool, topology

TOKEN = "s3cret-token"


class AdminTest(unittest.TestCase):
    def setUp(self):
        self.mc = [Memcached() for _ in range(4)]
        self.port = free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.state = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"memha-state-{self.port}.json")
        self.sidecar = Sidecar(token=TOKEN, state_file=self.state)

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

    def put(self, body, token=TOKEN):
        return self.sidecar.http("PUT", "/v1/topology", json.dumps(body) if not isinstance(body, str) else body,
                                 token=token)

    def test_push_contract(self):
        self.assertEqual(self.sidecar.http("GET", "/readyz")[0], 503)
        self.assertEqual(self.sidecar.http("GET", "/v1/topology")[0], 404)
        good = self.topo(5, self.mc[:2], self.mc[2:3])
        self.assertEqual(self.put(good, token=None)[0], 401)
        self.assertEqual(self.put(good, token="wrong")[0], 401)
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

    def test_token_rotation_without_restart(self):
        # A rotated Secret is updated in place in the mounted file; the sidecar must accept the new token at once
        # and refuse the old one, without a restart.
        good = self.topo(1, self.mc[:1], [])
        self.assertEqual(self.put(good)[0], 200)
        with open(os.path.join(self.sidecar.tmp, "token"), "w") as f:
            f.write("rotated-token\n")
        self.assertEqual(self.put(self.topo(2, self.mc[:1], []), token="rotated-token")[0], 200)
        time.sleep(1.1)  # mismatches re-read the file at most once a second
        self.assertEqual(self.put(self.topo(3, self.mc[:1], []), token=TOKEN)[0], 401)

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
