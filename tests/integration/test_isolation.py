"""Isolation: one client's bytes never reach another client, and one client cannot hurt another (issue 9).

Written from the outside, against what a user sees, independently of how the sidecar is built. One deterministic
test per finding of issue 9 (items 1-4 and 6); each compares with memcached direct ("direct" = the same bytes
sent to a plain memcached) where that makes sense, and prints FIGURES lines with what it measured.

- Item 1, quiet flags memcached reads by their first character (`qx`, `qk`, `q1` on mg/ms/md): a victim reading
  its own key next to the attacker only ever reads its own value; no member is marked down.
- Item 2, long but complete lines (20,000 spaces, a long set line, `gat`/`get` with 3,000 keys): the sender gets
  what memcached gives it (or a close where memcached closes); bystanders see 0 errors; no member is marked down.
- Item 3, memory: pipelined gets of a 1 MB value without reading, one line of 1,500 such keys, many such
  attackers: sidecar RSS <= 64 MB (MEMHA_ISO_MAX_RSS_MB), bystanders 0 errors and p99 within 2x of the undisturbed
  run measured in the same test (see LatencyBound for the noise floor).
- Item 4, semantics: an oversized set unlinks the old value, an `HTTP/` request line closes the connection (no
  smuggled set), `flush_all` refused by `-F` members is not `OK`, `version x y` answers `VERSION`.
- Item 6: an unresolvable member hostname (with a backup) is served from the backup; no sanitizer report.

"Marked down" is judged three ways, so the tests do not depend on one log text: the sidecar's log ("marked
down"), the memha_member_state gauge sampled every 50 ms (0 = down), and memha_backend_errors_total.

Environment: MEMHA_SIDECAR (binary), MEMHA_ISO_MAX_RSS_MB (default 64; 1024 when the sidecar is a sanitizer
build, whose shadow memory and quarantine make RSS meaningless).
"""
import os
import re
import select
import socket
import string
import threading
import time
import unittest

from harness import Client, Figures, Memcached, Sidecar, main, sanitized

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:")
SECRET = b"SESSION-OF-ALICE"


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------

def proc_status(pid, field):
    """VmRSS / VmHWM of a process in MB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid):
    """User + system CPU time a process has used (from /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def short(data, limit=300):
    text = repr(bytes(data))
    return text if len(text) <= limit else f"{text[:limit]}... ({len(data)} bytes)"


def exchange(port, data, idle=0.5, timeout=5.0, until=None):
    """Sends `data` on a fresh connection; returns everything the server sends until it is quiet for `idle` s,
    or (with `until`) as soon as the output ends with `until`; b"<closed>" is appended when the server closed the
    connection. Sending and reading interleave, so a large request cannot deadlock on full socket buffers."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    out = bytearray()
    sent = 0
    last = time.monotonic()
    try:
        while True:
            want_write = sent < len(data)
            r, w, _ = select.select([s], [s] if want_write else [], [], 0.05)
            now = time.monotonic()
            if w:
                try:
                    n = s.send(data[sent:sent + 262144])
                    sent += n
                    last = now
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    sent = len(data)  # the peer closed; read what it sent
            if r:
                try:
                    chunk = s.recv(262144)
                except (BlockingIOError, InterruptedError):
                    chunk = None
                except OSError:  # reset with our unread input queued: a close, as the client sees it
                    chunk = b""
                if chunk == b"":
                    out += b"<closed>"
                    break
                if chunk:
                    out += chunk
                    last = now
                    if until is not None and sent >= len(data) and out.endswith(until):
                        break
            quiet = now - last
            if until is None and sent >= len(data) and quiet > idle:
                break
            if quiet > timeout:
                break
    finally:
        s.close()
    return bytes(out)


def talk(port, data, timeout=3.0):
    """`data` followed by `mn`, read until memcached's `MN` (every earlier reply written), a close or `timeout`
    s without progress."""
    return exchange(port, data + b"mn\r\n", until=b"MN\r\n", timeout=timeout)


def error_lines_only(data):
    lines = [line for line in data.split(b"\r\n") if line]
    return all(line == b"ERROR" or line.startswith((b"CLIENT_ERROR", b"SERVER_ERROR")) for line in lines)


def same_as_direct(direct, got, alternative=None):
    """The sender's outcome is acceptable: the same bytes as direct; or, where direct closed the connection, a
    close (after at most memcached's own bytes or an error line); or exactly `alternative` (the right answer,
    where memcached closes a connection for a legitimate request only because its line did not fit its buffer)."""
    if got == direct or (alternative is not None and got == alternative):
        return True
    if direct.endswith(b"<closed>") and got.endswith(b"<closed>"):
        before = got[:-len(b"<closed>")]
        return direct.startswith(before) or error_lines_only(before)
    return False


def keys_of_width(n, width, prefix=""):
    alphabet = string.ascii_lowercase + string.digits
    out = []
    for i in range(n):
        k, x = "", i
        for _ in range(width):
            k = alphabet[x % 36] + k
            x //= 36
        out.append(prefix + k)
    return out


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class LatencyBound:
    """p99 under attack must stay within 2x of the undisturbed p99 measured in the same test, with an absolute
    floor of FLOOR_MS added: on a 2-core machine shared with compilers and other tests, one preemption of the
    sidecar's single event-loop thread costs a scheduler slice (a few ms), and a 1% tail of a few thousand requests
    holds dozens of them whatever the sidecar does. The failures this test is about stall the loop for tens to
    hundreds of ms (copying hundreds of MB of replies), far above the floor."""
    FLOOR_MS = 10.0

    @classmethod
    def limit_ms(cls, base_p99_ms):
        return max(2.0 * base_p99_ms, base_p99_ms + cls.FLOOR_MS)


class Reader:
    """A blocking socket with a line/exact reader and a timeout; raises on timeout or close."""

    def __init__(self, port, timeout=3.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("closed by the sidecar")
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Bystander(threading.Thread):
    """A well-behaved client beside the attack: writes its own keys with values that encode key and sequence
    number, reads them back (text and meta), checks every byte, and records each round trip's latency."""

    def __init__(self, port, name, value_size=64, meta=False):
        super().__init__(daemon=True)
        self.port, self.name, self.value_size, self.meta = port, name, value_size, meta
        self.stop_flag = threading.Event()
        self.measuring = threading.Event()
        self.ops = 0
        self.errors = []
        self.latencies = []  # seconds, only while `measuring` is set
        self.in_flight_since = None  # a request not answered yet counts with its age when latencies are taken

    def run(self):
        conn = None
        i = 0
        while not self.stop_flag.is_set():
            key = f"BY-{self.name}-{i % 16}".encode()
            value = (b"%s:%d:" % (key, i)).ljust(self.value_size, b"v")
            try:
                if conn is None:
                    conn = Reader(self.port)
                t0 = self.in_flight_since = time.monotonic()
                if self.meta:
                    conn.send(b"ms %s %d T0\r\n%s\r\nmg %s v\r\n" % (key, len(value), value, key))
                    got = [conn.line(), conn.line()]
                    body = conn.exact(len(value) + 2) if got[1].startswith(b"VA ") else b""
                    ok = got == [b"HD", b"VA %d" % len(value)] and body == value + b"\r\n"
                    seen = b"\r\n".join(got) + b"\r\n" + body
                else:
                    conn.send(b"set %s 3 0 %d\r\n%s\r\nget %s\r\n" % (key, len(value), value, key))
                    got = [conn.line(), conn.line()]
                    body = conn.exact(len(value) + 2) if got[1].startswith(b"VALUE ") else b""
                    end = conn.line() if body else b""
                    ok = got == [b"STORED", b"VALUE %s 3 %d" % (key, len(value))] and body == value + b"\r\n" \
                        and end == b"END"
                    seen = b"\r\n".join(got) + b"\r\n" + body + end
                dt = time.monotonic() - t0
                self.in_flight_since = None
                if self.measuring.is_set():
                    self.latencies.append(dt)
                if not ok:
                    self.errors.append(f"{self.name} op {i}: {short(seen, 200)}")
                    conn.close()
                    conn = None
            except (OSError, ConnectionError) as e:
                self.in_flight_since = None
                self.errors.append(f"{self.name} op {i}: {e!r}")
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.02)
            self.ops += 1
            i += 1
        if conn:
            conn.close()


class Bystanders:
    def __init__(self, port, n=2, value_size=64):
        self.threads = [Bystander(port, f"b{j}", value_size, meta=(j % 2 == 1)) for j in range(n)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        for t in self.threads:
            t.stop_flag.set()
        for t in self.threads:
            t.join(10)

    def measure(self, on):
        for t in self.threads:
            (t.measuring.set if on else t.measuring.clear)()

    def take_latencies(self):
        """Latencies measured so far, plus the age of each request still unanswered (a stalled request is the
        worst latency of all, not a missing sample)."""
        out = []
        now = time.monotonic()
        for t in self.threads:
            since = t.in_flight_since
            out += t.latencies
            if since is not None:
                out.append(now - since)
            t.latencies = []
        return out

    @property
    def ops(self):
        return sum(t.ops for t in self.threads)

    @property
    def errors(self):
        return [e for t in self.threads for e in t.errors]


class MemberWatch:
    """Did any member get marked down? The log ("marked down"), the memha_member_state gauge sampled every 50 ms
    (0 = down), and memha_backend_errors_total. Names missing from /metrics count as unknown, never as a pass."""

    STATE = re.compile(r'^memha_member_state\{([^}]*)\} (\S+)$', re.M)

    def __init__(self, sidecar):
        self.sidecar = sidecar
        self.stop_flag = threading.Event()
        self.down_samples = {}
        self.samples = 0
        self.log_mark = len(sidecar.logs())
        self.errors_before = sidecar.metric("memha_backend_errors_total") or 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_flag.is_set():
            try:
                _, text = self.sidecar.http("GET", "/metrics")
                self.samples += 1
                for labels, value in self.STATE.findall(text):
                    if float(value) == 0.0:
                        self.down_samples[labels] = self.down_samples.get(labels, 0) + 1
            except Exception:  # noqa: BLE001 (admin busy or gone: the other two signals still count)
                pass
            self.stop_flag.wait(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(5)

    def result(self):
        log = self.sidecar.logs()[self.log_mark:]
        marked = [line for line in log.splitlines() if "marked down" in line]
        errors_after = self.sidecar.metric("memha_backend_errors_total") if self.sidecar.proc.poll() is None else None
        backend_errors = None if errors_after is None else errors_after - self.errors_before
        return {"marked_down_log": len(marked), "down_samples": sum(self.down_samples.values()),
                "backend_errors": backend_errors, "first_marked_down": marked[:3]}

    def problems(self):
        r = self.result()
        out = []
        if r["marked_down_log"]:
            out.append(f"members marked down {r['marked_down_log']} times (log: {r['first_marked_down']})")
        if r["down_samples"]:
            out.append(f"memha_member_state was 0 (down) in {r['down_samples']} samples: {self.down_samples}")
        if r["backend_errors"]:
            out.append(f"memha_backend_errors_total grew by {r['backend_errors']:.0f}")
        return out


def member_connections(member):
    """memcached's total_connections: how many connections it accepted (the sidecar reconnecting shows here)."""
    try:
        out = exchange(member.port, b"stats\r\n", until=b"END\r\n", timeout=2.0)
        m = re.search(rb"STAT total_connections (\d+)", out)
        return int(m.group(1)) if m else -1
    except OSError:
        return -1


class IsolationBase(unittest.TestCase):
    """A primary and a backup (one of each, so every key shares one member connection: the most sensitive
    arrangement for misdelivery) and a plain memcached for direct comparisons."""
    MEMBER_ARGS = ()
    maxDiff = None

    def no_problems(self, problems, what=""):
        if problems:
            self.fail((what + ":" if what else "") + "\n  - " + "\n  - ".join(problems))

    def setUp(self):
        self.direct = Memcached(extra=self.MEMBER_ARGS)
        self.primary = Memcached(extra=self.MEMBER_ARGS)
        self.backup = Memcached(extra=self.MEMBER_ARGS)
        self.sidecar = None
        self.start_sidecar()

    def start_sidecar(self, extra=()):
        if self.sidecar:
            self.sidecar.stop()
        self.sidecar = Sidecar(primary=[self.primary.address], backup=[self.backup.address], extra=extra)
        self.wait_serving(self.sidecar)

    @staticmethod
    def wait_serving(sidecar, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if exchange(sidecar.port, b"mn\r\n", until=b"MN\r\n", timeout=1.0) == b"MN\r\n":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("sidecar not serving")

    def tearDown(self):
        alive = self.sidecar.proc.poll() is None
        code = self.sidecar.stop()
        logs = self.sidecar.logs()
        for m in (self.direct, self.primary, self.backup):
            m.stop()
        reports = [line for line in logs.splitlines() if any(s in line for s in SANITIZER_MARKERS)]
        self.assertEqual(reports, [], "sanitizer report in the sidecar's log:\n" + logs[-4000:])
        self.assertTrue(alive, f"the sidecar died (exit {self.sidecar.proc.returncode}); log:\n{logs[-3000:]}")
        self.assertEqual(code, 0, f"the sidecar exited {code} on SIGTERM; log:\n{logs[-2000:]}")

    def both(self, data):
        """Sets up the same data directly and through the sidecar."""
        for port in (self.direct.port, self.sidecar.port):
            out = talk(port, data)
            self.assertTrue(out.endswith(b"MN\r\n") and b"ERROR" not in out,
                            f"setup failed on port {port}: {short(out)}")


# ---------------------------------------------------------------------------------------------------------------
# Item 1: quiet flags memcached reads by their first character
# ---------------------------------------------------------------------------------------------------------------

QUIET_VARIANTS = [b"qx", b"qk", b"q1"]
QUIET_ATTACKS = {
    # each: the attacker's batch (ending in mn) and what memcached answers to it
    "mg": b"".join(b"mg atk-miss v %s\r\n" % q for q in QUIET_VARIANTS) + b"mn\r\n",
    "ms": b"".join(b"ms atk-key 1 %s\r\nX\r\n" % q for q in QUIET_VARIANTS) + b"mn\r\n",
    "md": b"".join(b"ms atk-key 1\r\nX\r\nmd atk-key %s\r\n" % q for q in QUIET_VARIANTS) + b"mn\r\n",
}


class QuietFlagTest(IsolationBase):
    """Finding 1: `mg k v qx` etc. make memcached stay silent (quiet mode by the flag's first character) while a
    proxy that did not recognise the flag waits for a reply; the shared member connection shifts by one reply
    and a second client's `mg secret v` answer goes to the attacker."""
    SECONDS = 1.2

    def victim_and_attacker(self, port, attack, seconds):
        stop = threading.Event()
        victim = {"own": 0, "foreign": [], "errors": []}
        attacker = {"batches": 0, "secret_seen": 0, "timeouts": 0, "bytes": 0}

        def run_victim():
            conn = None
            i = 0
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = Reader(port, timeout=2.0)
                    if i % 2 == 0:
                        conn.send(b"mg secret v\r\n")
                        head = conn.line()
                        body = conn.exact(len(SECRET) + 2) if head == b"VA %d" % len(SECRET) else b""
                        ok = body == SECRET + b"\r\n"
                        seen = head + b"\r\n" + body
                    else:
                        conn.send(b"get secret\r\n")
                        head = conn.line()
                        body = conn.exact(len(SECRET) + 2) if head == b"VALUE secret 0 %d" % len(SECRET) else b""
                        end = conn.line() if body else b""
                        ok = body == SECRET + b"\r\n" and end == b"END"
                        seen = head + b"\r\n" + body + end
                    if ok:
                        victim["own"] += 1
                    else:
                        bucket = "errors" if seen.startswith((b"SERVER_ERROR", b"CLIENT_ERROR", b"ERROR")) \
                            else "foreign"
                        victim[bucket].append(short(seen, 120))
                        conn.close()
                        conn = None
                except (OSError, ConnectionError) as e:
                    victim["errors"].append(repr(e))
                    if conn:
                        conn.close()
                    conn = None
                i += 1
            if conn:
                conn.close()

        def run_attacker():
            conn = None
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = socket.create_connection(("127.0.0.1", port), timeout=0.5)
                    conn.sendall(attack)
                    got = b""
                    while not got.endswith(b"MN\r\n"):
                        chunk = conn.recv(65536)
                        if not chunk:
                            raise ConnectionError("closed")
                        got += chunk
                    attacker["bytes"] += len(got)
                    attacker["secret_seen"] += got.count(SECRET)
                    attacker["batches"] += 1
                except (OSError, ConnectionError):
                    attacker["timeouts"] += 1
                    if conn:
                        try:  # what arrived late still counts
                            conn.settimeout(0.05)
                            late = conn.recv(65536)
                            attacker["secret_seen"] += late.count(SECRET)
                        except OSError:
                            pass
                        conn.close()
                    conn = None
            if conn:
                conn.close()

        threads = [threading.Thread(target=run_victim, daemon=True), threading.Thread(target=run_attacker,
                                                                                      daemon=True)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(10)
        return victim, attacker

    def run_attack(self, name):
        attack = QUIET_ATTACKS[name]
        for port in (self.direct.port, self.sidecar.port):
            self.assertEqual(talk(port, b"set secret 0 0 %d\r\n%s\r\n" % (len(SECRET), SECRET)),
                             b"STORED\r\nMN\r\n")
        # Control: the same attack against memcached direct.
        d_victim, d_attacker = self.victim_and_attacker(self.direct.port, attack, self.SECONDS / 2)
        with MemberWatch(self.sidecar) as watch:
            victim, attacker = self.victim_and_attacker(self.sidecar.port, attack, self.SECONDS)
        health = watch.result()
        Figures.report(f"isolation_quiet_{name}", victim_own=victim["own"], victim_foreign=len(victim["foreign"]),
                       victim_errors=len(victim["errors"]), attacker_batches=attacker["batches"],
                       attacker_timeouts=attacker["timeouts"], secret_in_attacker_replies=attacker["secret_seen"],
                       direct_victim_own=d_victim["own"], direct_victim_wrong=len(d_victim["foreign"]) +
                       len(d_victim["errors"]), direct_secret_in_attacker=d_attacker["secret_seen"],
                       marked_down=health["marked_down_log"], down_samples=health["down_samples"],
                       backend_errors=health["backend_errors"])
        self.assertEqual(d_victim["foreign"] + d_victim["errors"], [], "control: memcached direct misbehaved")
        problems = []
        if attacker["secret_seen"]:
            problems.append(f"the attacker received the victim's value {attacker['secret_seen']} times")
        if victim["foreign"]:
            problems.append(f"the victim received {len(victim['foreign'])} replies that are not its value, e.g. "
                            f"{victim['foreign'][:4]}")
        if victim["errors"]:
            problems.append(f"the victim got {len(victim['errors'])} errors, e.g. {victim['errors'][:4]}")
        if victim["own"] < 20:
            problems.append(f"the victim read its value only {victim['own']} times in {self.SECONDS} s")
        problems += watch.problems()
        self.no_problems(problems, f"attack {attack!r} through the sidecar (direct: 0 wrong values)")

    def test_mg_quiet_variants_never_misdeliver(self):
        self.run_attack("mg")

    def test_ms_quiet_variants_never_misdeliver(self):
        self.run_attack("ms")

    def test_md_quiet_variants_never_misdeliver(self):
        self.run_attack("md")

    def test_quiet_variants_answer_like_memcached(self):
        """The attacker itself gets memcached's answer (the quiet flag applied by its first character), so a
        pipeline ending in `mn` is answered to the end, not left waiting."""
        problems = []
        for name, attack in QUIET_ATTACKS.items():
            want = exchange(self.direct.port, attack, until=b"MN\r\n", timeout=2.0)
            got = exchange(self.sidecar.port, attack, until=b"MN\r\n", timeout=2.0)
            if got != want:
                problems.append(f"{attack!r}: direct {want!r}, sidecar {got!r}")
        self.no_problems(problems)


# ---------------------------------------------------------------------------------------------------------------
# Item 2: long but complete lines
# ---------------------------------------------------------------------------------------------------------------

class LongLineTest(IsolationBase):
    """Finding 2: a complete line over memcached's 2,048-byte limit for non-get lines (sent as one write, so
    memcached's first read holds more than 2,048 bytes and no newline) must not reach the shared member connection
    (memcached would close it under every other client). Each attack is sent REPEAT times while two bystanders run;
    the sender's own outcome is compared with direct."""
    REPEAT = 3

    def attack(self, name, data, alternative=None, setup=b""):
        if setup:
            self.both(setup)
        want = exchange(self.direct.port, data, until=b"MN\r\n", timeout=3.0)
        members_before = [member_connections(m) for m in (self.primary, self.backup)]
        outcomes = []
        with MemberWatch(self.sidecar) as watch, Bystanders(self.sidecar.port) as bystanders:
            time.sleep(0.2)
            for _ in range(self.REPEAT):
                outcomes.append(exchange(self.sidecar.port, data, until=b"MN\r\n", timeout=3.0))
            time.sleep(0.3)
        members_after = [member_connections(m) for m in (self.primary, self.backup)]
        health = watch.result()
        bad = [o for o in outcomes if not same_as_direct(want, o, alternative)]
        Figures.report(f"isolation_long_line_{name}", request_bytes=len(data), direct_reply_bytes=len(want),
                       direct_closed=want.endswith(b"<closed>"),
                       sidecar_closed=sum(o.endswith(b"<closed>") for o in outcomes),
                       sender_mismatches=len(bad), bystander_ops=bystanders.ops,
                       bystander_errors=len(bystanders.errors), marked_down=health["marked_down_log"],
                       down_samples=health["down_samples"], backend_errors=health["backend_errors"],
                       member_connections_opened=[a - b for a, b in zip(members_after, members_before)])
        problems = []
        if bad:
            problems.append(f"the sender got {short(bad[0], 400)}; memcached direct: {short(want, 400)}"
                            + (f" (or the right values, {len(alternative)} bytes)" if alternative else ""))
        if bystanders.errors:
            problems.append(f"bystanders got {len(bystanders.errors)} errors, e.g. {bystanders.errors[:3]}")
        problems += watch.problems()
        self.no_problems(problems)

    def test_mg_with_20000_spaces(self):
        self.attack("mg_spaces", b"mg k v" + b" " * 20000 + b"\r\nmn\r\n")

    def test_set_with_a_long_line(self):
        self.attack("set_spaces", b"set longline 0 0 1" + b" " * 20000 + b"\r\nX\r\nmn\r\n")

    def test_mg_with_long_opaque(self):
        # A single 20 KB token rather than spaces.
        self.attack("mg_opaque", b"mg k v O" + b"o" * 20000 + b"\r\nmn\r\n")

    def values_for(self, keys):
        setup = b"".join(b"set %s 0 0 %d\r\nv%s\r\n" % (k.encode(), len(k) + 1, k.encode()) for k in keys)
        expected = b"".join(b"VALUE %s 0 %d\r\nv%s\r\n" % (k.encode(), len(k) + 1, k.encode()) for k in keys)
        return setup, expected + b"END\r\n"

    def test_gat_with_3000_short_keys(self):
        """12 KB line: memcached reads it whole and answers every key; the sidecar must give the same bytes."""
        keys = keys_of_width(3000, 3)
        setup, expected = self.values_for(keys)
        data = b"gat 0 " + " ".join(keys).encode() + b"\r\nmn\r\n"
        self.attack("gat_3000_short", data, setup=setup)

    def test_gat_with_3000_keys(self):
        """21 KB line: memcached closes this connection (no newline in its first 16 KB read, and only get/gets
        may be longer); the sidecar may close too, or answer the right values (what direct answers to `get`)."""
        keys = keys_of_width(3000, 6)
        setup, expected = self.values_for(keys)
        self.both(setup)
        direct_get = talk(self.direct.port, b"get " + " ".join(keys).encode() + b"\r\n")
        self.assertEqual(direct_get, expected + b"MN\r\n")
        data = b"gat 0 " + " ".join(keys).encode() + b"\r\nmn\r\n"
        self.attack("gat_3000", data, alternative=expected + b"MN\r\n")

    def test_get_with_3000_keys(self):
        keys = keys_of_width(3000, 6, prefix="getkey-")
        setup, expected = self.values_for(keys)
        data = b"get " + " ".join(keys).encode() + b"\r\nmn\r\n"
        self.attack("get_3000", data, setup=setup)


# ---------------------------------------------------------------------------------------------------------------
# Item 3: memory
# ---------------------------------------------------------------------------------------------------------------

BIG = 1_000_000


class MemoryTest(IsolationBase):
    """Finding 3: replies a client does not read must not be held. Each test: set `big` (1 MB), measure the
    bystanders' p99 undisturbed, then run the attack for ATTACK_S while sampling the sidecar's RSS every 20 ms and
    the bystanders' latency; the attackers then close without reading (RST)."""
    BASE_S = 1.2
    ATTACK_S = 2.5

    def setUp(self):
        super().setUp()
        self.limit_mb = float(os.environ.get("MEMHA_ISO_MAX_RSS_MB",
                                             "1024" if sanitized(self.sidecar.proc.pid) else "64"))
        self.both(b"set big 0 0 %d\r\n%s\r\n" % (BIG, b"B" * BIG))

    def run_memory_attack(self, name, payloads, direct_compare=False, churn=None):
        """`payloads`: one attacker connection each, sending and never reading for ATTACK_S, then RST. `churn`:
        (payload, close delays): every 0.2 s one more connection sends the payload and closes (RST) after the next
        delay, without reading anything."""
        pid = self.sidecar.proc.pid
        rss_start = proc_status(pid, "VmRSS")
        with Bystanders(self.sidecar.port, n=2) as bystanders, MemberWatch(self.sidecar) as watch:
            time.sleep(0.3)
            bystanders.measure(True)
            time.sleep(self.BASE_S)
            bystanders.measure(False)
            base = bystanders.take_latencies()
            base_errors = len(bystanders.errors)
            attackers = []
            for p in payloads:
                s = socket.create_connection(("127.0.0.1", self.sidecar.port), timeout=5)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                s.setblocking(False)
                attackers.append([s, p, 0])
            peak = 0.0
            bystanders.measure(True)
            cpu0 = cpu_seconds(pid)
            t0 = time.monotonic()
            churned = []  # [socket, close at]
            waves = 0
            next_wave = t0
            while time.monotonic() - t0 < self.ATTACK_S:
                now = time.monotonic()
                if churn and now >= next_wave:
                    c = socket.create_connection(("127.0.0.1", self.sidecar.port), timeout=5)
                    c.sendall(churn[0])
                    churned.append([c, now + churn[1][waves % len(churn[1])]])
                    waves += 1
                    next_wave = now + 0.2
                for c in [c for c in churned if c[1] <= now]:
                    c[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    c[0].close()
                    churned.remove(c)
                for a in attackers:  # send what the sidecar accepts, never read
                    if a[2] < len(a[1]):
                        try:
                            a[2] += a[0].send(a[1][a[2]:a[2] + 262144])
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            a[2] = len(a[1])
                peak = max(peak, proc_status(pid, "VmRSS"))
                time.sleep(0.01 if churn else 0.02)
            for c in churned:
                c[0].close()
            bystanders.measure(False)
            cpu_attack = cpu_seconds(pid) - cpu0
            hurt = bystanders.take_latencies()
            attack_errors = bystanders.errors[base_errors:]
            sent = sum(a[2] for a in attackers)
            for a in attackers:
                a[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                a[0].close()
            t1 = time.monotonic()
            while time.monotonic() - t1 < 0.5:  # the attackers' connections being torn down
                peak = max(peak, proc_status(pid, "VmRSS"))
                time.sleep(0.02)
        hwm = proc_status(pid, "VmHWM")
        after = proc_status(pid, "VmRSS")
        fresh = talk(self.sidecar.port, b"get big\r\n")
        fresh_ok = fresh == b"VALUE big 0 %d\r\n%s\r\nEND\r\nMN\r\n" % (BIG, b"B" * BIG)
        direct_hwm = None
        if direct_compare:
            direct_hwm = self.direct_figure(payloads)
        base_p99 = percentile(base, 99) * 1000
        hurt_p99 = percentile(hurt, 99) * 1000
        bound = LatencyBound.limit_ms(base_p99)
        health = watch.result()
        Figures.report(f"isolation_memory_{name}", attackers=len(payloads) + waves, request_bytes_sent=sent,
                       rss_start_mb=round(rss_start, 1), rss_peak_mb=round(peak, 1), vm_hwm_mb=round(hwm, 1),
                       rss_after_mb=round(after, 1), rss_limit_mb=self.limit_mb,
                       direct_memcached_hwm_mb=direct_hwm, base_p99_ms=round(base_p99, 2),
                       attack_p99_ms=round(hurt_p99, 2), p99_bound_ms=round(bound, 2), base_ops=len(base),
                       attack_ops=len(hurt), sidecar_cpu_s_during_attack=round(cpu_attack, 2),
                       bystander_errors=len(attack_errors) + base_errors,
                       marked_down=health["marked_down_log"], backend_errors=health["backend_errors"])
        problems = []
        if max(peak, hwm) > self.limit_mb:
            problems.append(f"sidecar RSS peaked at {max(peak, hwm):.0f} MB (limit {self.limit_mb:.0f} MB)")
        if attack_errors or base_errors:
            problems.append(f"bystanders got {len(attack_errors) + base_errors} errors, e.g. "
                            f"{(bystanders.errors)[:3]}")
        if len(hurt) < 20:
            problems.append(f"bystanders completed only {len(hurt)} requests in {self.ATTACK_S} s of attack")
        elif hurt_p99 > bound:
            problems.append(f"bystander p99 {hurt_p99:.1f} ms under attack, undisturbed {base_p99:.2f} ms "
                            f"(bound {bound:.1f} ms = max(2x, +{LatencyBound.FLOOR_MS:.0f} ms))")
        if not fresh_ok:
            problems.append(f"after the attack a fresh client's `get big` got {short(fresh, 200)}")
        problems += watch.problems()
        if problems:
            problems.append("sidecar log tail:\n" + self.sidecar.logs()[-1500:])
        self.no_problems(problems)

    def direct_figure(self, payloads):
        """The same attack against memcached direct, for comparison: its VmHWM after ATTACK_S / 2."""
        socks = []
        for p in payloads:
            s = socket.create_connection(("127.0.0.1", self.direct.port), timeout=5)
            s.setblocking(False)
            socks.append([s, p, 0])
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.ATTACK_S / 2:
            for a in socks:
                if a[2] < len(a[1]):
                    try:
                        a[2] += a[0].send(a[1][a[2]:a[2] + 262144])
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        a[2] = len(a[1])
            time.sleep(0.02)
        hwm = proc_status(self.direct.proc.pid, "VmHWM")
        for a in socks:
            a[0].close()
        return round(hwm, 1)

    def test_pipelined_gets_of_a_big_value_without_reading(self):
        self.run_memory_attack("pipelined_2000", [b"get big\r\n" * 2000], direct_compare=True)

    def test_one_line_with_1500_big_keys(self):
        self.run_memory_attack("one_line_1500", [b"get " + b"big " * 1499 + b"big\r\n"], direct_compare=True)

    def test_clients_closing_during_a_long_multiget(self):
        """A client sends one line of 1,500 `big` keys and goes away (RST) 10-100 ms later, before reading: what
        was fetched for it must be dropped, not the rest of the line fetched into memory."""
        self.run_memory_attack("close_during_multiget", [], churn=(b"get " + b"big " * 1499 + b"big\r\n",
                                                                    [0.01, 0.03, 0.1, 0.02, 0.05]))

    def test_many_attackers_at_once(self):
        payloads = [b"get big\r\n" * 250 for _ in range(8)] + \
                   [b"get " + b"big " * 249 + b"big\r\n" for _ in range(8)] + \
                   [b"mg big v\r\n" * 250 for _ in range(4)]
        self.run_memory_attack("many_attackers_20", payloads)


# ---------------------------------------------------------------------------------------------------------------
# Item 4: semantics that differ from memcached
# ---------------------------------------------------------------------------------------------------------------

class SemanticsTest(IsolationBase):
    def test_oversized_set_unlinks_the_old_value(self):
        """memcached refuses a value over the item size limit and unlinks the key: a later read misses. A proxy
        that refuses it locally and leaves the old value is a silent stale read."""
        data = b"set k 0 0 5\r\nhello\r\nset k 0 0 2000000\r\n" + b"z" * 2000000 + b"\r\nget k\r\n"
        want = talk(self.direct.port, data)
        got = talk(self.sidecar.port, data)
        self.assertEqual(want, b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\nMN\r\n")
        self.assertEqual(got, want, "through the sidecar the refused set left the old value readable")

    def test_oversized_meta_set_unlinks_the_old_value(self):
        data = b"ms mk 5\r\nhello\r\nms mk 2000000\r\n" + b"z" * 2000000 + b"\r\nmg mk v\r\n"
        want = talk(self.direct.port, data)
        got = talk(self.sidecar.port, data)
        self.assertEqual(want, b"HD\r\nSERVER_ERROR object too large for cache\r\nEN\r\nMN\r\n")
        self.assertEqual(got, want, "through the sidecar the refused ms left the old value readable")

    def test_oversized_set_leaves_no_old_value_on_the_backup(self):
        """After the refused set, the primary dies: the backup must not serve the value memcached unlinked."""
        data = b"set k 0 0 5\r\nhello\r\nset k 0 0 2000000\r\n" + b"z" * 2000000 + b"\r\n"
        self.assertEqual(talk(self.sidecar.port, data),
                         b"STORED\r\nSERVER_ERROR object too large for cache\r\nMN\r\n")
        time.sleep(0.3)  # async mirror
        self.primary.kill()
        got = talk(self.sidecar.port, b"get k\r\n")
        self.assertEqual(got, b"END\r\nMN\r\n",
                         "after failover the backup served the value the oversized set unlinked")

    def test_http_request_line_closes_and_smuggles_nothing(self):
        """memcached closes a connection whose unknown command's last token starts with HTTP/: a request line
        sent to a localhost cache (SSRF) cannot go on to a `set`."""
        data = b"POST / HTTP/1.1\r\nset smuggled 0 0 1\r\nX\r\nget smuggled\r\n"
        want = talk(self.direct.port, data)
        got = talk(self.sidecar.port, data)
        smuggled = talk(self.sidecar.port, b"get smuggled\r\n")
        Figures.report("isolation_http_smuggling", direct=want, sidecar=got, stored_through_sidecar=smuggled)
        self.assertEqual(want, b"<closed>")
        self.assertEqual(smuggled, b"END\r\nMN\r\n", "`set smuggled` after an HTTP request line was stored")
        self.assertEqual(got, want)

    def test_http_request_lines_of_other_shapes(self):
        """GET with headers (a browser or an SSRF'd fetch) and any method: the last token starting with HTTP/."""
        problems = []
        for data in (b"GET /?x HTTP/1.0\r\nHost: localhost\r\nset smug2 0 0 1\r\nX\r\n",
                     b"PUT /a/b HTTP/1.1\r\nset smug3 0 0 1\r\nX\r\n",
                     b"foo bar HTTP/2\r\nset smug4 0 0 1\r\nX\r\n"):
            want = talk(self.direct.port, data)
            got = talk(self.sidecar.port, data)
            if got != want:
                problems.append(f"{data!r}: direct {want!r}, sidecar {got!r}")
        stored = talk(self.sidecar.port, b"get smug2 smug3 smug4\r\n")
        if stored != b"END\r\nMN\r\n":
            problems.append(f"smuggled values readable: {stored!r}")
        self.no_problems(problems)

    def test_version_with_extra_tokens(self):
        """memcached answers `version` whatever follows it; tools use it as a sync point."""
        data = b"version x y\r\nversion 1\r\n"
        want = talk(self.direct.port, data)
        got = talk(self.sidecar.port, data)
        self.assertEqual(re.sub(rb"VERSION [^\r]*", b"VERSION #", want), b"VERSION #\r\nVERSION #\r\nMN\r\n")
        self.assertEqual(re.sub(rb"VERSION [^\r]*", b"VERSION #", got), b"VERSION #\r\nVERSION #\r\nMN\r\n",
                         f"direct {want!r}, sidecar {got!r}")


class FlushDisabledTest(IsolationBase):
    """Members run with -F (flush_all disabled), as direct does: the sidecar must not claim a flush that did not
    happen (a client that flushes to drop stale data would go on reading it)."""
    MEMBER_ARGS = ("-F",)

    CASES = (b"flush_all\r\nget f\r\n", b"flush_all 0\r\nget f\r\n", b"flush_all 10\r\nget f\r\n")

    def test_flush_all_refused_by_members_is_not_ok(self):
        self.both(b"set f 0 0 1\r\nX\r\n")
        self.assertTrue(talk(self.direct.port, b"flush_all\r\n").startswith(b"CLIENT_ERROR flush_all not allowed"))
        problems = []
        for data in self.CASES:
            got = talk(self.sidecar.port, data)
            if got.startswith(b"OK\r\n"):
                problems.append(f"{data!r} answered OK, but the members refused the flush and still serve the "
                                f"value: {got!r}")
            elif not got.endswith(b"VALUE f 0 1\r\nX\r\nEND\r\nMN\r\n"):
                problems.append(f"{data!r}: the value should still be there (nothing was flushed): {got!r}")
        Figures.report("isolation_flush_disabled", problems=len(problems))
        self.no_problems(problems)

    def test_flush_all_refused_by_members_answers_like_memcached(self):
        self.both(b"set f 0 0 1\r\nX\r\n")
        problems = []
        for data in self.CASES:
            want = talk(self.direct.port, data)
            got = talk(self.sidecar.port, data)
            if got != want:
                problems.append(f"{data!r}: direct {want!r}, sidecar {got!r}")
        self.no_problems(problems)


# ---------------------------------------------------------------------------------------------------------------
# Item 6: an unresolvable member hostname
# ---------------------------------------------------------------------------------------------------------------

class UnresolvableMemberTest(unittest.TestCase):
    """Finding 6: a DNS failure (or an immediate connect error) left the connection's deadline at
    time_point::min(), and CheckDeadlines computed now - min(): signed overflow (UBSan); the sanitizer build
    exits on the first request. With a backup, every request must be served from it."""

    def test_unresolvable_primary_is_served_from_the_backup(self):
        backup = Memcached()
        sidecar = Sidecar(primary=["nonexistent.invalid:11211"], backup=[backup.address])
        results = []
        try:
            IsolationBase.wait_serving(sidecar)
            for i in range(10):
                c = None
                try:
                    c = Client(sidecar.port, timeout=5)
                    results.append((c.set(f"u{i}", f"v{i}"), c.get(f"u{i}")))
                except (OSError, RuntimeError) as e:
                    results.append(("error", repr(e)))
                finally:
                    if c:
                        c.close()
                time.sleep(0.15)  # across the probe interval and the connect deadline
            alive = sidecar.proc.poll() is None
        finally:
            code = sidecar.stop()
            backup.stop()
        logs = sidecar.logs()
        reports = [line for line in logs.splitlines() if any(s in line for s in SANITIZER_MARKERS)]
        ok = sum(1 for i, r in enumerate(results) if r == (b"STORED", f"v{i}".encode()))
        Figures.report("isolation_unresolvable_member", served=ok, of=len(results), alive=alive, exit_code=code,
                       sanitizer_reports=len(reports))
        self.assertEqual(reports, [], "sanitizer report:\n" + "\n".join(reports[:5]) + "\n" + logs[-3000:])
        self.assertTrue(alive, f"the sidecar died; log:\n{logs[-3000:]}")
        self.assertEqual(ok, len(results), f"not served from the backup: {results}")
        self.assertEqual(code, 0)


if __name__ == "__main__":
    main()
