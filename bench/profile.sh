#!/usr/bin/env bash
# Instructions per operation of memha-sidecar and nutcracker under valgrind --tool=callgrind: unlike ops/s and CPU
# time, instruction counts do not move with the load of a shared machine, so they show whether a change of the data
# path made it cheaper. Each proxy runs under callgrind in front of real memcached processes; for each workload
# the counters are zeroed (callgrind_control -z), memha-loadgen runs a closed loop, the counters are dumped
# (callgrind_control -d) and divided by the operations completed. Also writes the top functions of memha.
#
#   bench/profile.sh [--out DIR] [--duration S] [--no-docs] [--baseline REV]
#   --baseline REV   also profile the memha-sidecar of commit REV ("memha_before", git archive, Release), and
#                    write its top functions beside memha's (<out>/<target>.{c10,mget10}.top.txt);
#                    env MEMHA_BASELINE_REV / MEMHA_BASELINE the same
#   env: MEMHA_SIDECAR, MEMHA_LOADGEN, MEMHA_SIDECAR_REV (bench/lib.sh; default: build-bench/, Release)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="" duration=4 docs=1 baseline_arg=${MEMHA_BASELINE_REV:-}
while (($#)); do
  case $1 in
    --out) out=$2; shift ;;
    --duration) duration=$2; shift ;;
    --no-docs) docs=0 ;;
    --baseline) baseline_arg=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-$repo/bench/results/profile}
rm -rf "$out"; mkdir -p "$out"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_binaries "$repo"
bench_baseline "$repo" "$baseline_arg"
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
for m in "$MC" "$BK"; do
  "$loadgen" --server "127.0.0.1:$m" --connections 4 --keys 10000 --key-prefix p: --prefill-only --json /dev/null 2>/dev/null
  "$loadgen" --server "127.0.0.1:$m" --connections 4 --keys 10000 --key-prefix p4k: --value-size 4096 --prefill-only \
    --json /dev/null 2>/dev/null
done

declare -A wl=(
  [c1]="--connections 1 --key-prefix p:"
  [c10]="--connections 10 --key-prefix p:"
  [c10_4k]="--connections 10 --key-prefix p4k: --value-size 4096"
  [pipe16]="--connections 10 --pipeline 16 --key-prefix p:"
  [mget10]="--connections 10 --multiget 10 --key-prefix p:"
)
results="$out/profile.jsonl"; : > "$results"
ptargets=(memha twemproxy); [ -n "$baseline" ] && ptargets=(memha_before memha twemproxy)
for target in "${ptargets[@]}"; do
  PX=$(port)
  if [ "$target" = memha ]; then
    cmd=("$sidecar" -p "$PX" -s "127.0.0.1:$MC" -b "127.0.0.1:$BK" --no-admin)
  elif [ "$target" = memha_before ]; then
    cmd=("$baseline" -p "$PX" -s "127.0.0.1:$MC" -b "127.0.0.1:$BK" --no-admin)
  else
    printf 'pool:\n  listen: 127.0.0.1:%s\n  hash: md5\n  distribution: ketama\n  servers:\n   - 127.0.0.1:%s:1 primary\n' \
      "$PX" "$MC" > "$out/nutcracker.yml"
    cmd=(nutcracker -c "$out/nutcracker.yml" -s "$(port)" -o "$out/nutcracker.log")
  fi
  valgrind --tool=callgrind --callgrind-out-file="$out/$target.%p.out" "${cmd[@]}" 2>"$out/$target.valgrind.log" &
  vpid=$!; pids+=("$vpid")
  wait_port "$PX"
  for w in c1 c10 c10_4k pipe16 mget10; do
    callgrind_control -z "$vpid" >/dev/null
    # shellcheck disable=SC2086
    "$loadgen" --server "127.0.0.1:$PX" ${wl[$w]} --keys 10000 --duration "$duration" \
      --timeout-ms 10000 --json "$out/$target.$w.json" --label "$target/$w" 2>/dev/null
    callgrind_control -d "$w" "$vpid" >/dev/null
    sleep 0.5
    dump=$(find "$out" -name "$target.$vpid.out.*" -printf '%T@ %p\n' | sort -rn | head -1 | cut -d' ' -f2)
    ir=$(grep -E '^(summary|totals):' "$dump" | head -1 | awk '{print $2}')
    ops=$(/usr/bin/python3 -c "import json;d=json.load(open('$out/$target.$w.json'))['summary'];print(d['ops'], d['keys'])")
    echo "{\"target\":\"$target\",\"workload\":\"$w\",\"instructions\":$ir,\"ops\":${ops% *},\"keys\":${ops#* }}" >> "$results"
    if [ "$target" != twemproxy ] && { [ "$w" = c10 ] || [ "$w" = mget10 ]; }; then
      # self cost per function (the 100% rows of main and the start-up frames left out)
      callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null | grep -v -E '\(100\.0%\)  .*:' | head -80 \
        > "$out/$target.$w.top.txt" || true
    fi
  done
  kill "$vpid"; wait "$vpid" 2>/dev/null || true
done
# the figures and the *.top.txt are kept; the raw callgrind dumps are large (regenerate them to dig deeper)
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
  stargets=(direct memha twemproxy)
  if [ -n "$baseline" ]; then
    SB=$(port)
    "$baseline" -p "$SB" -s "127.0.0.1:$MC" -b "127.0.0.1:$BK" --no-admin 2>/dev/null & tpid[memha_before]=$!; pids+=($!)
    tport[memha_before]=$SB; wait_port "$SB"
    stargets=(direct memha_before memha twemproxy)
  fi
  for t in "${stargets[@]}"; do
    pl="${tpid[$t]}"; [ "$t" = direct ] || pl="$pl,$pmc,$pbk"
    perf stat -x, --per-thread -e raw_syscalls:sys_enter,context-switches -p "$pl" -o "$out/perf.$t.csv" -- \
      sleep "$(awk "BEGIN{print $duration + 0.3}")" &
    pp=$!; sleep 0.1
    "$loadgen" --server "127.0.0.1:${tport[$t]}" --connections 50 --keys 10000 --key-prefix p: --duration "$duration" \
      --json "$out/syscalls.$t.json" --label "syscalls/$t" 2>/dev/null
    wait $pp || true
  done
fi

/usr/bin/python3 - "$out" "$([ "$docs" = 1 ] && echo "$repo/docs/BENCHMARKS.md")" "$sidecar_commit" "$sidecar_dirty" \
  "$baseline_commit" "$baseline_rev" <<'EOF'
import json, os, re, sys
out, doc = sys.argv[1], sys.argv[2]
commit, dirty, bcommit, brev = sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
rows = [json.loads(l) for l in open(os.path.join(out, "profile.jsonl"))]
get = {(r["target"], r["workload"]): r for r in rows}
before = any(r["target"] == "memha_before" for r in rows)
text = {"c1": "1 connection, 90/10, 100 B", "c10": "10 connections, 90/10, 100 B",
        "c10_4k": "10 connections, 90/10, 4 KB", "pipe16": "10 connections x pipeline 16",
        "mget10": "10 connections, 10-key multi-get (per key)"}
workloads = [w for w in ["c1", "c10", "c10_4k", "pipe16", "mget10"] if any(k[1] == w for k in get)]
summary = {"sidecar_commit": commit, "sidecar_uncommitted_files": dirty, "baseline_commit": bcommit or None,
           "baseline_rev": brev or None, "instructions_per_op": {}, "instructions_per_request": {}, "per_op": {}}
for w in workloads:
    for t in ["memha_before", "memha", "twemproxy"]:
        r = get.get((t, w))
        if r and r["ops"]:
            # per key for multi-get (the profile table), per request (report.py --compose)
            summary["instructions_per_op"].setdefault(w, {})[t] = r["instructions"] / (r["keys"] if w == "mget10" else r["ops"])
            summary["instructions_per_request"].setdefault(w, {})[t] = r["instructions"] / r["ops"]
name = f"memha-sidecar from `{commit}`" + (f" plus {dirty} uncommitted file(s) in sidecar/" if dirty else "")
if before:
    name += f" (\"memha\"), against the sidecar of `{brev}` (\"before\", last sidecar/ change `{bcommit}`)"
L = [name + "; instructions executed by the proxy process per request (per key for multi-get), valgrind callgrind.", ""]
if before:
    L += ["| workload | before | memha | memha / before | twemproxy | memha / twemproxy |", "|---|---|---|---|---|---|"]
else:
    L += ["| workload | memha | twemproxy | memha / twemproxy |", "|---|---|---|---|"]
for w in workloads:
    per = summary["instructions_per_op"].get(w, {})
    ratio = lambda a, b: f"{per[a] / per[b]:.2f}" if a in per and b in per else "-"  # noqa: E731
    cell = lambda t: f"{per[t]:,.0f}" if t in per else "-"  # noqa: E731
    if before:
        L.append(f"| {text[w]} | {cell('memha_before')} | {cell('memha')} | {ratio('memha', 'memha_before')} | "
                 f"{cell('twemproxy')} | {ratio('memha', 'twemproxy')} |")
    else:
        L.append(f"| {text[w]} | {cell('memha')} | {cell('twemproxy')} | {ratio('memha', 'twemproxy')} |")
rows2 = []
for t in ["direct", "memha_before", "memha", "twemproxy"]:
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
        pname = re.sub(r"-\d+$", "", thread)
        proc = {"memha-sidecar": "proxy", "nutcracker": "proxy"}.get(pname, "memcached")
        try:
            per[(proc, event)] = per.get((proc, event), 0) + int(value)
        except ValueError:
            pass
    rows2.append((t, ops, per))
    g = lambda p, e: per.get((p, e), 0) / ops if ops else None  # noqa: E731
    summary["per_op"][t] = {"ops": ops,
                            "proxy_syscalls": None if t == "direct" else g("proxy", "raw_syscalls:sys_enter"),
                            "proxy_context_switches": None if t == "direct" else g("proxy", "context-switches"),
                            "memcached_syscalls": g("memcached", "raw_syscalls:sys_enter"),
                            "memcached_context_switches": g("memcached", "context-switches")}
if rows2:
    L += ["", "System calls and context switches per request (perf tracepoints, native processes, 50 connections, "
          "90/10; memcached = primary + backup):", "",
          "| target | proxy syscalls/op | proxy context switches/op | memcached syscalls/op | memcached context switches/op |",
          "|---|---|---|---|---|"]
    for t, ops, per in rows2:
        x = summary["per_op"][t]
        f2 = lambda v: "-" if v is None else "%.2f" % v  # noqa: E731
        L.append("| %s | %s | %s | %s | %s |" % ({"memha_before": "memha before"}.get(t, t), f2(x["proxy_syscalls"]),
                                               f2(x["proxy_context_switches"]), f2(x["memcached_syscalls"]),
                                               f2(x["memcached_context_switches"])))
json.dump(summary, open(os.path.join(out, "profile.json"), "w"), indent=1)
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
