"""Ketama compatibility: twemproxy (Debian nutcracker, hash md5, distribution ketama) and memha place the same keys
on the same named members."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Client, Figures, Memcached, Sidecar, free_port, main, pool, topology, wait_port

NAMES = ["cache-a-0", "cache-a-1", "cache-a-2", "cache-a-3"]
KEYS = [f"user:{i}:profile" for i in range(10000)]


def load_and_locate(port, members):
    c = Client(port, timeout=30)
    batch = b"".join(f"set {k} 0 0 1 noreply\r\nx\r\n".encode() for k in KEYS)
    c.send(batch)
    assert c.cmd("get " + KEYS[-1]).startswith(b"VALUE")  # everything before it was processed in order
    c.line(); c.line()
    c.close()
    where = {}
    for idx, m in enumerate(members):
        d = Client(m.port, timeout=30)
        for k in KEYS:
            if d.get(k) is not None:
                where[k] = idx
        d.cmd("flush_all")
        d.close()
    return where


class KetamaNutcrackerTest(unittest.TestCase):
    def test_same_placement_as_twemproxy(self):
        nutcracker = shutil.which("nutcracker")
        self.assertIsNotNone(nutcracker, "Debian package nutcracker is required (scripts/install-deps.sh)")
        members = [Memcached() for _ in NAMES]
        tmp = tempfile.mkdtemp(prefix="memha-nc-")
        nc_port = free_port()
        conf = os.path.join(tmp, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write("pool:\n  listen: 127.0.0.1:%d\n  hash: md5\n  distribution: ketama\n"
                    "  auto_eject_hosts: false\n  servers:\n" % nc_port)
            for name, m in zip(NAMES, members):
                f.write(f"   - {m.address}:1 {name}\n")
        nc = subprocess.Popen([nutcracker, "-c", conf, "-s", str(free_port()), "-o", os.path.join(tmp, "nc.log")])
        sidecar = None
        try:
            wait_port(nc_port)
            twemproxy = load_and_locate(nc_port, members)
            port = free_port()
            sidecar = Sidecar(config=topology(0, 1, [pool("p", f"127.0.0.1:{port}",
                                                          [(n, m.address, "up") for n, m in zip(NAMES, members)])]))
            memha = load_and_locate(port, members)
            same = sum(1 for k in KEYS if twemproxy.get(k) == memha.get(k) and k in memha)
            spread = [list(memha.values()).count(i) for i in range(len(NAMES))]
            Figures.report("ketama_vs_twemproxy", keys=len(KEYS), same_member=same, per_member=spread)
            self.assertEqual(len(twemproxy), len(KEYS))
            self.assertEqual(same, len(KEYS))
        finally:
            nc.terminate()
            nc.wait()
            if sidecar:
                sidecar.stop()
            for m in members:
                m.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
