#!/usr/bin/env bash
# Instructions per operation of memha-sidecar and nutcracker under valgrind --tool=callgrind: unlike ops/s and CPU
# time, instruction counts do not move with the load of a shared machine, so they show whether a change of the data
# path made it cheaper. Each proxy runs under callgrind in front of real memcached processes; for each workload
# the counters are zeroed (callgrind_control -z), memha-loadgen runs a closed loop, the counters are dumped
# (callgrind_control -d) and divided by the operations completed. Also writes the top functions of memha.
#
#   bench/profile.sh [--out DIR] [--duration S] [--no-docs]
#   env: MEMHA_SIDECAR, MEMHA_LOADGEN, MEMHA_SIDECAR_REV (bench/lib.sh; default: build-bench/, Release)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="" duration=4 docs=1
while (($#)); do
  case $1 in
    --out) out=$2; shift ;;
    --duration) duration=$2; shift ;;
    --no-docs) docs=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-$repo/bench/results/profile}
rm -rf "$out"; mkdir -p "$out"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_binaries "$repo"
for t in valgrind callgrind_control callgrind_annotate; do
  command -v $t >/dev/null || { echo "profile.sh: needs $t (apt-get install valgrind)" >&2; exit 1; }
done
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "profile.sh: nothing listens on $1" >&2; return 1
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

MC=$(port); BK=$(port)
memcached "${user[@]}" -l 127.0.0.1 -p "$MC" -U 0 -t 1 -m 256 & pids+=($!)
memcached "${user[@]}" -l 127.0.0.1 -p "$BK" -U 0 -t 1 -m 256 & pids+=($!)
wait_port "$MC"; wait_port "$BK"
"$loadgen" --server "127.0.0.1:$MC" --connections 4 --keys 10000 --key-prefix p: --prefill-only --json /dev/null 2>/dev/null
"$loadgen" --server "127.0.0.1:$BK" --connections 4 --keys 10000 --key-prefix p: --prefill-only --json /dev/null 2>/dev/null

declare -A wl=(
  [c10]="--connections 10"
  [pipe16]="--connections 10 --pipeline 16"
  [mget10]="--connections 10 --multiget 10"
)
results="$out/profile.jsonl"; : > "$results"
for target in memha twemproxy; do
  PX=$(port)
  if [ "$target" = memha ]; then
    cmd=("$sidecar" -p "$PX" -s "127.0.0.1:$MC" -b "127.0.0.1:$BK" --no-admin)
  else
    printf 'pool:\n  listen: 127.0.0.1:%s\n  hash: md5\n  distribution: ketama\n  servers:\n   - 127.0.0.1:%s:1 primary\n' \
      "$PX" "$MC" > "$out/nutcracker.yml"
    cmd=(nutcracker -c "$out/nutcracker.yml" -s "$(port)" -o "$out/nutcracker.log")
  fi
  valgrind --tool=callgrind --callgrind-out-file="$out/$target.%p.out" "${cmd[@]}" 2>"$out/$target.valgrind.log" &
  vpid=$!; pids+=("$vpid")
  wait_port "$PX"
  for w in c10 pipe16 mget10; do
    callgrind_control -z "$vpid" >/dev/null
    # shellcheck disable=SC2086
    "$loadgen" --server "127.0.0.1:$PX" ${wl[$w]} --keys 10000 --key-prefix p: --duration "$duration" \
      --timeout-ms 10000 --json "$out/$target.$w.json" --label "$target/$w" 2>/dev/null
    callgrind_control -d "$w" "$vpid" >/dev/null
    sleep 0.5
    dump=$(find "$out" -name "$target.$vpid.out.*" -printf '%T@ %p\n' | sort -rn | head -1 | cut -d' ' -f2)
    ir=$(grep -E '^(summary|totals):' "$dump" | head -1 | awk '{print $2}')
    ops=$(/usr/bin/python3 -c "import json;d=json.load(open('$out/$target.$w.json'))['summary'];print(d['ops'], d['keys'])")
    echo "{\"target\":\"$target\",\"workload\":\"$w\",\"instructions\":$ir,\"ops\":${ops% *},\"keys\":${ops#* }}" >> "$results"
    if [ "$target" = memha ] && [ "$w" = c10 ]; then
      callgrind_annotate --threshold=100 "$dump" 2>/dev/null | head -80 > "$out/memha.c10.top.txt" || true
    fi
  done
  kill "$vpid"; wait "$vpid" 2>/dev/null || true
done
# the figures and memha.c10.top.txt are kept; the raw callgrind dumps are large (regenerate them to dig deeper)
find "$out" -name '*.out*' -delete

# --- system calls and context switches per request (perf tracepoints, native processes, 50 connections):
# on a VM the kernel side of every send/recv dominates, and callgrind does not see it.
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  SC=$(port); NC=$(port)
  "$sidecar" -p "$SC" -s "127.0.0.1:$MC" -b "127.0.0.1:$BK" --no-admin 2>/dev/null & psc=$!; pids+=($!)
  printf 'pool:\n  listen: 127.0.0.1:%s\n  hash: md5\n  distribution: ketama\n  servers:\n   - 127.0.0.1:%s:1 primary\n' \
    "$NC" "$MC" > "$out/nutcracker-native.yml"
  nutcracker -c "$out/nutcracker-native.yml" -s "$(port)" -o "$out/nutcracker.log" & pnc=$!; pids+=($!)
  wait_port "$SC"; wait_port "$NC"
  pmc=$(pgrep -f "memcached .*-p $MC " | head -1); pbk=$(pgrep -f "memcached .*-p $BK " | head -1)
  declare -A tport=([direct]=$MC [memha]=$SC [twemproxy]=$NC)
  declare -A tpid=([direct]=$pmc [memha]=$psc [twemproxy]=$pnc)
  for t in direct memha twemproxy; do
    pl="${tpid[$t]}"; [ "$t" = direct ] || pl="$pl,$pmc,$pbk"
    perf stat -x, --per-thread -e raw_syscalls:sys_enter,context-switches -p "$pl" -o "$out/perf.$t.csv" -- \
      sleep "$(awk "BEGIN{print $duration + 0.3}")" &
    pp=$!; sleep 0.1
    "$loadgen" --server "127.0.0.1:${tport[$t]}" --connections 50 --keys 10000 --key-prefix p: --duration "$duration" \
      --json "$out/syscalls.$t.json" --label "syscalls/$t" 2>/dev/null
    wait $pp || true
  done
fi

/usr/bin/python3 - "$out" "$([ "$docs" = 1 ] && echo "$repo/docs/BENCHMARKS.md")" "$sidecar_commit" "$sidecar_dirty" <<'EOF'
import json, os, subprocess, sys
out, doc = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(os.path.join(out, "profile.jsonl"))]
get = {(r["target"], r["workload"]): r for r in rows}
commit, dirty = sys.argv[3], int(sys.argv[4])
text = {"c10": "10 connections, 90/10, 100 B", "pipe16": "10 connections x pipeline 16",
        "mget10": "10 connections, 10-key multi-get (per key)"}
L = [f"memha-sidecar from `{commit}`" + (f" plus {dirty} uncommitted file(s) in sidecar/" if dirty else "") +
     "; instructions executed by the proxy process per request (per key for multi-get), valgrind callgrind.", "",
     "| workload | memha | twemproxy | memha / twemproxy |", "|---|---|---|---|"]
for w in ["c10", "pipe16", "mget10"]:
    per = {}
    for t in ["memha", "twemproxy"]:
        r = get.get((t, w))
        if r and r["ops"]:
            per[t] = r["instructions"] / (r["keys"] if w == "mget10" else r["ops"])
    ratio = f"{per['memha'] / per['twemproxy']:.2f}" if len(per) == 2 else "-"
    L.append(f"| {text[w]} | {per.get('memha', 0):,.0f} | {per.get('twemproxy', 0):,.0f} | {ratio} |")
import glob, re
rows2 = []
for t in ["direct", "memha", "twemproxy"]:
    f = os.path.join(out, f"perf.{t}.csv")
    if not os.path.exists(f):
        continue
    ops = json.load(open(os.path.join(out, f"syscalls.{t}.json")))["summary"]["ops"]
    per = {}
    for line in open(f):
        parts = line.strip().split(",")
        if len(parts) < 4 or not parts[0] or line.startswith("#"):
            continue
        thread, value, event = parts[0], parts[1], parts[3]
        name = re.sub(r"-\d+$", "", thread)
        proc = {"memha-sidecar": "proxy", "nutcracker": "proxy"}.get(name, "memcached")
        try:
            per[(proc, event)] = per.get((proc, event), 0) + int(value)
        except ValueError:
            pass
    rows2.append((t, ops, per))
if rows2:
    L += ["", "System calls and context switches per request (perf tracepoints, native processes, 50 connections, "
          "90/10; memcached = primary + backup):", "",
          "| target | proxy syscalls/op | proxy context switches/op | memcached syscalls/op | memcached context switches/op |",
          "|---|---|---|---|---|"]
    for t, ops, per in rows2:
        g = lambda p, e: per.get((p, e), 0) / ops if ops else 0  # noqa: E731
        ps = "-" if t == "direct" else "%.2f" % g("proxy", "raw_syscalls:sys_enter")
        pc = "-" if t == "direct" else "%.2f" % g("proxy", "context-switches")
        L.append("| %s | %s | %s | %.2f | %.2f |" % (t, ps, pc, g("memcached", "raw_syscalls:sys_enter"),
                                                   g("memcached", "context-switches")))
md = "\n".join(L) + "\n"
open(os.path.join(out, "profile.md"), "w").write(md)
print(md)
if doc:
    B, E = "<!-- profile:begin (generated by bench/profile.sh) -->", "<!-- profile:end -->"
    t = open(doc).read()
    if B in t:
        a, b = t.index(B) + len(B), t.index(E)
        open(doc, "w").write(t[:a] + "\n" + md + t[b:])
EOF
