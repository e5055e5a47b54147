#!/usr/bin/python3
"""Traffic generator for scripts/demo.sh.

A read-through cache client (pymemcache) against the memha sidecar: a fixed key space, ~90% gets (a miss is
filled with a set of the key's deterministic value), ~10% sets, at a bounded rate. Prints one line per second
(phase, ops, errors, hit ratio, the sidecar's view of the primary from /metrics) and a summary at the end.

The phase label is driven by demo.sh through --phase-file: a new label takes effect at the next one-second
boundary, when it is written to --ack-file (demo.sh waits for that before acting). The label "done" ends the
run. Exit status: 0 pass, 1 client errors or a post-restart hit ratio below --min-hit.
"""

import argparse
import os
import random
import re
import sys
import threading
import time
import urllib.request

from pymemcache.client.base import Client

STATE_NAMES = {0: "down", 1: "up", 2: "warming", 3: "replaying"}
SUMMARY_METRICS = ("memha_failovers_total", "memha_warmup_total", "memha_missed_writes_total", "memha_replay_total")
PHASE_NOTES = {
    "warm-up": "cold start, the cache fills from empty",
    "outage": "primary killed, reads served by the backup",
    "restarted": "primary back empty, misses filled from the backup",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True, help="sidecar listen port on 127.0.0.1")
    p.add_argument("--admin-port", type=int, required=True, help="sidecar admin HTTP port on 127.0.0.1")
    p.add_argument("--primary", required=True, help="primary member address as in memha_member_state{address=...}")
    p.add_argument("--phase-file", required=True)
    p.add_argument("--ack-file", required=True)
    p.add_argument("--keys", type=int, default=2000)
    p.add_argument("--rate", type=int, default=2000, help="ops per second (upper bound)")
    p.add_argument("--set-ratio", type=float, default=0.10)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--min-hit", type=float, default=90.0, help="least acceptable hit ratio %% after the restart")
    p.add_argument("--check-phase", default="restarted", help="phase whose hit ratio is checked against --min-hit")
    return p.parse_args()


class Stats:
    def __init__(self):
        self.ops = self.errors = self.gets = self.hits = 0
        self.max_latency = 0.0

    def add(self, other):
        self.ops += other.ops
        self.errors += other.errors
        self.gets += other.gets
        self.hits += other.hits
        self.max_latency = max(self.max_latency, other.max_latency)

    def hit_pct(self):
        return 100.0 * self.hits / self.gets if self.gets else float("nan")


def fetch_metrics(admin_port, timeout=0.5):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


class PrimaryWatcher(threading.Thread):
    """Polls /metrics every 100 ms; remembers each distinct primary state seen since the last take()."""

    def __init__(self, admin_port, primary):
        super().__init__(daemon=True)
        self.admin_port = admin_port
        self.pattern = re.compile(r'^memha_member_state\{[^}]*address="' + re.escape(primary) + r'"[^}]*\}\s+(\S+)',
                                  re.M)
        self.lock = threading.Lock()
        self.last = "?"
        self.seen = []

    def run(self):
        while True:
            try:
                m = self.pattern.search(fetch_metrics(self.admin_port))
                state = STATE_NAMES.get(int(float(m.group(1))), m.group(1)) if m else "absent"
            except Exception:
                state = "no-metrics"
            with self.lock:
                self.last = state
                if not self.seen or self.seen[-1] != state:
                    self.seen.append(state)
            time.sleep(0.1)

    def take(self):
        with self.lock:
            seen, self.seen = self.seen or [self.last], [self.last]
        return ">".join(seen)


def read_phase(path):
    try:
        with open(path) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def main():
    a = parse_args()
    rng = random.Random(42)
    keys = [f"demo:{i:05d}" for i in range(a.keys)]
    values = {k: (k + ":").encode().ljust(a.value_size, b"x") for k in keys}
    client = Client(("127.0.0.1", a.port), connect_timeout=1.0, timeout=1.0, no_delay=True)

    watcher = PrimaryWatcher(a.admin_port, a.primary)
    watcher.start()

    phase = read_phase(a.phase_file) or "warm-up"
    with open(a.ack_file, "w") as f:
        f.write(phase + "\n")
    totals = {}          # phase -> Stats, in order of appearance
    seconds = {}         # phase -> [Stats of each one-second interval]
    error_samples = []   # first few errors, for the summary
    start = time.monotonic()
    interval, interval_start = Stats(), start
    tokens, last_refill = 0.0, start
    next_phase_check = start
    pending = None

    print(f"{'time':>5}  {'phase':<10} {'ops':>5} {'errors':>6} {'hit%':>6} {'max ms':>7}  primary (sidecar's view)",
          flush=True)

    def close_interval(now):
        nonlocal interval, interval_start
        totals.setdefault(phase, Stats()).add(interval)
        seconds.setdefault(phase, []).append(interval)
        hit = interval.hit_pct()
        hit_s = f"{hit:5.1f}%" if interval.gets else "    - "
        print(f"{round(now - start):4d}s  {phase:<10} {interval.ops:5d} {interval.errors:6d} {hit_s:>6} "
              f"{interval.max_latency * 1000:7.1f}  {watcher.take()}", flush=True)
        interval = Stats()
        interval_start = interval_start + 1.0 if now - interval_start < 2.0 else now  # no drift, unless stalled

    def op(fn, *args):
        t0 = time.monotonic()
        try:
            return True, fn(*args)
        except Exception as e:  # any exception is an error the application would have seen
            interval.errors += 1
            if len(error_samples) < 10:
                error_samples.append(f"{t0 - start:6.2f}s [{phase}] {fn.__name__}: {type(e).__name__}: {e}")
            client.close()
            return False, None
        finally:
            interval.ops += 1
            interval.max_latency = max(interval.max_latency, time.monotonic() - t0)

    while True:
        now = time.monotonic()
        if now >= next_phase_check:
            next_phase_check = now + 0.02
            new_phase = read_phase(a.phase_file)
            pending = new_phase if new_phase and new_phase != phase else None
        if now - interval_start >= 1.0:
            close_interval(now)
            if pending == "done":
                break
            if pending:
                phase, pending = pending, None
                with open(a.ack_file, "w") as f:
                    f.write(phase + "\n")

        # Token bucket: at most --rate ops per second, bursts of at most 20 ops.
        tokens = min(20.0, tokens + (now - last_refill) * a.rate)
        last_refill = now
        if tokens < 1.0:
            time.sleep(0.002)
            continue
        tokens -= 1.0

        key = rng.choice(keys)
        if rng.random() < a.set_ratio:
            op(client.set, key, values[key])
            continue
        ok, got = op(client.get, key)
        if not ok:
            continue
        interval.gets += 1
        if got is None:
            tokens -= 1.0  # the fill counts against the rate too
            op(client.set, key, values[key])  # read-through fill
        elif got != values[key]:
            interval.errors += 1
            if len(error_samples) < 10:
                error_samples.append(f"{now - start:6.2f}s [{phase}] get {key}: wrong value {got[:40]!r}")
        else:
            interval.hits += 1

    total = Stats()
    for s in totals.values():
        total.add(s)
    print("\n== summary ==")
    print(f"  duration {time.monotonic() - start:.1f}s, total ops {total.ops}, client errors {total.errors}, "
          f"max latency {total.max_latency * 1000:.1f} ms")
    print(f"  {'hit ratio':<12} {'whole phase':>11} {'last 2 s':>9} {'gets':>7} {'errors':>6}")
    for name, s in totals.items():
        last = Stats()
        for x in seconds[name][-2:]:
            last.add(x)
        print(f"    {name:<10} {s.hit_pct():10.1f}% {last.hit_pct():8.1f}% {s.gets:7d} {s.errors:6d}"
              f"   {PHASE_NOTES.get(name, '')}")
    if error_samples:
        print("  first client errors:")
        for e in error_samples:
            print("    " + e)
    print("  sidecar metrics:")
    try:
        text = fetch_metrics(a.admin_port, timeout=2)
        for family in SUMMARY_METRICS:
            lines = [l for l in text.splitlines() if l.startswith(family + "{") or l.startswith(family + " ")]
            nonzero = [l for l in lines if float(l.rsplit(None, 1)[1]) != 0]
            for l in sorted(nonzero or lines):
                print("    " + l)
    except Exception as e:
        print(f"    (could not read /metrics: {e})")

    failures = []
    if total.errors:
        failures.append(f"{total.errors} client errors")
    checked = totals.get(a.check_phase)
    if checked is None or checked.gets == 0:
        failures.append(f"no reads in phase {a.check_phase!r}")
    elif checked.hit_pct() < a.min_hit:
        failures.append(f"hit ratio {checked.hit_pct():.1f}% in phase {a.check_phase!r} is below {a.min_hit:g}%")
    for f in failures:
        print(f"  FAIL: {f}")
    sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
