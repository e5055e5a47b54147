#!/usr/bin/env python3
"""The node tier's application: a read-through cache client of the injected sidecar (127.0.0.1:11211).

Two kinds of keys, so every wrong answer is counted whatever happens to memcached:
  r:<i>          read-through: a miss "loads from the database" (the value is a pure function of i) and sets it;
                 a hit must be exactly that value (anything else is `bad`: corrupted or misdelivered).
  w:<pod>:<j>    this pod's own keys: it writes increasing versions; a read must return the last acknowledged
                 version or a newer one (older is `stale`; a miss after an acknowledged write is allowed: a cache
                 may drop, but never go back in time).
Counters go every 0.5 s (and at exit) as one JSON datagram to $COLLECTOR (host:port), and to stdout every 5 s.
"""
import json
import os
import random
import signal
import socket
import sys
import time

POD = os.environ.get("POD_NAME", socket.gethostname())
TARGET = ("127.0.0.1", int(os.environ.get("CACHE_PORT", "11211")))
COLLECTOR = os.environ.get("COLLECTOR", "")
KEYS = int(os.environ.get("KEYS", "2000"))
OWN_KEYS = int(os.environ.get("OWN_KEYS", "200"))
RATE = float(os.environ.get("RATE", "300"))
WRITE_FRACTION = float(os.environ.get("WRITE_FRACTION", "0.1"))
TIMEOUT = float(os.environ.get("OP_TIMEOUT", "2"))

c = {"gets": 0, "hits": 0, "misses": 0, "sets": 0, "errors": 0, "stale": 0, "bad": 0,
     "own_reads": 0, "own_writes": 0, "reconnects": 0}
acked = {}  # own key -> last acknowledged version
running = True
last_error = ""


def value_of(i):
    return ("v%d:" % i) + ("x" * (50 + i % 200))


class Conn:
    def __init__(self):
        self.s = None
        self.buf = b""

    def close(self):
        if self.s:
            try:
                self.s.close()
            except OSError:
                pass
        self.s = None
        self.buf = b""

    def ensure(self):
        if self.s is None:
            self.s = socket.create_connection(TARGET, timeout=TIMEOUT)
            self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c["reconnects"] += 1

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("connection closed by the sidecar")
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def exact(self, n):
        while len(self.buf) < n + 2:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("connection closed by the sidecar")
            self.buf += d
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def get(self, key):
        self.ensure()
        self.s.sendall(b"get " + key.encode() + b"\r\n")
        ln = self.line()
        if ln == b"END":
            return None
        p = ln.split()
        if len(p) != 4 or p[0] != b"VALUE" or p[1] != key.encode():
            raise ValueError("bad reply to get %s: %r" % (key, ln[:80]))
        data = self.exact(int(p[3]))
        end = self.line()
        if end != b"END":
            raise ValueError("no END after the value of %s: %r" % (key, end[:80]))
        return data.decode()

    def set(self, key, val):
        self.ensure()
        b = val.encode()
        self.s.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(b), b))
        ln = self.line()
        if ln != b"STORED":
            raise ValueError("set %s: %r" % (key, ln[:80]))


def report(collector_sock, final=False):
    msg = dict(c, pod=POD, t=time.time(), final=final, last_error=last_error)
    data = json.dumps(msg).encode()
    if collector_sock is not None:
        try:
            collector_sock.sendto(data, COLLECTOR_ADDR)
            if final:
                time.sleep(0.05)
                collector_sock.sendto(data, COLLECTOR_ADDR)
        except OSError:
            pass
    return data


def stop(_sig, _frm):
    global running
    running = False


def main():
    global last_error
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sock = None
    if COLLECTOR:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    conn = Conn()
    rnd = random.Random()
    next_report = next_print = time.time()
    interval = 1.0 / RATE if RATE > 0 else 0
    t_next = time.time()
    print("memha-node-client %s -> %s:%d, %d keys, %.0f ops/s" % (POD, TARGET[0], TARGET[1], KEYS, RATE), flush=True)
    while running:
        now = time.time()
        if now >= next_report:
            report(sock)
            next_report = now + 0.5
        if now >= next_print:
            print(json.dumps(dict(c, t=round(now, 1))), flush=True)
            next_print = now + 5
        try:
            if rnd.random() < WRITE_FRACTION:
                j = rnd.randrange(OWN_KEYS)
                k = "w:%s:%d" % (POD, j)
                if rnd.random() < 0.5:
                    ver = acked.get(k, 0) + 1
                    conn.set(k, "%s:%d" % (k, ver))
                    acked[k] = ver
                    c["own_writes"] += 1
                else:
                    v = conn.get(k)
                    c["own_reads"] += 1
                    if v is not None:
                        kk, _, ver = v.rpartition(":")
                        if kk != k:
                            c["bad"] += 1
                            last_error = "bad value for %s: %r" % (k, v[:80])
                            print(last_error, flush=True)
                        elif int(ver) < acked.get(k, 0):
                            c["stale"] += 1
                            last_error = "stale %s: read %s, acknowledged %d" % (k, ver, acked[k])
                            print(last_error, flush=True)
            else:
                i = rnd.randrange(KEYS)
                k = "r:%d" % i
                v = conn.get(k)
                c["gets"] += 1
                if v is None:
                    c["misses"] += 1
                    conn.set(k, value_of(i))
                    c["sets"] += 1
                elif v != value_of(i):
                    c["bad"] += 1
                    last_error = "bad value for %s: %r" % (k, v[:80])
                    print(last_error, flush=True)
                else:
                    c["hits"] += 1
        except (OSError, ValueError, ConnectionError) as e:
            c["errors"] += 1
            last_error = "%s: %s" % (type(e).__name__, e)
            print("error:", last_error, flush=True)
            conn.close()
            time.sleep(0.05)
        if interval:
            t_next += interval
            d = t_next - time.time()
            if d > 0:
                time.sleep(d)
            elif d < -1:
                t_next = time.time()
    print("final", report(sock, final=True).decode(), flush=True)


if __name__ == "__main__":
    if COLLECTOR:
        h, p = COLLECTOR.rsplit(":", 1)
        COLLECTOR_ADDR = (h, int(p))
    sys.exit(main())
