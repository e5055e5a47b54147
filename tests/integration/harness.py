"""Test harness: real memcached processes and memha-sidecar on free loopback ports; everything started is stopped."""
import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

SIDECAR = os.environ.get("MEMHA_SIDECAR", os.path.join(os.path.dirname(__file__), "../../build/sidecar/memha-sidecar"))
MEMCACHED = os.environ.get("MEMCACHED", "memcached")


class PushSigner:
    """Signs pushes as the controller does (common/crypto/push_signature.cc; Debian's python3-cryptography): the
    sidecar accepts no other. Timestamps only grow, so every push from one signer is newer than the last."""

    def __init__(self, pod="test/sidecar", uid="uid-test"):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        self.key = Ed25519PrivateKey.generate()
        self.pod, self.uid = pod, uid
        self.public = base64.b64encode(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
        self.last = 0

    def args(self):
        return ["--push-public-key", self.public, "--pod", self.pod, "--pod-uid", self.uid]

    def headers(self, body, reset=False):
        ts = max(int(time.time() * 1000), self.last + 1)
        self.last = ts
        body = body.encode() if isinstance(body, str) else (body or b"")
        message = f"memha-push-v1\n{self.pod}\n{self.uid}\n{ts}\n{1 if reset else 0}\n".encode() + body
        return {"X-Memha-Pod": self.pod, "X-Memha-Pod-Uid": self.uid, "X-Memha-Timestamp": str(ts),
                "X-Memha-Reset": "1" if reset else "0",
                "X-Memha-Signature": base64.b64encode(self.key.sign(message)).decode()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def sanitized(pid):
    """Whether a process runs a sanitizer build (its RSS then means little)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read()
        return any(s in maps for s in ("libasan", "libubsan", "libtsan"))
    except OSError:
        return False


class Memcached:
    def __init__(self, port=None, extra=()):
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None
        self.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        cmd = [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-t", "1", "-m", "64"] + self.extra
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.kill()

    def freeze(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)


class Sidecar:
    def __init__(self, primary=(), backup=(), config=None, signed=False, extra=(), port=None, state_file=None):
        """signed: the sidecar takes pushes signed by self.signer (http(..., sign=True)); True or a PushSigner."""
        self.tmp = tempfile.mkdtemp(prefix="memha-test-")
        self.log_path = os.path.join(self.tmp, "sidecar.log")
        self.signer = signed if isinstance(signed, PushSigner) else (PushSigner() if signed else None)
        if config is not None:
            self.config_path = os.path.join(self.tmp, "topology.json")
            with open(self.config_path, "w") as f:
                json.dump(config, f)
        # A port from free_port() can be taken before the sidecar binds it (as another connection's ephemeral
        # port, under a parallel test run): then the sidecar exits, and it is started again on new ports.
        for attempt in range(3):
            self.port = port or free_port()
            self.admin_port = free_port()
            cmd = [SIDECAR, "--admin-port", str(self.admin_port)]
            if primary:
                cmd += ["-p", str(self.port), "-s", ",".join(primary)]
                if backup:
                    cmd += ["-b", ",".join(backup)]
            if config is not None:
                cmd += ["--config", self.config_path]
            if self.signer:
                cmd += self.signer.args()
            if state_file:
                cmd += ["--state-file", state_file]
            cmd += list(extra)
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
            exited = self._wait_ready(cmd)
            if exited is None:
                return
            if attempt < 2 and "in use" in exited:
                self.log.close()
                continue
            raise RuntimeError(exited)

    def _wait_ready(self, cmd):
        """None once every port it was given answers (the admin port, and the health port, bound just after it, so
        a test must not race it); else why not: the exit and the log's tail."""
        ports = [self.admin_port]
        if "--health-port" in cmd:
            ports.append(int(cmd[cmd.index("--health-port") + 1]))
        for p in ports:
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                    break
                except OSError:
                    if self.proc.poll() is not None:
                        return (f"memha-sidecar exited with {self.proc.returncode} before listening on {p}: "
                                f"{self.logs()[-1500:]}")
                    if time.time() > deadline:
                        return f"nothing listening on 127.0.0.1:{p} after 10s: {self.logs()[-1500:]}"
                    time.sleep(0.02)
        return None

    def http(self, method, path, body=None, sign=False):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method,
                                     data=body.encode() if isinstance(body, str) else body)
        if sign:
            for name, value in self.signer.headers(body).items():
                req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name, **labels):
        _, text = self.http("GET", "/metrics")
        total = 0.0
        found = False
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, value = line.rsplit(" ", 1)
            if head != name and not head.startswith(name + "{"):
                continue
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
                found = True
        return total if found else None

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Client:
    """A raw memcached text-protocol client, so tests see exactly the bytes a client would."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by peer")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def get(self, key):
        """Returns the value (bytes), None for a miss; raises on an error reply."""
        self.send(f"get {key}\r\n")
        line = self.line()
        if line == b"END":
            return None
        if not line.startswith(b"VALUE "):
            raise RuntimeError(line.decode(errors="replace"))
        n = int(line.split()[3])
        value = self.exact(n + 2)[:-2]
        if self.line() != b"END":
            raise RuntimeError("missing END")
        return value

    def set(self, key, value, exptime=0, flags=0):
        value = value if isinstance(value, bytes) else value.encode()
        self.send(f"set {key} {flags} {exptime} {len(value)}\r\n".encode() + value + b"\r\n")
        return self.line()

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.line()

    def read_all(self, idle=0.3):
        """Everything the server sends until it is quiet for `idle` seconds (or closes)."""
        self.sock.settimeout(idle)
        out = self.buf
        self.buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    out += b"<closed>"
                    break
                out += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:  # closed with our unread input still queued: a close, as the client sees it
            out += b"<closed>"
        return out

    def close(self):
        self.sock.close()


def topology(epoch, version, pools):
    return {"epoch": epoch, "version": version, "pools": pools}


def pool(name, listen, primary, backup=(), **kw):
    p = {"name": name, "listen": listen,
         "primary": [{"name": n, "address": a, "state": s} for (n, a, s) in primary],
         "backup": [{"name": n, "address": a, "state": s} for (n, a, s) in backup]}
    p.update(kw)
    return p


class Figures:
    """Figures printed in a test's output so a reader sees what was measured, not only pass/fail."""

    @staticmethod
    def report(name, **values):
        print(f"FIGURES {name}: " + " ".join(f"{k}={v}" for k, v in values.items()), flush=True)


def main():
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    raise SystemExit(1 if failed or result.testsRun == 0 else 0)
