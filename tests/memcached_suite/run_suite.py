#!/usr/bin/env python3
"""Runs memcached's own test suite (t/*.t from the Debian source package) through memha-sidecar.

Each in-scope test runs with its client connected to a memha-sidecar that fronts a real primary and a real
backup memcached, both started with the test's own arguments (lib/MemhaSuite.pm does that, loaded before the
test; memcached's files are used unchanged). --mode direct runs the same tests against memcached alone (the
baseline). See docs/MEMCACHED_SUITE.md.

  tests/memcached_suite/run_suite.py                      # sidecar mode, every test in in_scope.txt
  tests/memcached_suite/run_suite.py --mode direct        # baseline: memcached alone
  tests/memcached_suite/run_suite.py --mode both cas.t    # both modes, one test
  tests/memcached_suite/run_suite.py -v metaget.t         # every failing subtest with got/expected

The source comes from `apt-get source memcached` (a deb-src entry is added if the machine has none) into
~/.cache/memha/src (MEMHA_CACHE overrides ~/.cache/memha); nothing of memcached's is kept in the repository.
Exit status: 0 if every selected test passed in every selected mode, 1 otherwise, 2 on a setup error.
"""

import argparse
import concurrent.futures
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

DEB_SRC_FILE = "/etc/apt/sources.list.d/memha-src.sources"


class SetupError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def run_cmd(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------------------------------------------------
# memcached's source: Debian source package into the cache, fetched once.

def memcached_version(memcached):
    out = subprocess.run([memcached, "-V"], capture_output=True, text=True, check=True).stdout
    m = re.match(r"memcached (\S+)", out)
    if not m:
        raise SetupError(f"{memcached} -V printed {out!r}; expected 'memcached X.Y.Z'")
    return m.group(1)


def os_codename():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "bookworm"


def have_deb_src():
    """True if apt already has a deb-src entry (one-line or deb822 format)."""
    paths = ["/etc/apt/sources.list"]
    d = "/etc/apt/sources.list.d"
    if os.path.isdir(d):
        paths += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith((".list", ".sources"))]
    for p in paths:
        try:
            with open(p) as f:
                for line in f:
                    s = line.strip()
                    if s.startswith("deb-src ") or re.match(r"Types:.*\bdeb-src\b", s):
                        return True
        except OSError:
            continue
    return False


def ensure_source(cache, memcached, allow_fetch):
    version = memcached_version(memcached)
    src_root = os.path.join(cache, "src")
    src = os.path.join(src_root, f"memcached-{version}")
    if os.path.isfile(os.path.join(src, "t", "lib", "MemcachedTest.pm")):
        return src, version
    if not allow_fetch:
        raise SetupError(f"{src} is missing and --no-fetch was given")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if not shutil.which("apt-get"):
        raise SetupError("apt-get not found: memcached's source comes from Debian's source package")
    if not shutil.which("dpkg-source"):
        raise SetupError("dpkg-source not found: install dpkg-dev (build-essential pulls it in)")
    log(f"memcached-suite: fetching memcached {version} source (apt-get source) into {src_root}")
    if not have_deb_src():
        codename = os_codename()
        log(f"memcached-suite: adding a deb-src entry for {codename} in {DEB_SRC_FILE}")
        entry = ("Types: deb-src\nURIs: http://deb.debian.org/debian\n"
                 f"Suites: {codename} {codename}-updates\nComponents: main\n"
                 "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
        run_cmd(sudo + ["tee", DEB_SRC_FILE], input=entry.encode(), stdout=subprocess.DEVNULL)
    run_cmd(sudo + ["apt-get", "update", "-qq"])
    os.makedirs(src_root, exist_ok=True)
    # The source of the installed binary if the archive still has it, else the current one.
    src_version = subprocess.run(["dpkg-query", "-W", "-f=${source:Version}", "memcached"],
                                 capture_output=True, text=True).stdout.strip()
    attempts = ([f"memcached={src_version}"] if src_version else []) + ["memcached"]
    for spec in attempts:
        r = subprocess.run(["apt-get", "source", "-qq", spec], cwd=src_root)
        if r.returncode == 0:
            break
    if not os.path.isfile(os.path.join(src, "t", "lib", "MemcachedTest.pm")):
        found = sorted(n for n in os.listdir(src_root) if n.startswith("memcached-"))
        raise SetupError(f"apt-get source did not produce {src} (found: {found}); the installed memcached "
                         f"is {version}")
    return src, version


# ---------------------------------------------------------------------------------------------------------
# Test lists.

def read_list(path):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line.split()[0])
    return names


def read_out_of_scope(path):
    out = {}
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            name, _, reason = s.partition(" ")
            out[name] = reason.strip()
    return out


# ---------------------------------------------------------------------------------------------------------
# Running one test.

MEMCACHED_WRAPPER = """#!/bin/sh
# memcached's MemcachedTest.pm starts ./memcached-debug with "-o relaxed_privileges", an option only debug
# builds know; a release memcached refuses to start with it. Drop that pair, run the real binary.
i=0
n=$#
while [ "$i" -lt "$n" ]; do
  a=$1; shift; i=$((i + 1))
  if [ "$a" = "-o" ] && [ "$1" = "relaxed_privileges" ]; then shift; i=$((i + 1)); continue; fi
  set -- "$@" "$a"
done
exec @MEMCACHED@ "$@"
"""

TIMEDRUN = """#!/bin/sh
# Stand-in for memcached's timedrun helper (not built here): `timedrun SECONDS CMD ARGS...`. The runner bounds
# each test with its own timeout and stops its process group afterwards.
shift
exec "$@"
"""


def make_workdir(src, memcached):
    """memcached's MemcachedTest.pm takes getcwd() as its build dir: it wants ./memcached-debug, ./timedrun
    and ./t there. A scratch directory provides them (two small scripts, a symlink), so the cached source tree is never touched."""
    work = tempfile.mkdtemp(prefix="memha-mcsuite.")
    real = os.path.realpath(shutil.which(memcached) or memcached)
    for name, text in (("memcached-debug", MEMCACHED_WRAPPER.replace("@MEMCACHED@", shlex.quote(real))),
                       ("timedrun", TIMEDRUN)):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(work, name), 0o755)
    os.symlink(os.path.join(src, "t"), os.path.join(work, "t"))
    os.makedirs(os.path.join(work, "logs"))
    return work


class Result:
    def __init__(self, name, mode):
        self.name, self.mode = name, mode
        self.passed = False
        self.status = ""          # PASS, FAIL, SKIP, TIMEOUT
        self.planned = None
        self.ran = 0
        self.failed = []          # (number, description, [diagnostic lines])
        self.seconds = 0.0
        self.exit_code = None
        self.skip_reason = ""
        self.output_file = ""
        self.tail = []
        self.sanitizer = []       # (sidecar log, first line of the report)
        self.timeout_reason = ""
        self.warnings = []        # (sidecar log name, warn/error line)


TAP_LINE = re.compile(r"^(not ok|ok)\s+(\d+)\s*(?:-\s*)?(.*)$")


def parse_tap(res, text):
    current = None
    for line in text.splitlines():
        m = TAP_LINE.match(line)
        if m:
            res.ran += 1
            todo = "# TODO" in m.group(3)
            if m.group(1) == "not ok" and not todo:
                current = (int(m.group(2)), m.group(3), [])
                res.failed.append(current)
            else:
                current = None
            continue
        m = re.match(r"^1\.\.(\d+)(?:\s+#\s*(?:skip|SKIP)\s*(.*))?", line)
        if m:
            res.planned = int(m.group(1))
            if res.planned == 0:
                res.skip_reason = (m.group(2) or "skipped").strip()
            continue
        if current is not None and line.startswith("#"):
            current[2].append(line)


def group_members(pgid):
    """Live (non-zombie) processes of a process group, from /proc."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(d))
    return pids


def stop_group(p):
    """Stops what the test left running (its own process group): the test's handles already sent SIGINT to their
    sidecars and members; give them time to drain and exit (so sanitizer reports at exit are written), then
    SIGTERM, then SIGKILL."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    for sig, grace in ((None, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        if sig is not None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not group_members(p.pid):
                return
            time.sleep(0.05)


SANITIZER = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error: ")


def scan_sidecar_logs(logdir, prefix):
    """Sidecar logs of one test: sanitizer reports (ASan/UBSan/TSan builds; they fail the test) and the
    sidecar's own warnings and errors (a member marked down, say; printed, they do not fail the test)."""
    bad, warnings = [], []
    for n in sorted(os.listdir(logdir)):
        if n.startswith(prefix + ".sidecar") and n.endswith(".log"):
            with open(os.path.join(logdir, n), "rb") as f:
                text = f.read().decode("utf-8", "replace")
            m = SANITIZER.search(text)
            if m:
                line = text[m.start():].splitlines()[0]
                bad.append((os.path.join(logdir, n), line))
            for line in text.splitlines():
                if " level=warn " in line or " level=error " in line:
                    warnings.append((n, line.split(" ", 1)[-1]))
    return bad, warnings


def run_test(name, mode, work, args):
    res = Result(name, mode)
    env = dict(os.environ)
    env.update({
        "MEMHA_SUITE_MODE": mode,
        "MEMHA_SUITE_TLIB": os.path.join(work, "t", "lib"),
        "MEMHA_SUITE_LOGDIR": os.path.join(work, "logs"),
        "MEMHA_SUITE_TEST": f"{mode}.{name}",
        "MEMHA_SIDECAR": args.sidecar or "",
    })
    env.pop("T_MEMD_USE_DAEMON", None)
    env.pop("SSL_TEST", None)
    cmd = ["perl", "-I", os.path.join(HERE, "lib"), "-MMemhaSuite", os.path.join("t", name)]
    res.output_file = os.path.join(work, "logs", f"{mode}.{name}.out")
    start = time.monotonic()
    with open(res.output_file, "wb") as out:
        # Own session: the test, its members and its sidecars form one process group, stopped as a whole below.
        p = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
        # Bounded by --timeout, by the run's --budget, and by --idle: a test that prints nothing for that long
        # is waiting for a reply that will not come (memcached's tests read with blocking <$sock>).
        limit = min(args.timeout, max(1.0, args.deadline - time.monotonic()))
        last_size, last_change = -1, start
        try:
            while True:
                try:
                    res.exit_code = p.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                size = os.fstat(out.fileno()).st_size
                if size != last_size:
                    last_size, last_change = size, now
                if now - start > limit:
                    res.status, res.timeout_reason = "TIMEOUT", f"still running after {limit:.0f} s"
                    break
                if now - last_change > args.idle:
                    res.status = "TIMEOUT"
                    res.timeout_reason = (f"no output for {args.idle:.0f} s (blocked reading a reply that did "
                                          "not come?)")
                    break
        finally:
            stop_group(p)
    res.seconds = time.monotonic() - start
    with open(res.output_file, "rb") as f:
        text = f.read().decode("utf-8", "backslashreplace")
    parse_tap(res, text)
    res.tail = text.splitlines()[-15:]
    res.sanitizer, res.warnings = scan_sidecar_logs(os.path.join(work, "logs"), f"{mode}.{name}")
    if res.status == "TIMEOUT":
        return res
    if res.sanitizer:
        res.status = "FAIL"
        return res
    if res.planned == 0 and res.exit_code == 0:
        res.status, res.passed = "SKIP", True
    elif res.exit_code == 0 and not res.failed and (res.planned is None or res.planned == res.ran):
        res.status, res.passed = "PASS", True
    else:
        res.status = "FAIL"
    return res


def describe(res, verbose):
    """The lines printed for one test."""
    head = f"{res.status:<7} {res.mode:<7} {res.name:<22}"
    if res.status == "SKIP":
        return [f"{head} skipped: {res.skip_reason}  ({res.seconds:.1f} s)"]
    ok = res.ran - len(res.failed)
    planned = res.planned if res.planned is not None else "?"
    line = f"{head} {ok}/{planned} subtests ok  ({res.seconds:.1f} s)"
    if res.status == "TIMEOUT":
        line += f"  TIMED OUT: {res.timeout_reason}"
    elif res.status == "FAIL" and not res.failed:
        line += f"  exit {res.exit_code}"
        if res.planned is not None and res.ran != res.planned:
            line += f", ran {res.ran} of {res.planned}"
    lines = [line]
    if res.warnings:
        shown = res.warnings if verbose else res.warnings[:3]
        lines.append(f"        sidecar logged {len(res.warnings)} warnings/errors:")
        lines += [f"          {n}: {w}" for n, w in shown]
        if len(shown) < len(res.warnings):
            lines.append(f"          ... ({len(res.warnings) - len(shown)} more; -v shows all)")
    if res.passed:
        return lines
    for log_file, first in res.sanitizer:
        lines.append(f"        sanitizer report in {log_file}: {first}")
    limit = None if verbose else 8
    for i, (num, desc, diag) in enumerate(res.failed):
        if limit is not None and i >= limit:
            lines.append(f"        ... and {len(res.failed) - limit} more failing subtests (-v shows all; "
                         f"full output: {res.output_file})")
            break
        lines.append(f"        not ok {num} - {desc}")
        diag_lines = [d for d in diag if not d.startswith("#   Failed test") and not d.startswith("#   at ")]
        for d in diag_lines[: None if verbose else 6]:
            lines.append(f"            {d}")
    if not res.failed or res.status == "TIMEOUT" or (res.planned is not None and res.ran != res.planned):
        lines.append(f"        last lines of {res.output_file}:")
        lines += [f"          | {t}" for t in res.tail]
    return lines


# ---------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tests", nargs="*", help="test files (e.g. cas.t); default: every test in --list")
    ap.add_argument("--mode", choices=["sidecar", "direct", "both"], default="sidecar")
    ap.add_argument("--sidecar", default=os.environ.get("MEMHA_SIDECAR") or
                    os.path.join(ROOT, "build", "sidecar", "memha-sidecar"),
                    help="memha-sidecar binary (default $MEMHA_SIDECAR, else build/sidecar/memha-sidecar)")
    ap.add_argument("--memcached", default=os.environ.get("MEMCACHED", "memcached"),
                    help="memcached binary for the members (default $MEMCACHED, else memcached in PATH)")
    ap.add_argument("--cache", default=os.environ.get("MEMHA_CACHE", os.path.expanduser("~/.cache/memha")))
    ap.add_argument("--list", default=os.path.join(HERE, "in_scope.txt"))
    ap.add_argument("--out-of-scope", default=os.path.join(HERE, "out_of_scope.txt"))
    ap.add_argument("--no-fetch", action="store_true", help="fail instead of fetching a missing source")
    ap.add_argument("--jobs", "-j", type=int, default=int(os.environ.get("MEMHA_SUITE_JOBS", "2")),
                    help="tests run at the same time (default 2)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per test (default 300)")
    ap.add_argument("--idle", type=float, default=60,
                    help="stop a test that printed nothing for this many seconds (default 60)")
    ap.add_argument("--budget", type=float, default=float(os.environ.get("MEMHA_SUITE_BUDGET", "780")),
                    help="seconds for the whole run, so a hanging sidecar still yields a summary inside "
                         "CTest's 900 s (default 780)")
    ap.add_argument("--no-recheck", action="store_true",
                    help="sidecar mode: do not rerun a failing test direct to tell a setup problem apart")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory with all outputs and logs")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failing subtest in full")
    args = ap.parse_args()

    try:
        if not shutil.which(args.memcached) and not os.access(args.memcached, os.X_OK):
            raise SetupError(f"memcached binary {args.memcached!r} not found (scripts/install-deps.sh)")
        if not shutil.which("perl"):
            raise SetupError("perl not found")
        modes = ["direct", "sidecar"] if args.mode == "both" else [args.mode]
        if "sidecar" in modes:
            args.sidecar = os.path.abspath(args.sidecar)
            if not os.access(args.sidecar, os.X_OK):
                raise SetupError(f"memha-sidecar not found at {args.sidecar} (build it, or set MEMHA_SIDECAR)")
        src, version = ensure_source(args.cache, args.memcached, not args.no_fetch)
    except (SetupError, subprocess.CalledProcessError, OSError) as e:
        print(f"memcached-suite: setup failed: {e}", file=sys.stderr)
        return 2

    in_scope = read_list(args.list)
    out_scope = read_out_of_scope(args.out_of_scope)
    available = sorted(n for n in os.listdir(os.path.join(src, "t")) if n.endswith(".t"))
    unlisted = [n for n in available if n not in in_scope and n not in out_scope]
    both = [n for n in in_scope if n in out_scope]
    missing = [n for n in in_scope if n not in available]
    if unlisted:
        log(f"memcached-suite: WARNING: tests in neither list (classify them): {' '.join(unlisted)}")
    if both or missing:
        print(f"memcached-suite: list error: in both lists: {both}; in scope but not in {src}/t: {missing}",
              file=sys.stderr)
        return 2
    tests = args.tests or in_scope
    for t in tests:
        if t not in available:
            print(f"memcached-suite: no such test {t} in {src}/t", file=sys.stderr)
            return 2

    work = make_workdir(src, args.memcached)
    log(f"memcached-suite: memcached {version} tests from {src}/t; members: "
        f"{os.path.realpath(shutil.which(args.memcached) or args.memcached)}")
    if "sidecar" in modes:
        ver = subprocess.run([args.sidecar, "--version"], capture_output=True, text=True).stdout.strip()
        log(f"memcached-suite: sidecar: {args.sidecar} ({ver}) "
            f"{os.environ.get('MEMHA_SUITE_SIDECAR_ARGS', '')}".rstrip())
    log(f"memcached-suite: {len(tests)} tests, mode {args.mode}, {args.jobs} at a time; scratch {work}")

    results = {}
    print_lock = threading.Lock()

    def one(name, mode):
        res = run_test(name, mode, work, args)
        with print_lock:
            for line in describe(res, args.verbose):
                log(line)
        return res

    start = time.monotonic()
    args.deadline = start + args.budget
    for mode in modes:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futs = {pool.submit(one, n, mode): n for n in tests}
            for f in concurrent.futures.as_completed(futs):
                results[(futs[f], mode)] = f.result()

    # A test failing through the sidecar is rerun direct (unless that ran already): a direct failure too means
    # the machine or the test, not memha.
    rechecks = {}
    if args.mode == "sidecar" and not args.no_recheck:
        failing = [n for n in tests if not results[(n, "sidecar")].passed]
        if failing:
            log(f"memcached-suite: rerunning the {len(failing)} failing tests direct (memcached alone) ...")
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                futs = {pool.submit(run_test, n, "direct", work, args): n for n in failing}
                for f in concurrent.futures.as_completed(futs):
                    rechecks[futs[f]] = f.result()

    log("")
    log(f"memcached-suite: summary ({time.monotonic() - start:.0f} s)")
    passed = failed = 0
    for mode in modes:
        for n in tests:
            r = results[(n, mode)]
            note = ""
            if n in rechecks:
                d = rechecks[n]
                note = ("   (passes direct: a memha difference)" if d.passed
                        else f"   (fails direct too: {d.ran - len(d.failed)}/{d.planned} ok; setup or test)")
            log(f"  {r.status:<7} {mode:<7} {n:<22} {r.ran - len(r.failed)}/{r.planned if r.planned is not None else '?'}"
                f"{note}")
            if r.passed:
                passed += 1
            else:
                failed += 1
    if args.keep or failed:
        log(f"memcached-suite: outputs and sidecar logs kept in {work}/logs")
    else:
        shutil.rmtree(work, ignore_errors=True)
    log(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
