#!/usr/bin/python3
"""Issue 10's first three reproductions as chaos scenarios, memha against twemproxy in the same run
(docs/BENCHMARKS.md "Replication reproductions"; the fourth, a backup back empty, is bench/chaos.sh backup-empty).

Each (target, scenario) runs on fresh processes: two primary memcached (ketama over both) and, for memha, one backup
memcached and memha-sidecar(s); for twemproxy, Debian's nutcracker (ketama, md5, auto_eject_hosts). Then primary 1
gets `kill -9` and stays dead, and every key is read back through the proxy:

  order:   pipelined `add k old; set k new`, `add d old; delete d`, `replace r mid; set r new`,
           `append a mid; set a new` over 200 keys each (finding 1: the backup was left with `old` on 600 of 600);
  repair:  40 clients each pipeline 1,000 sets over keys holding `old` (finding 2: 29,000 keys kept `old` on the
           backup); memha runs with --mirror-queue-limit 100, so Python clients overflow its window of mirrors in
           flight (default 10,000) and the repair path is what is measured;
  warmup-delete: primary 1 restarts empty; through one proxy a deleter deletes 3,000 keys one by one while
           readers read them through another (memha: a second sidecar, i.e. a second app pod; twemproxy: a second
           nutcracker) (finding 3: 440 of 3,000 acknowledged deletes came back).

Reported per run: client errors, stale reads (a value older than the last acknowledged write), resurrected (a
deleted key read back), and the hit ratio after the kill over the keys that should exist.

  bench/chaos_repro.py [--out DIR] [--no-docs] [--scenarios "order repair warmup-delete"] [--targets "memha twemproxy"]
  env: MEMHA_SIDECAR (default build-bench/memha-sidecar, Release)
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("MEMHA_SIDECAR", os.path.join(REPO, "build-bench/memha-sidecar"))
sys.path.insert(0, os.path.join(REPO, "tests/integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from docs_block import run_meta, write_block  # noqa: E402
from harness import Client, Memcached, Sidecar, free_port, wait_port  # noqa: E402


class Nutcracker:
    def __init__(self, servers, tmp):
        self.port = free_port()
        conf = os.path.join(tmp, f"nutcracker-{self.port}.yml")
        with open(conf, "w") as f:
            f.write(f"pool:\n  listen: 127.0.0.1:{self.port}\n  hash: md5\n  distribution: ketama\n  timeout: 1000\n"
                    "  preconnect: true\n  auto_eject_hosts: true\n  server_retry_timeout: 2000\n"
                    "  server_failure_limit: 1\n  servers:\n")
            for i, s in enumerate(servers):
                f.write(f"   - {s}:1 p{i + 1}\n")
        self.proc = subprocess.Popen(["nutcracker", "-c", conf, "-s", str(free_port()), "-o",
                                      os.path.join(tmp, f"nutcracker-{self.port}.log")])
        wait_port(self.port)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        return 0


class Setup:
    """Two primaries (+ a backup and `proxies` sidecars for memha, `proxies` nutcrackers for twemproxy)."""

    def __init__(self, target, tmp, proxies=1, extra=()):
        self.target = target
        self.primaries, self.backup, self.proxies = [], None, []
        try:
            self.primaries = [Memcached(extra=["-m", "256"]) for _ in range(2)]
            self.backup = Memcached(extra=["-m", "256"]) if target == "memha" else None
            servers = [m.address for m in self.primaries]
            for _ in range(proxies):
                self.proxies.append(Sidecar(primary=servers, backup=[self.backup.address], extra=list(extra))
                                    if target == "memha" else Nutcracker(servers, tmp))
        except BaseException:
            self.stop()  # nothing started is left running
            raise

    def port(self, i=0):
        return self.proxies[i].port

    def settle(self, timeout=30.0):
        """memha: until no mirror is in flight or waiting for repair. twemproxy has none."""
        if self.target != "memha":
            return 0.0
        start = time.time()
        while time.time() - start < timeout:
            busy = sum((s.metric("memha_mirror_queue_depth") or 0) + (s.metric("memha_mirror_repair_queue") or 0)
                       for s in self.proxies)
            if busy == 0:
                return time.time() - start
            time.sleep(0.05)
        return timeout

    def kill_primary(self):
        self.primaries[0].kill()

    def stop(self):
        for p in self.proxies:
            p.stop()
        for m in self.primaries + ([self.backup] if self.backup else []):
            m.stop()


def read_back(port, keys, passes=2):
    """key -> value or None through the proxy, after a failover; the first pass lets twemproxy eject the dead
    member (its errors are not counted), the last one is returned with its errors."""
    out, errors = {}, 0
    for _ in range(passes):
        out, errors = {}, 0
        c = Client(port, timeout=5)
        for i in range(0, len(keys), 100):
            chunk = keys[i:i + 100]
            try:
                c.send("get " + " ".join(chunk) + "\r\n")
                while True:
                    line = c.line()
                    if line == b"END":
                        break
                    if not line.startswith(b"VALUE "):
                        errors += len(chunk)
                        break
                    _, key, _, n = line.split()[:4]
                    out[key.decode()] = c.exact(int(n) + 2)[:-2]
            except (OSError, ConnectionError):
                errors += len(chunk)
                c.close()
                c = Client(port, timeout=5)
        c.close()
        time.sleep(0.5)
    return {k: out.get(k) for k in keys}, errors


def score(got, want, errors):
    """want: key -> bytes or None (deleted)."""
    stale = sum(1 for k, v in got.items() if v is not None and want[k] is not None and v != want[k])
    resurrected = sum(1 for k, v in got.items() if v is not None and want[k] is None)
    live = [k for k in want if want[k] is not None]
    hits = sum(1 for k in live if got[k] == want[k])
    return {"read_errors": errors, "stale": stale, "resurrected": resurrected,
            "hits_after_kill": f"{hits / len(live):.4f}" if live else None, "keys": len(want)}


def scenario_order(s):
    n = 200
    c = Client(s.port(), timeout=30)
    for i in range(n):  # replace/append need an existing key
        c.send(b"set r%d 0 0 3 noreply\r\nold\r\nset a%d 0 0 3 noreply\r\nold\r\n" % (i, i))
    c.send(b"get r0\r\n")
    while c.line() != b"END":
        pass
    batch = b""
    for i in range(n):
        batch += b"add s%d 0 0 3\r\nold\r\nset s%d 0 0 3\r\nnew\r\n" % (i, i)
        batch += b"add d%d 0 0 3\r\nold\r\ndelete d%d\r\n" % (i, i)
        batch += b"replace r%d 0 0 3\r\nmid\r\nset r%d 0 0 3\r\nnew\r\n" % (i, i)
        batch += b"append a%d 0 0 3\r\nmid\r\nset a%d 0 0 3\r\nnew\r\n" % (i, i)
    c.send(batch)
    replies = [c.line() for _ in range(8 * n)]
    errors = sum(1 for r in replies if r not in (b"STORED", b"DELETED"))
    c.close()
    settled = s.settle()
    want = {}
    for i in range(n):
        want.update({f"s{i}": b"new", f"d{i}": None, f"r{i}": b"new", f"a{i}": b"new"})
    s.kill_primary()
    time.sleep(1)
    got, read_errors = read_back(s.port(), list(want))
    return dict(score(got, want, read_errors), write_errors=errors, settle_s=round(settled, 2))


def scenario_repair(s):
    clients, per = 40, 1000
    keys = [f"r{c}:{i}" for c in range(clients) for i in range(per)]
    c = Client(s.port(), timeout=60)
    c.send(b"".join(b"set %s 0 0 3 noreply\r\nold\r\n" % k.encode() for k in keys) + b"get r0:0\r\n")
    while c.line() != b"END":
        pass
    c.close()
    s.settle()
    errors = []

    def client(cid):
        cl = Client(s.port(), timeout=60)
        try:
            mine = keys[cid * per:(cid + 1) * per]
            cl.send(b"".join(b"set %s 0 0 3\r\nnew\r\n" % k.encode() for k in mine))
            errors.extend(1 for _ in mine if cl.line() != b"STORED")
        except (OSError, ConnectionError):
            errors.append(per)
        finally:
            cl.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    settled = s.settle()
    extra = {}
    if s.target == "memha":
        extra = {"deferred_to_repair": int(s.proxies[0].metric("memha_mirror_writes_total", result="deferred") or 0),
                 "repaired": int(s.proxies[0].metric("memha_mirror_repairs_total") or 0)}
    s.kill_primary()
    time.sleep(1)
    got, read_errors = read_back(s.port(), keys)
    return dict(score(got, {k: b"new" for k in keys}, read_errors), write_errors=sum(errors),
                settle_s=round(settled, 2), **extra)


def scenario_warmup_delete(s):
    n = 3000
    keys = [f"w{i}" for i in range(n)]
    c = Client(s.port(0), timeout=30)
    c.send(b"".join(b"set %s 0 0 5 noreply\r\nvalue\r\n" % k.encode() for k in keys) + b"get w0\r\n")
    while c.line() != b"END":
        pass
    c.close()
    s.settle()
    for i in range(len(s.proxies)):  # every proxy has served traffic: each sees the primary go away
        r = Client(s.port(i))
        r.get(keys[0])
        r.close()
    port = s.primaries[0].port
    s.primaries[0].kill()
    s.primaries[0] = Memcached(port=port, extra=["-m", "256"])  # back empty, same address
    if s.target == "memha":  # every sidecar has seen it go and come back: warming (state 2)
        address = s.primaries[0].address
        deadline = time.time() + 10
        while time.time() < deadline and any(p.metric("memha_member_state", address=address) != 2
                                             for p in s.proxies):
            time.sleep(0.05)
    else:
        time.sleep(2.5)  # twemproxy: the retry timeout (2 s) runs out
    acked, reads, stop, at, ahead = {}, [], threading.Event(), [0], set()
    read_errors = [0]

    def reader(seed):
        r = Client(s.port(1), timeout=10)
        rnd = random.Random(seed)
        while not stop.is_set():
            i = at[0]
            # Keys the deleter is about to delete (the race), and two anywhere: those well ahead of it (not
            # deleted yet for a while) tell the hit ratio during warm-up.
            sample = [keys[j] for j in range(i, min(i + 3, n))] + rnd.sample(keys, 2)
            ahead.update(k for k in sample[-2:] if int(k[1:]) >= i + 50)
            sent = time.monotonic()
            try:
                r.send("get " + " ".join(sample) + "\r\n")
                hit = set()
                while True:
                    line = r.line()
                    if line == b"END":
                        break
                    if not line.startswith(b"VALUE "):
                        read_errors[0] += 1
                        break
                    hit.add(line.split()[1].decode())
                    r.exact(int(line.split()[3]) + 2)
                reads.extend((sent, k, k in hit) for k in sample)
            except (OSError, ConnectionError):
                read_errors[0] += 1
                r.close()
                r = Client(s.port(1), timeout=10)
        r.close()

    readers = [threading.Thread(target=reader, args=(seed,)) for seed in range(3)]
    for t in readers:
        t.start()
    d = Client(s.port(0), timeout=10)
    write_errors = 0
    for i, k in enumerate(keys):
        at[0] = i
        reply = d.cmd(f"delete {k}")
        if reply in (b"DELETED", b"NOT_FOUND"):
            acked[k] = time.monotonic()
        else:
            write_errors += 1
    stop.set()
    for t in readers:
        t.join()
    d.close()
    s.settle()
    after_ack = sum(1 for sent, k, hit in reads if hit and k in acked and sent > acked[k])
    # Reads of keys well ahead of the deleter when sent (a key can be read ahead and later at the deleter's
    # position: only reads sent before its delete was acknowledged, and not in the last 50, count).
    before = [(k, hit) for sent, k, hit in reads if k in ahead and (k not in acked or sent < acked[k] - 0.05)]
    s.kill_primary()
    time.sleep(1)
    got, errors = read_back(s.port(0), keys)
    result = score(got, {k: None for k in keys}, errors)
    result.update(write_errors=write_errors, reads_during=len(reads), read_errors_during=read_errors[0],
                  hit_after_delete_ack=after_ack,
                  hits_during_warmup=f"{sum(h for _, h in before) / len(before):.4f}" if before else None)
    result["hits_after_kill"] = None  # every key was deleted: only "resurrected" counts after the kill
    return result


SCENARIOS = {"order": (scenario_order, 1, ()), "repair": (scenario_repair, 1, ("--mirror-queue-limit", "100")),
             "warmup-delete": (scenario_warmup_delete, 2, ())}


def markdown(results, meta):
    lines = [f"Run {meta['date']} on {meta['nproc']} cores, memha-sidecar `{meta['sidecar_commit']}`, "
             f"load average at the end {meta['loadavg_end']}. Primary 1 of 2 gets `kill -9` after the workload and "
             "stays dead; every key is then read back through the proxy (second pass counted).", "",
             "| scenario | target | write errors | stale | resurrected | hits after the kill | other |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        other = ", ".join(f"{k} {v}" for k, v in r.items()
                          if k not in ("scenario", "target", "write_errors", "stale", "resurrected", "hits_after_kill",
                                       "keys", "read_errors"))
        hits = r["hits_after_kill"]
        hits = f"{float(hits) * 100:.1f}%" if hits is not None else "(all deleted)"
        lines.append(f"| {r['scenario']} | {r['target']} | {r['write_errors']} | {r['stale']} | {r['resurrected']} | "
                     f"{hits} | read errors {r['read_errors']}, {other} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "bench/results/chaos_repro"))
    ap.add_argument("--scenarios", default="order repair warmup-delete")
    ap.add_argument("--targets", default="memha twemproxy")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(os.environ["MEMHA_SIDECAR"]):
        subprocess.run(["cmake", "-S", REPO, "-B", os.path.join(REPO, "build-bench"), "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=Release"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["ninja", "-C", os.path.join(REPO, "build-bench"), "memha-sidecar"], check=True,
                       stdout=subprocess.DEVNULL)
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="memha-repro-")
    results = []
    for name in args.scenarios.split():
        fn, proxies, extra = SCENARIOS[name]
        for target in args.targets.split():
            s = Setup(target, tmp, proxies, extra if target == "memha" else ())
            try:
                r = fn(s)
            finally:
                s.stop()
            r = {"scenario": name, "target": target, **r}
            print(json.dumps(r), file=sys.stderr)
            results.append(r)
    shutil.rmtree(tmp, ignore_errors=True)
    meta = run_meta()
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    table = markdown(results, meta)
    print(table)
    if not args.no_docs:
        write_block("repro", "bench/chaos_repro.py", table)


if __name__ == "__main__":
    main()
