"""The sidecar's unix socket listener (issue 14; docs/ARCHITECTURE.md "Unix socket"): `--listen-unix PATH` in static
mode and `listen_unix` per pool in the topology. What a user relies on:

- clients speak to it exactly as over TCP; the socket file is a socket with mode 0666, and it is removed at exit;
- a socket file left by a process that died is replaced; a socket another process listens on, or a file that is
  not a socket, is refused with a clear error, and nothing is deleted;
- a topology reload that moves or drops the socket removes the old file;
- real client libraries (Debian's pymemcache, pylibmc, Cache::Memcached::Fast, php-memcached) get over the
  sidecar's socket exactly what they get over memcached's own unix socket (`memcached -s`).
"""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

import pylibmc
from pymemcache.client.base import Client as PyClient

from harness import MEMCACHED, SIDECAR, Memcached, Sidecar, main, pool, topology


class UnixClient:
    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def cmd(self, data, end=b"\r\n"):
        self.sock.sendall(data)
        while not self.buf.endswith(end):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out

    def close(self):
        self.sock.close()


def once(path, data, end=b"\r\n"):
    c = UnixClient(path)
    try:
        return c.cmd(data, end)
    finally:
        c.close()


def wait_path(path, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{path} never appeared")


class UnixSocketTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="memha-unix-")
        self.primary, self.backup = Memcached(), Memcached()

    def tearDown(self):
        self.primary.stop()
        self.backup.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_static_flag_serves_and_cleans_up(self):
        path = os.path.join(self.tmp, "memha.sock")
        s = Sidecar(primary=[self.primary.address], backup=[self.backup.address], extra=["--listen-unix", path])
        try:
            wait_path(path)
            mode = os.stat(path).st_mode
            self.assertTrue(stat.S_ISSOCK(mode))
            self.assertEqual(stat.S_IMODE(mode), 0o666)
            c = UnixClient(path)
            self.assertEqual(c.cmd(b"set k 0 0 5\r\nhello\r\n"), b"STORED\r\n")
            self.assertEqual(c.cmd(b"get k\r\n", b"END\r\n"), b"VALUE k 0 5\r\nhello\r\nEND\r\n")
            self.assertEqual(c.cmd(b"mg k v c\r\n", b"hello\r\n").split(b" ")[0], b"VA")
            self.assertEqual(c.cmd(b"mn\r\n"), b"MN\r\n")
            # The same pool over TCP, and the mirror on the backup.
            tcp = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            tcp.sendall(b"get k\r\n")
            time.sleep(0.2)
            self.assertEqual(tcp.recv(1000), b"VALUE k 0 5\r\nhello\r\nEND\r\n")
            tcp.close()
            self.assertIn(f"listening on unix socket {path}", s.logs())
            c.close()
        finally:
            code = s.stop()
        self.assertEqual(code, 0)
        self.assertFalse(os.path.exists(path), "the socket file is removed at exit")

    def test_stale_file_is_replaced_and_others_are_refused(self):
        path = os.path.join(self.tmp, "memha.sock")
        # A socket file whose process is gone (bound, never listened, closed).
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(path)
        dead.close()
        s = Sidecar(primary=[self.primary.address], extra=["--listen-unix", path])
        try:
            c = UnixClient(path)
            self.assertEqual(c.cmd(b"mn\r\n"), b"MN\r\n")
            c.close()
            # A second sidecar on the same path: the first one's socket is live; refused, and left alone.
            r = subprocess.run([SIDECAR, "--no-admin", "-p", str(_free_port()), "-s", self.primary.address, "--listen-unix", path],
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("another process is listening on it", r.stdout + r.stderr)
            c = UnixClient(path)
            self.assertEqual(c.cmd(b"mn\r\n"), b"MN\r\n", "the first sidecar's socket still works")
            c.close()
        finally:
            self.assertEqual(s.stop(), 0)
        regular = os.path.join(self.tmp, "not-a-socket")
        with open(regular, "w") as f:
            f.write("data")
        r = subprocess.run([SIDECAR, "--no-admin", "-p", str(_free_port()), "-s", self.primary.address, "--listen-unix", regular],
                           capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists and is not a socket", r.stdout + r.stderr)
        with open(regular) as f:
            self.assertEqual(f.read(), "data", "a file that is not a socket is never deleted")
        for bad, why in (("relative.sock", "must be an absolute path"), ("/" + "x" * 120, "longer than 107 bytes")):
            r = subprocess.run([SIDECAR, "--no-admin", "-p", str(_free_port()), "-s", self.primary.address, "--listen-unix", bad],
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn(why, r.stdout + r.stderr)

    def test_topology_reload_moves_and_removes_the_socket(self):
        a, b = os.path.join(self.tmp, "a.sock"), os.path.join(self.tmp, "b.sock")
        members = [("m0", self.primary.address, "up")]

        def config(version, path):
            kw = {"listen_unix": path} if path else {}
            return topology(1, version, [pool("cache", f"127.0.0.1:{port}", members, **kw)])

        port = _free_port()
        s = Sidecar(config=config(1, a))
        try:
            wait_path(a)
            self.assertEqual(once(a, b"mn\r\n"), b"MN\r\n")
            for version, path, gone in ((2, b, a), (3, None, b)):
                with open(s.config_path, "w") as f:
                    json.dump(config(version, path), f)
                s.proc.send_signal(signal.SIGHUP)
                deadline = time.time() + 5
                while time.time() < deadline and json.loads(s.http("GET", "/v1/topology")[1])["version"] != version:
                    time.sleep(0.05)
                if path:
                    wait_path(path)
                    self.assertEqual(once(path, b"mn\r\n"), b"MN\r\n")
                self.assertFalse(os.path.exists(gone), f"{gone} removed when version {version} dropped it")
        finally:
            self.assertEqual(s.stop(), 0)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pymemcache_suite(path):
    c = PyClient(path, default_noreply=False)
    out = [c.set("a", b"1"), c.get("a"), c.get_many(["a", "nope"]), c.set_many({"b": b"2", "c": b"3"}),
           sorted(c.get_many(["a", "b", "c", "nope"]).items())]
    value, cas = c.gets("a")
    out += [value, c.cas("a", b"10", cas), c.cas("a", b"11", cas), c.get("a"), c.incr("n", 1), c.set("n", b"5"),
            c.incr("n", 10), c.decr("n", 100), c.add("a", b"x"), c.replace("zz", b"x"), c.append("a", b"+"),
            c.prepend("a", b"-"), c.get("a"), c.touch("a", 100), c.delete("a"), c.delete("a"), c.get("a"),
            c.get("k" * 250)]
    c.close()
    return out


def pylibmc_suite(path):
    c = pylibmc.Client([path], behaviors={"cas": True})
    out = [c.set("a", "1"), c.get("a"), c.set_multi({"b": "2", "c": "3"}),
           sorted(c.get_multi(["a", "b", "c", "nope"]).items())]
    value, cas = c.gets("a")
    out += [value, c.cas("a", "10", cas), c.get("a")]
    c.set("n", 5)
    out += [c.incr("n", 10), c.decr("n", 100), c.add("a", "x"), c.append("a", "+"), c.get("a"), c.delete("a"),
            c.delete("a"), c.get("a"), c.delete_multi(["b", "c"]), c.get_multi(["b", "c"])]
    return out


PERL = r"""
use strict; use warnings; use Cache::Memcached::Fast;
my $m = Cache::Memcached::Fast->new({servers => [$ARGV[0]], namespace => ''});
my @o;
push @o, $m->set('a', '1') ? 1 : 0;
push @o, $m->get('a') // 'undef';
push @o, $m->add('a', 'x') ? 1 : 0;
push @o, $m->set_multi(['b', '2'], ['c', '3']) ? 'multi' : 'nomulti';
my $h = $m->get_multi('a', 'b', 'c', 'nope');
push @o, join(',', map { "$_=$h->{$_}" } sort keys %$h);
my $g = $m->gets('a');
push @o, $m->cas('a', $$g[0], '10') ? 1 : 0;
push @o, $m->cas('a', $$g[0], '11') ? 1 : 0;
push @o, $m->get('a');
push @o, $m->set('n', 5) ? 1 : 0;
push @o, $m->incr('n', 10);
push @o, $m->decr('n', 100);
push @o, $m->append('a', '+') ? 1 : 0;
push @o, $m->prepend('a', '-') ? 1 : 0;
push @o, $m->get('a');
push @o, $m->touch('a', 100) ? 1 : 0;
push @o, $m->delete('a') ? 1 : 0;
push @o, $m->delete('a') ? 1 : 0;
push @o, $m->get('a') // 'undef';
print join("\n", @o), "\n";
"""

PHP = r"""
$m = new Memcached();
$m->addServer($argv[1], 0);
$o = [];
$o[] = var_export($m->set('a', '1'), true);
$o[] = var_export($m->get('a'), true);
$o[] = var_export($m->add('a', 'x'), true);
$o[] = $m->getResultCode();
$o[] = var_export($m->setMulti(['b' => '2', 'c' => '3']), true);
$r = $m->getMulti(['a', 'b', 'c', 'nope']); ksort($r);
$o[] = json_encode($r);
$g = $m->get('a', null, Memcached::GET_EXTENDED);
$o[] = var_export($m->cas($g['cas'], 'a', '10'), true);
$o[] = var_export($m->cas($g['cas'], 'a', '11'), true);
$o[] = var_export($m->get('a'), true);
$m->set('n', 5);
$o[] = var_export($m->increment('n', 10), true);
$o[] = var_export($m->decrement('n', 100), true);
$o[] = var_export($m->delete('a'), true);
$o[] = var_export($m->delete('a'), true);
$o[] = $m->getResultCode();
$o[] = var_export($m->get('a'), true);
echo implode("\n", $o), "\n";
"""


def perl_suite(path):
    return subprocess.run(["perl", "-e", PERL, path], capture_output=True, text=True, timeout=30, check=True).stdout


def php_suite(path):
    return subprocess.run(["php", "-r", PHP, path], capture_output=True, text=True, timeout=30, check=True).stdout


class UnixRealClientsTest(unittest.TestCase):
    def test_same_results_as_memcached_over_its_own_unix_socket(self):
        tmp = tempfile.mkdtemp(prefix="memha-unix-clients-")
        direct_path, sidecar_path = os.path.join(tmp, "memcached.sock"), os.path.join(tmp, "memha.sock")
        primary, backup = Memcached(), Memcached()
        s = Sidecar(primary=[primary.address], backup=[backup.address], extra=["--listen-unix", sidecar_path])
        cmd = [MEMCACHED, "-s", direct_path, "-a", "0666", "-U", "0", "-t", "1", "-m", "64"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
            os.chmod(tmp, 0o777)  # memcached drops to nobody before it creates its socket
        direct = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_path(direct_path)
            wait_path(sidecar_path)
            # What the second result must be, the set value read back: a suite that reached no server would
            # otherwise agree with itself.
            read_back = {pymemcache_suite: lambda r: r[1] == b"1", pylibmc_suite: lambda r: r[1] == "1",
                         perl_suite: lambda r: r.splitlines()[1] == "1", php_suite: lambda r: r.splitlines()[1] == "'1'"}
            for suite in (pymemcache_suite, pylibmc_suite, perl_suite, php_suite):
                want = suite(direct_path)
                self.assertTrue(read_back[suite](want), f"{suite.__name__} against memcached: {want!r}")
                once(direct_path, b"flush_all\r\n")
                got = suite(sidecar_path)
                self.assertEqual(got, want, suite.__name__)
                once(sidecar_path, b"flush_all\r\n")
                n = len(want) if isinstance(want, list) else len(want.splitlines())
                print(f"FIGURES unix_{suite.__name__}: {n} results identical", flush=True)
        finally:
            direct.terminate()
            direct.wait(10)
            self.assertEqual(s.stop(), 0)
            primary.stop()
            backup.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
