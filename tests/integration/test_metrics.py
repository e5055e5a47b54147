"""The sidecar's metrics as Prometheus reads them (docs/OPERATIONS.md "Metrics"): member state and failovers
labelled by pool and role, series of a pool that leaves the topology removed, memha_build_info, --version on both
binaries, and the number of series per pool size (bounded: it grows with members, never with keys or clients)."""
import json
import os
import re
import subprocess
import time
import unittest

from harness import Client, Memcached, Sidecar, free_port, main, pool, topology, Figures

CONTROLLER = os.environ.get("MEMHA_CONTROLLER")
SIDECAR = os.environ.get("MEMHA_SIDECAR")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def samples(text):
    """[(name, {label: value}, value)] of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m is None:
            raise AssertionError(f"not a sample line: {line!r}")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def reload_topology(sidecar, topo):
    with open(sidecar.config_path, "w") as f:
        json.dump(topo, f)
    sidecar.proc.send_signal(1)  # SIGHUP: re-read the file
    deadline = time.time() + 5
    while time.time() < deadline:
        if json.loads(sidecar.http("GET", "/v1/topology")[1])["version"] == topo["version"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"version {topo['version']} not in force after 5 s")


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stop()

    def start(self, *args, **kw):
        s = Sidecar(*args, **kw)
        self.procs.append(s)
        return s

    def memcached(self):
        m = Memcached()
        self.procs.append(m)
        return m

    def test_member_state_and_failovers_by_pool_and_role(self):
        a0, a1, shared = self.memcached(), self.memcached(), self.memcached()
        # shared is pool a's backup and pool b's only primary: one member, two series.
        port_a, port_b = free_port(), free_port()
        topo = topology(1, 1, [
            pool("shop/a", f"127.0.0.1:{port_a}", [("a-0", a0.address, "up"), ("a-1", a1.address, "up")],
                 [("s-0", shared.address, "up")]),
            pool("shop/b", f"127.0.0.1:{port_b}", [("s-0", shared.address, "up")])])
        s = self.start(config=topo)
        _, text = s.http("GET", "/metrics")
        states = {(l["pool"], l["role"], l["member"]): (l["address"], v)
                  for n, l, v in samples(text) if n == "memha_member_state"}
        self.assertEqual(states, {("shop/a", "primary", "a-0"): (a0.address, 1.0),
                                  ("shop/a", "primary", "a-1"): (a1.address, 1.0),
                                  ("shop/a", "backup", "s-0"): (shared.address, 1.0),
                                  ("shop/b", "primary", "s-0"): (shared.address, 1.0)})
        failovers = {(l["pool"], l["reason"]): v for n, l, v in samples(text) if n == "memha_failovers_total"}
        self.assertEqual(set(failovers), {(p, r) for p in ("shop/a", "shop/b") for r in (
            "connect_failed", "connection_lost", "timeout", "bad_reply", "member_down", "overloaded")})
        self.assertEqual(sum(failovers.values()), 0)

        # Every key of pool a written (and its mirror proven equal), then both primaries killed: each read fails
        # over to the backup.
        c = Client(port_a)
        for i in range(20):
            self.assertEqual(c.set(f"k{i}", "v"), b"STORED")
        deadline = time.time() + 5
        while time.time() < deadline and s.metric("memha_mirror_writes_total", result="verified") != 20:
            time.sleep(0.05)
        self.assertEqual(s.metric("memha_mirror_writes_total", result="verified"), 20)
        a0.stop()
        a1.stop()
        for i in range(20):
            self.assertEqual(c.get(f"k{i}"), b"v")
        deadline = time.time() + 5
        while time.time() < deadline and (s.metric("memha_member_state", pool="shop/a", role="primary") or 0) != 0:
            time.sleep(0.05)
        self.assertEqual(s.metric("memha_member_state", pool="shop/a", role="primary"), 0, "both primaries down")
        self.assertEqual(s.metric("memha_member_state", pool="shop/a", role="backup"), 1)
        self.assertEqual(s.metric("memha_member_state", pool="shop/b", role="primary"), 1, "the shared one is up")
        self.assertEqual(s.metric("memha_failovers_total", pool="shop/a"), 20)
        self.assertEqual(s.metric("memha_failovers_total", pool="shop/b"), 0)
        c.close()

        # Pool b leaves the topology: its series go with it; pool a's stay.
        reload_topology(s, topology(1, 2, [topo["pools"][0]]))
        _, text = s.http("GET", "/metrics")
        pools = {l.get("pool") for n, l, v in samples(text) if n in ("memha_member_state", "memha_failovers_total")}
        self.assertEqual(pools, {"shop/a"})
        self.assertEqual(s.metric("memha_failovers_total", pool="shop/a"), 20)

    def test_build_info_and_version(self):
        out = subprocess.run([SIDECAR, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        m = re.fullmatch(r"memha-sidecar (\d+\.\d+\.\d+\S*)\n", out.stdout)
        self.assertIsNotNone(m, out.stdout)
        version = m.group(1)
        if CONTROLLER is None:
            self.fail("MEMHA_CONTROLLER not set: memha-controller --version cannot be checked")
        out = subprocess.run([CONTROLLER, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, f"memha-controller {version}\n")

        m0 = self.memcached()
        s = self.start(primary=[m0.address])
        _, text = s.http("GET", "/metrics")
        self.assertEqual([(l, v) for n, l, v in samples(text) if n == "memha_build_info"],
                         [({"version": version}, 1.0)])

    def test_series_per_pool_size(self):
        """Series on /metrics for one pool of N primary members and N backup members (none running: the count
        does not depend on it), and what each extra member adds. Stated in docs/OPERATIONS.md "Metrics"."""
        counts = {}
        for n in (1, 3, 10):
            # Distinct addresses (members are keyed by address; free_port() can hand out the same port twice, and
            # two members on one address are one member: CI under ASan once counted 19 for 20).
            ports = set()
            while len(ports) < 2 * n + 1:
                ports.add(free_port())
            port, *members = sorted(ports)
            primary = [(f"p-{i}", f"127.0.0.1:{members[i]}", "up") for i in range(n)]
            backup = [(f"b-{i}", f"127.0.0.1:{members[n + i]}", "up") for i in range(n)]
            s = self.start(config=topology(1, 1, [pool("shop/cache", f"127.0.0.1:{port}", primary, backup)]))
            _, text = s.http("GET", "/metrics")
            all_samples = samples(text)
            counts[n] = len(all_samples)
            per_member = sum(1 for name, _, _ in all_samples if name == "memha_member_state")
            self.assertEqual(per_member, 2 * n, "one memha_member_state per member and role")
            s.stop()
        Figures.report("metrics.series", **{f"members_{n}x2": c for n, c in counts.items()})
        # Each member adds exactly its memha_member_state series; nothing else grows with the pool.
        self.assertEqual(counts[3] - counts[1], 4)
        self.assertEqual(counts[10] - counts[3], 14)
        self.assertLess(counts[10], 600, "bounded")


if __name__ == "__main__":
    main()
