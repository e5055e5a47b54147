"""Real client libraries (Debian python3-pymemcache, python3-pylibmc) get the same results through the sidecar as
against memcached directly."""
import unittest

import pylibmc
from pymemcache.client.base import Client as PyClient

from harness import Memcached, Sidecar, main


def pymemcache_suite(port):
    c = PyClient(("127.0.0.1", port), default_noreply=False)
    out = []
    out.append(c.set("a", b"1"))
    out.append(c.get("a"))
    out.append(c.get_many(["a", "nope", "b"]))
    out.append(c.set_many({"b": b"2", "c": b"3"}))
    out.append(sorted(c.get_many(["a", "b", "c", "nope"]).items()))
    value, cas = c.gets("a")
    out.append(value)
    out.append(c.cas("a", b"10", cas))
    out.append(c.cas("a", b"11", cas))  # stale cas -> False
    out.append(c.get("a"))
    out.append(c.incr("n", 1))          # missing -> None
    out.append(c.set("n", b"5"))
    out.append(c.incr("n", 10))
    out.append(c.decr("n", 100))
    out.append(c.add("a", b"x"))
    out.append(c.replace("zz", b"x"))
    out.append(c.append("a", b"+"))
    out.append(c.prepend("a", b"-"))
    out.append(c.get("a"))
    out.append(c.touch("a", 100))
    out.append(c.touch("zz", 100))
    out.append(c.delete("a"))
    out.append(c.delete("a"))
    out.append(c.get("a"))
    out.append(c.set("q", b"v", noreply=True))
    out.append(c.get("q"))
    out.append(c.delete("q", noreply=True))
    out.append(c.get("q"))
    out.append(c.get("k" * 250))
    c.close()
    return out


def pylibmc_suite(port):
    c = pylibmc.Client([f"127.0.0.1:{port}"], behaviors={"cas": True})
    out = []
    out.append(c.set("a", "1"))
    out.append(c.get("a"))
    out.append(c.set_multi({"b": "2", "c": "3"}))
    out.append(sorted(c.get_multi(["a", "b", "c", "nope"]).items()))
    value, cas = c.gets("a")
    out.append(value)
    out.append(c.cas("a", "10", cas))
    out.append(c.get("a"))
    c.set("n", 5)
    out.append(c.incr("n", 10))
    out.append(c.decr("n", 100))
    out.append(c.add("a", "x"))
    out.append(c.append("a", "+"))
    out.append(c.get("a"))
    out.append(c.touch("a", 100))
    out.append(c.delete("a"))
    out.append(c.delete("a"))
    out.append(c.get("a"))
    try:
        c.incr("nope", 1)
        out.append("no error")
    except pylibmc.NotFound:
        out.append("NotFound")
    out.append(c.delete_multi(["b", "c"]))
    out.append(c.get_multi(["b", "c"]))
    return out


class RealClientsTest(unittest.TestCase):
    def test_same_results_as_memcached(self):
        direct = Memcached()
        primary, backup = Memcached(), Memcached()
        sidecar = Sidecar(primary=[primary.address], backup=[backup.address])
        try:
            for suite in (pymemcache_suite, pylibmc_suite):
                want = suite(direct.port)
                direct_flush = PyClient(("127.0.0.1", direct.port))
                direct_flush.flush_all()
                got = suite(sidecar.port)
                self.assertEqual(got, want, suite.__name__)
                print(f"FIGURES {suite.__name__}: {len(want)} results identical", flush=True)
        finally:
            self.assertEqual(sidecar.stop(), 0)
            for m in (direct, primary, backup):
                m.stop()


if __name__ == "__main__":
    main()
