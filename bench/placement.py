#!/usr/bin/python3
"""The sidecar's cost where a sidecar runs (issue 14, docs/BENCHMARKS.md "Placement: the application's core"):
the client (memha-loadgen, standing for the application) and the proxy share core 0 — the application's node —
and memcached runs alone on core 1. Measured per target, in the same run, alternating rounds:

  direct      loadgen -> memcached (TCP)
  memha       loadgen -> memha-sidecar over TCP (127.0.0.1) -> memcached primary + backup
  memha-unix  loadgen -> memha-sidecar over its unix socket -> the same members
  twemproxy   loadgen -> nutcracker over TCP -> memcached

Reported: throughput and the application side's CPU per request (client + proxy utime+stime from /proc over the
round, divided by the requests), at 1 and 50 connections, 90/10 get/set, 100 B values. memcached's own CPU is on
the other core and not counted: it is the same work for every target (plus the backup's mirrors for memha).

  bench/placement.py [--rounds 5] [--seconds 3] [--out DIR] [--no-docs]
  env: MEMHA_SIDECAR, MEMHA_LOADGEN (default build-bench/, Release; built when missing)
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(REPO, "build-bench")
SIDECAR = os.environ.get("MEMHA_SIDECAR", os.path.join(BUILD, "memha-sidecar"))
LOADGEN = os.environ.get("MEMHA_LOADGEN", os.path.join(BUILD, "memha-loadgen"))
sys.path.insert(0, os.path.join(REPO, "tests/integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from docs_block import run_meta, write_block  # noqa: E402
from harness import free_port, wait_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
APP_CORE, SERVER_CORE = ("0", "1") if os.cpu_count() >= 2 else ("0", "0")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def spawn(cmd, core, log):
    user = ["-u", "nobody"] if os.geteuid() == 0 and os.path.basename(cmd[0]) == "memcached" else []
    return subprocess.Popen(["taskset", "-c", core] + cmd + user, stdout=log, stderr=subprocess.STDOUT)


class Servers:
    """One memcached (+ a backup for memha) on the server core, and the target's proxy on the app core."""

    def __init__(self, target, tmp):
        self.procs, self.proxy = [], None
        self.log = open(os.path.join(tmp, f"{target}.log"), "a")
        mc = lambda p: ["memcached", "-l", "127.0.0.1", "-p", str(p), "-U", "0", "-t", "1", "-m", "256", "-c", "4096"]
        self.primary = free_port()
        self.procs.append(spawn(mc(self.primary), SERVER_CORE, self.log))
        wait_port(self.primary)
        self.server = f"127.0.0.1:{self.primary}"
        if target.startswith("memha"):
            backup = free_port()
            self.procs.append(spawn(mc(backup), SERVER_CORE, self.log))
            wait_port(backup)
            port = free_port()
            sock = os.path.join(tmp, "memha.sock")
            self.proxy = spawn([SIDECAR, "-p", str(port), "-s", f"127.0.0.1:{self.primary}", "-b",
                                f"127.0.0.1:{backup}", "--no-admin", "--listen-unix", sock], APP_CORE, self.log)
            wait_port(port)
            self.server = f"unix:{sock}" if target == "memha-unix" else f"127.0.0.1:{port}"
        elif target == "twemproxy":
            port = free_port()
            conf = os.path.join(tmp, "nutcracker.yml")
            with open(conf, "w") as f:
                f.write(f"pool:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  timeout: 1000\n"
                        f"  preconnect: true\n  servers:\n   - 127.0.0.1:{self.primary}:1 p1\n")
            self.proxy = spawn(["nutcracker", "-c", conf, "-s", str(free_port()), "-o",
                                os.path.join(tmp, "nutcracker.log")], APP_CORE, self.log)
            wait_port(port)
            self.server = f"127.0.0.1:{port}"
        self.procs += [self.proxy] if self.proxy else []

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.log.close()


def run_round(servers, connections, seconds, tmp):
    out = os.path.join(tmp, "round.json")
    cmd = ["taskset", "-c", APP_CORE, LOADGEN, "--server", servers.server, "--connections", str(connections),
           "--duration", str(seconds), "--warmup", "0.5", "--keys", "10000", "--get-ratio", "0.9",
           "--value-size", "100", "--prefill", "--json", out]
    lg = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # CPU over the measured part only: from the end of prefill + warm-up to the end.
    time.sleep(1.0)
    proxy_start = cpu_seconds(servers.proxy.pid) if servers.proxy else 0.0
    client_start = cpu_seconds(lg.pid)
    t0 = time.monotonic()
    while lg.poll() is None:
        try:
            client_end = cpu_seconds(lg.pid)
            proxy_end = cpu_seconds(servers.proxy.pid) if servers.proxy else 0.0
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)
    wall = time.monotonic() - t0
    err = lg.communicate()[1]
    if lg.returncode != 0:
        raise RuntimeError(f"memha-loadgen failed: {err[-500:]}")
    with open(out) as f:
        result = json.load(f)["summary"]
    ops = result["ops_per_s"] * min(wall, seconds)  # requests in the CPU window (the tail of the run)
    return {"ops_per_s": result["ops_per_s"], "errors": result.get("errors", 0),
            "client_us": (client_end - client_start) / ops * 1e6, "proxy_us": (proxy_end - proxy_start) / ops * 1e6}


def markdown(summary, meta):
    lines = [f"Run {meta['date']}, {meta['nproc']} cores: client and proxy on core {APP_CORE}, memcached alone on core "
             f"{SERVER_CORE}; memha-sidecar `{meta['sidecar_commit']}`, {meta['rounds']} rounds x {meta['seconds']} s "
             f"per target, alternating; medians. Load average at the end {meta['loadavg_end']}.", "",
             "| connections | target | ops/s | x direct | app-side CPU per request (client + proxy) | proxy alone |",
             "|---|---|---|---|---|---|"]
    for conns in sorted({s["connections"] for s in summary}):
        rows = [s for s in summary if s["connections"] == conns]
        direct = next(r for r in rows if r["target"] == "direct")
        for r in rows:
            lines.append(f"| {conns} | {r['target']} | {r['ops_per_s']:,.0f} | {r['ops_per_s'] / direct['ops_per_s']:.2f}x | "
                         f"{r['client_us'] + r['proxy_us']:.2f} us | {r['proxy_us']:.2f} us |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--connections", default="1 50")
    ap.add_argument("--targets", default="direct memha memha-unix twemproxy")
    ap.add_argument("--out", default=os.path.join(REPO, "bench/results/placement"))
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    missing = [t for t, p in (("memha-sidecar", SIDECAR), ("memha-loadgen", LOADGEN)) if not os.path.exists(p)]
    if missing:
        subprocess.run(["cmake", "-S", REPO, "-B", BUILD, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["ninja", "-C", BUILD, "-j2"] + missing, check=True, stdout=subprocess.DEVNULL)
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="memha-placement-")
    rounds = {}
    try:
        for conns in map(int, args.connections.split()):
            for r in range(args.rounds):
                for target in args.targets.split():
                    servers = Servers(target, tmp)
                    try:
                        res = run_round(servers, conns, args.seconds, tmp)
                    finally:
                        servers.stop()
                    rounds.setdefault((conns, target), []).append(res)
                    print(f"c{conns} round {r + 1} {target}: {res['ops_per_s']:,.0f} ops/s "
                          f"client {res['client_us']:.2f} us proxy {res['proxy_us']:.2f} us", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = []
    for (conns, target), rs in rounds.items():
        summary.append({"connections": conns, "target": target,
                        "ops_per_s": statistics.median(r["ops_per_s"] for r in rs),
                        "client_us": statistics.median(r["client_us"] for r in rs),
                        "proxy_us": statistics.median(r["proxy_us"] for r in rs),
                        "errors": sum(r["errors"] for r in rs), "rounds": rs})
    meta = run_meta(rounds=args.rounds, seconds=args.seconds)
    with open(os.path.join(args.out, "placement.json"), "w") as f:
        json.dump({"meta": meta, "summary": summary}, f, indent=1)
    table = markdown(summary, meta)
    print(table)
    if not args.no_docs:
        write_block("placement", "bench/placement.py", table)


if __name__ == "__main__":
    main()
