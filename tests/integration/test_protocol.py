"""The sidecar answers like memcached: the same bytes for the same input, including bad input."""
import resource
import socket
import threading
import time
import unittest

from harness import Client, Figures, Memcached, Sidecar, main

LONG_KEY = "k" * 251
CASES = [
    b"set a 5 0 1\r\nx\r\nget a\r\nget a nope a\r\n",
    b"set n 0 0 1\r\n5\r\nincr n 3\r\ndecr n 100\r\nincr n abc\r\nincr nope 1\r\nincr a 1\r\n",
    b"add a 0 0 1\r\ny\r\nadd b 0 0 1\r\ny\r\nreplace zz 0 0 1\r\nq\r\nappend a 0 0 2\r\nAA\r\nprepend a 0 0 2\r\nPP\r\nget a\r\n",
    b"append zz 0 0 1\r\ny\r\ncas nokey 0 0 1 1\r\nx\r\ndelete a\r\ndelete a\r\ndelete a 0\r\ndelete a 5\r\n",
    b"touch n 100\r\ntouch zz 1\r\ntouch n abc\r\ngat 100 n\r\ngat 10\r\ngat\r\ngat abc n\r\n",
    b"set q 0 0 1 noreply\r\nx\r\nincr q 1 noreply\r\ndelete zz noreply\r\nget q\r\n",
    b"get\r\nfoo\r\n\r\nGETS a\r\nverbosity\r\nverbosity 1\r\nverbosity 1 noreply\r\n",
    b"set " + LONG_KEY.encode() + b" 0 0 1\r\nx\r\nget a\r\n",
    # memcached drops earlier pipelined replies when a get has an over-long key; compared on its own.
    b"get " + LONG_KEY.encode() + b"\r\n",
    b"set k 0 0 -1\r\nset k 0 0 abc\r\nset k abc 0 1\r\nset k 0 0 3\r\nabcde\r\nset k 0 0\r\n",
    b"set big 0 0 2000000\r\n" + b"z" * 2000000 + b"\r\nget big\r\nset after 0 0 1\r\n1\r\nget after\r\n",
    b"set k 0 0 1 noreply\r\nxyz\r\nset k 0 0 -1 noreply\r\nget k\r\n",
    b"ms m 2\r\nhi\r\nmg m v f t s\r\nmg m k v\r\nmg nope v\r\nmg nope v q\r\nmg m v q\r\nmn\r\n",
    b"ms m 2 q\r\nhi\r\nmd nope q\r\nmd m q\r\nmg m v\r\nms c 1\r\n1\r\nma c\r\nma c v\r\nma c q\r\nma c q v\r\nma nope q\r\nmn\r\n",
    b"ms m 2 MZ\r\nhi\r\nms m 2 ME\r\nhi\r\nms m 2 ME\r\nhi\r\nmg\r\nms k\r\nms k abc\r\nmx k\r\nmg " + LONG_KEY.encode() + b" v\r\n",
    b"ms YmFzZTY0 2 b\r\nhi\r\nmg YmFzZTY0 b v k\r\nmg !!!! b v\r\nmd YmFzZTY0 b\r\nmg YmFzZTY0 b v\r\n",
    b"flush_all\r\nget n\r\nflush_all abc\r\nflush_all 0 noreply\r\nflush_all 0\r\n",
    b"x" * 5000,
    b"set k 0 0 1\r\nx\r\nquit\r\nget k\r\n",
]


def exchange(port, data):
    c = Client(port)
    c.send(data)
    out = c.read_all(idle=0.4)
    c.close()
    return out


class ParityTest(unittest.TestCase):
    def test_same_bytes_as_memcached(self):
        for backup in (False, True):
            direct = Memcached()
            primary = Memcached()
            extra = Memcached() if backup else None
            sidecar = Sidecar(primary=[primary.address], backup=[extra.address] if backup else [])
            try:
                for case in CASES:
                    want = exchange(direct.port, case)
                    got = exchange(sidecar.port, case)
                    self.assertEqual(got, want, f"backup={backup} input={case[:120]!r}")
                Figures.report("protocol_parity", backup=backup, cases=len(CASES))
            finally:
                sidecar.stop()
                for m in (direct, primary, extra):
                    if m:
                        m.stop()


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.primary = Memcached()
        self.backup = Memcached()
        self.sidecar = Sidecar(primary=[self.primary.address], backup=[self.backup.address])

    def tearDown(self):
        self.assertEqual(self.sidecar.stop(), 0)
        self.primary.stop()
        self.backup.stop()

    def test_binary_protocol_gets_a_clear_error(self):
        c = Client(self.sidecar.port)
        c.send(b"\x80\x0a\x00\x00" + b"\x00" * 8 + b"\xde\xad\xbe\xef" + b"\x00" * 8)
        out = c.read_all()
        self.assertEqual(out[0], 0x81)
        self.assertEqual(out[6:8], b"\x00\x83")        # not supported
        self.assertEqual(out[12:16], b"\xde\xad\xbe\xef")  # opaque echoed
        self.assertIn(b"binary protocol not supported", out)
        self.assertTrue(out.endswith(b"<closed>"))

    def test_endless_line_is_cut_off_and_others_keep_working(self):
        good = Client(self.sidecar.port)
        self.assertEqual(good.set("k", "v"), b"STORED")
        bad = socket.create_connection(("127.0.0.1", self.sidecar.port))
        closed = False
        sent = 0
        try:
            for _ in range(400):  # up to 40 MB of one line that never ends
                bad.sendall(b"get " + b"a" * 100000)
                sent += 100004
                self.assertEqual(good.get("k"), b"v")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        bad.close()
        Figures.report("endless_line", bytes_sent_before_close=sent)
        self.assertTrue(closed, "the sidecar kept buffering a line that never ends")
        self.assertEqual(good.get("k"), b"v")

    def test_member_replies_larger_than_the_read_buffer_after_a_partial_consume(self):
        # Found by test_protocol_fuzz.py: the member connection's read used capacity - size as the free room after
        # bytes had been consumed from the front, and wrote past the buffer (ASan: heap-buffer-overflow in recv).
        c = Client(self.sidecar.port, timeout=10)
        small, big = "s" * 1000, "B" * 200000
        self.assertEqual(c.set("fz_s", small), b"STORED")
        self.assertEqual(c.set("fz_big", big), b"STORED")
        c.send("get fz_s\r\nget fz_big\r\nget fz_s\r\nget fz_big\r\n")
        want = (f"VALUE fz_s 0 1000\r\n{small}\r\nEND\r\nVALUE fz_big 0 200000\r\n{big}\r\nEND\r\n" * 2).encode()
        got = c.read_all(idle=1.0)
        c.close()
        self.assertEqual(len(got), len(want))
        self.assertTrue(got == want, "replies differ")
        self.assertIsNone(self.sidecar.proc.poll(), "sidecar died")

    def test_garbage_from_one_client_does_not_hurt_another(self):
        good = Client(self.sidecar.port)
        stop = threading.Event()

        def garbage():
            import random
            rng = random.Random(7)
            while not stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", self.sidecar.port))
                    s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))) + b"\r\n")
                    s.close()
                except OSError:
                    pass

        t = threading.Thread(target=garbage, daemon=True)
        t.start()
        try:
            for i in range(500):
                self.assertEqual(good.set(f"g{i}", str(i)), b"STORED")
                self.assertEqual(good.get(f"g{i}"), str(i).encode())
        finally:
            stop.set()
            t.join()
        self.assertIsNone(self.sidecar.proc.poll(), "sidecar died")

    def test_thousand_concurrent_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096 and hard >= 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
        # The sidecar inherited the limit when it started; restart it with the raised one.
        self.sidecar.stop()
        self.sidecar = Sidecar(primary=[self.primary.address], backup=[self.backup.address])
        clients = [Client(self.sidecar.port, timeout=10) for _ in range(1000)]
        t0 = time.monotonic()
        for i, c in enumerate(clients):
            c.send(f"set c{i} 0 0 {len(str(i))}\r\n{i}\r\nget c{i}\r\n")
        ok = 0
        for i, c in enumerate(clients):
            if c.line() == b"STORED" and c.line().startswith(b"VALUE") and c.line() == str(i).encode() \
                    and c.line() == b"END":
                ok += 1
        elapsed = time.monotonic() - t0
        conns = self.sidecar.metric("memha_client_connections")
        for c in clients:
            c.close()
        Figures.report("thousand_connections", ok=ok, of=1000, seconds=round(elapsed, 2), gauge=conns)
        self.assertEqual(ok, 1000)
        self.assertEqual(conns, 1000)


if __name__ == "__main__":
    main()
