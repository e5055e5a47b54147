#!/usr/bin/env bash
# The benchmark harness (docs/BENCHMARKS.md): memcached direct vs memha-sidecar vs twemproxy (nutcracker), rounds
# interleaved (direct, memha, twemproxy, direct, ...), medians of the rounds, ratios to direct; proxy CPU per op
# and memory; then the report (JSON + markdown + PNG) is regenerated.
#
#   bench/run.sh                 everything (~12 min): 5 rounds x 3 s x 8 workloads x 4 targets, then bench/chaos.sh
#                                and bench/profile.sh; writes docs/BENCHMARKS.md and docs/img/*.png
#   bench/run.sh --smoke         a few seconds per target, no docs (the CTest "bench.smoke")
#   options: --rounds N  --duration S  --out DIR  --no-docs  --no-chaos  --no-profile  --workloads "c1 c50 ..."
#   --baseline REV               also measure the memha-sidecar of commit REV (git archive, Release) as the target
#                                "memha_before", interleaved with the others; with it the report, profile.sh and the
#                                section "Composing and proving replies (issue 9)" of docs/BENCHMARKS.md show what the
#                                change since REV costs (env MEMHA_BASELINE_REV does the same)
#   --compose-only               only that comparison: baseline (default fa3492d) vs the sidecar measured (working
#                                tree, or MEMHA_SIDECAR / MEMHA_SIDECAR_REV) vs twemproxy vs direct on c1 c50 c50_4k
#                                pipe16 mget10 (unless --workloads), no relay, no chaos; profile.sh for both sidecars;
#                                output in bench/results/compose/; rewrites only that section of docs/BENCHMARKS.md
#   env: MEMHA_SIDECAR, MEMHA_LOADGEN, MEMHA_SIDECAR_REV, MEMHA_BASELINE_REV, MEMHA_BASELINE (bench/lib.sh;
#        default: build-bench/, Release)
#
# Setup (the same for the three targets): ONE primary memcached; memha mirrors writes to a backup memcached
# (memha's real cost); twemproxy is ketama over the same single primary. The client (memha-loadgen, memcaslap)
# runs on core 0, memcached, memha-sidecar and nutcracker share core 1.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
smoke=0 rounds=5 duration=3 out="" docs=1 chaos=1 profile=1 baseline_arg=${MEMHA_BASELINE_REV:-} compose_only=0 only_wl=""
while (($#)); do
  case $1 in
    --smoke) smoke=1; rounds=1; duration=1; docs=0; chaos=0; profile=0 ;;
    --no-chaos) chaos=0 ;;
    --no-profile) profile=0 ;;
    --rounds) rounds=$2; shift ;;
    --duration) duration=$2; shift ;;
    --out) out=$2; shift ;;
    --no-docs) docs=0 ;;
    --baseline) baseline_arg=$2; shift ;;
    --compose-only) compose_only=1; chaos=0 ;;
    --workloads) only_wl=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# the comparison alone goes to its own directory: bench/results/latest stays the last full run
if [ "$compose_only" = 1 ]; then out=${out:-$repo/bench/results/compose}; else out=${out:-$repo/bench/results/latest}; fi
[ "$smoke" = 1 ] && out=${out%/}
rm -rf "$out"; mkdir -p "$out/raw" "$out/logs"

# --- binaries (bench/lib.sh: MEMHA_SIDECAR, MEMHA_LOADGEN, MEMHA_SIDECAR_REV)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_binaries "$repo"
if [ "$compose_only" = 1 ]; then baseline_arg=${baseline_arg:-fa3492d}; only_wl=${only_wl:-c1 c50 c50_4k pipe16 mget10}; fi
bench_baseline "$repo" "$baseline_arg"
for t in memcached nutcracker taskset; do command -v $t >/dev/null || { echo "run.sh: missing $t" >&2; exit 1; }; done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- cores: client on 0, servers on 1 (on a 1-core machine everything shares core 0)
if [ "$(nproc)" -ge 2 ]; then ccore=0 score=1; else ccore=0 score=0; fi
client=(taskset -c "$ccore")
server=(taskset -c "$score")

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "run.sh: nothing listens on $1" >&2; return 1
}
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)

MC=$(port); BK=$(port); SC=$(port); NC=$(port); NCS=$(port)
"${server[@]}" memcached "${user[@]}" -l 127.0.0.1 -p "$MC" -U 0 -t 1 -m 1024 -c 8192 & pid_mc=$!; pids+=($!)
"${server[@]}" memcached "${user[@]}" -l 127.0.0.1 -p "$BK" -U 0 -t 1 -m 1024 -c 8192 & pid_bk=$!; pids+=($!)
wait_port "$MC"; wait_port "$BK"
"${server[@]}" "$sidecar" -p "$SC" -s "127.0.0.1:$MC" -b "127.0.0.1:$BK" --no-admin 2>"$out/logs/sidecar.log" &
pid_sc=$!; pids+=($!)
cat > "$out/nutcracker.yml" <<EOF
pool:
  listen: 127.0.0.1:$NC
  hash: md5
  distribution: ketama
  backlog: 1024
  preconnect: true
  auto_eject_hosts: false
  servers:
   - 127.0.0.1:$MC:1 primary
EOF
"${server[@]}" nutcracker -c "$out/nutcracker.yml" -s "$NCS" -o "$out/logs/nutcracker.log" & pid_nc=$!; pids+=($!)
RL=$(port)
"${server[@]}" "$relay" "$RL" "127.0.0.1:$MC" & pid_rl=$!; pids+=($!)
wait_port "$SC"; wait_port "$NC"; wait_port "$RL"

declare -A tport=([direct]=$MC [memha]=$SC [twemproxy]=$NC [relay]=$RL)
declare -A tpid=([direct]=$pid_mc [memha]=$pid_sc [twemproxy]=$pid_nc [relay]=$pid_rl)
# relay: memha-bench-relay, a naive byte-copying hop (no protocol logic, no batching, one upstream connection per
# client): at one connection it is the floor of an extra hop; under concurrency it is not (see docs/BENCHMARKS.md).
targets=(direct memha twemproxy relay)
[ "$compose_only" = 1 ] && targets=(direct memha twemproxy)
mem_targets=(memha twemproxy direct)
# memha_before: the sidecar of the baseline revision, same primary and backup, same flags
if [ -n "$baseline" ]; then
  SB=$(port)
  "${server[@]}" "$baseline" -p "$SB" -s "127.0.0.1:$MC" -b "127.0.0.1:$BK" --no-admin 2>"$out/logs/sidecar_before.log" &
  tpid[memha_before]=$!; pids+=($!); tport[memha_before]=$SB
  wait_port "$SB"
  targets=(direct memha_before "${targets[@]:1}")
  mem_targets=(memha memha_before twemproxy direct)
fi

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# --- machine and versions
/usr/bin/python3 - "$out/machine.json" <<EOF
import json, os, platform, subprocess, sys
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
json.dump({
  'nproc': os.cpu_count(), 'cpu_model': cpu, 'kernel': platform.release(),
  'loadavg_start': open('/proc/loadavg').read().split()[:3],
  'started': __import__('datetime').datetime.now(__import__('datetime').timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
  'memcached': subprocess.run(['memcached', '-V'], capture_output=True, text=True).stdout.strip(),
  'nutcracker': (lambda r: (r.stderr or r.stdout).strip().splitlines()[0])(
                subprocess.run(['nutcracker', '-V'], capture_output=True, text=True)),
  'sidecar_binary': '$sidecar', 'sidecar_commit': '$sidecar_commit',
  'sidecar_uncommitted_files': int('$sidecar_dirty'),
  'baseline_binary': '$baseline', 'baseline_rev': '$baseline_rev', 'baseline_commit': '$baseline_commit',
  'repo_commit': '${sidecar_rev:-}' or subprocess.run(['git', '-C', '$repo', 'log', '-1', '--format=%h'], capture_output=True, text=True).stdout.strip(),
  'client_core': $ccore, 'server_core': $score, 'rounds': $rounds, 'duration_s': $duration, 'smoke': bool($smoke),
}, open(sys.argv[1], 'w'), indent=1)
EOF

runs="$out/runs.jsonl"; : > "$runs"
# record <workload> <target> <round> key=value... : one JSON line per measurement
record() {
  local w=$1 t=$2 r=$3; shift 3
  local kv="\"workload\":\"$w\",\"target\":\"$t\",\"round\":$r"
  for a in "$@"; do kv+=",\"${a%%=*}\":${a#*=}"; done
  echo "{$kv}" >> "$runs"
}

for t in "${mem_targets[@]}"; do record idle "$t" 0 "rss_kb=$(rss_kb "${tpid[$t]}")"; done

# --- memory: 1,000 idle connections (opened, no request yet), on the fresh processes, before any load
nidle=1000; [ "$smoke" = 1 ] && nidle=50
for t in "${mem_targets[@]}"; do
  before=$(rss_kb "${tpid[$t]}")
  "${client[@]}" "$loadgen" --server "127.0.0.1:${tport[$t]}" --connections $nidle --idle --duration 3 \
    --json "$out/raw/idle.$t.json" --label "idle/$t" 2>>"$out/logs/loadgen.log" &
  lg=$!; sleep 2; during=$(rss_kb "${tpid[$t]}"); wait $lg
  record idle_conns "$t" 0 "connections=$nidle" "rss_before_kb=$before" "rss_kb=$during"
done
# --- prefill through memha, so the backup holds the values too (read-through is not part of these workloads)
keys=10000; [ "$smoke" = 1 ] && keys=1000
"${client[@]}" "$loadgen" --server "127.0.0.1:$SC" --connections 8 --keys $keys --key-prefix b100: --value-size 100 \
  --prefill-only --json /dev/null --label prefill-100 2>>"$out/logs/loadgen.log"
"${client[@]}" "$loadgen" --server "127.0.0.1:$SC" --connections 8 --keys $keys --key-prefix b4k: --value-size 4096 \
  --prefill-only --json /dev/null --label prefill-4k 2>>"$out/logs/loadgen.log"
sleep 0.5

# --- workloads: name -> loadgen arguments (the key space and value size go with the prefix)
declare -A wl=(
  [c1]="--connections 1 --key-prefix b100: --value-size 100"
  [c50]="--connections 50 --key-prefix b100: --value-size 100"
  [c50_4k]="--connections 50 --key-prefix b4k: --value-size 4096"
  [c1000]="--connections 1000 --key-prefix b100: --value-size 100"
  [pipe16]="--connections 50 --pipeline 16 --key-prefix b100: --value-size 100"
  [mget10]="--connections 50 --multiget 10 --key-prefix b100: --value-size 100"
  [open10k]="--connections 50 --rate 10000 --key-prefix b100: --value-size 100"
)
order=(c1 c50 c50_4k c1000 pipe16 mget10 open10k memcaslap)
if [ "$smoke" = 1 ]; then
  wl[open10k]="--connections 10 --rate 2000 --key-prefix b100: --value-size 100"
  order=(c50 open10k)
fi
command -v memcaslap >/dev/null || order=("${order[@]/memcaslap}")
if [ -n "$only_wl" ]; then
  read -ra order <<<"$only_wl"
  for w in "${order[@]}"; do
    [ -n "${wl[$w]:-}" ] || [ "$w" = memcaslap ] || { echo "run.sh: unknown workload $w" >&2; exit 2; }
  done
  command -v memcaslap >/dev/null || order=("${order[@]/memcaslap}")
fi

echo "run.sh: out=$out rounds=$rounds duration=${duration}s sidecar=$sidecar_commit (uncommitted files: $sidecar_dirty)${baseline:+ baseline=$baseline_rev} load=$(load)" >&2
for round in $(seq "$rounds"); do
  # with a baseline, memha_before and memha swap places every other round (neither always runs first)
  round_targets=("${targets[@]}")
  if [ -n "$baseline" ] && ((round % 2 == 0)); then round_targets=(direct memha memha_before "${targets[@]:3}"); fi
  for w in "${order[@]}"; do
    [ -n "$w" ] || continue
    for t in "${round_targets[@]}"; do
      # the relay is a reference for the cost of a bare hop: only where that question is asked
      if [ "$t" = relay ] && [[ " c1 c50 open10k " != *" $w "* ]]; then continue; fi
      port=${tport[$t]}
      c0=$(cpu_ticks "${tpid[$t]}"); m0=$(cpu_ticks "$pid_mc"); b0=$(cpu_ticks "$pid_bk"); k0=$(sys_ticks "${tpid[$t]}")
      f="$out/raw/$w.$t.r$round.json"
      rss_busy=0
      if [ "$w" = memcaslap ]; then
        "${client[@]}" memcaslap -s "127.0.0.1:$port" -t "${duration}s" -c 50 -T 1 > "$out/raw/$w.$t.r$round.txt" 2>&1 || true
        line=$(grep -E '^Run time' "$out/raw/$w.$t.r$round.txt" | tail -1)
        ops=$(echo "$line" | grep -oE 'Ops: [0-9]+' | cut -d' ' -f2); ops=${ops:-0}
        tps=$(echo "$line" | grep -oE 'TPS: [0-9]+' | cut -d' ' -f2); tps=${tps:-0}
        printf '{"label":"%s","summary":{"ops":%s,"ops_per_s":%s,"errors":0}}\n' "$w/$t" "$ops" "$tps" > "$f"
      else
        # shellcheck disable=SC2086
        "${client[@]}" "$loadgen" --server "127.0.0.1:$port" ${wl[$w]} --keys $keys --duration "$duration" \
          --timeout-ms 5000 --json "$f" --label "$w/$t" --seed "$round" 2>>"$out/logs/loadgen.log" &
        lg=$!
        if [ "$w" = c1000 ]; then sleep "$(awk "BEGIN{print $duration / 2}")"; rss_busy=$(rss_kb "${tpid[$t]}"); fi
        wait $lg
      fi
      c1=$(cpu_ticks "${tpid[$t]}"); m1=$(cpu_ticks "$pid_mc"); b1=$(cpu_ticks "$pid_bk"); k1=$(sys_ticks "${tpid[$t]}")
      record "$w" "$t" "$round" "file=\"$(basename "$f")\"" "hz=$(getconf CLK_TCK)" "proxy_ticks=$((c1 - c0))" "proxy_sys_ticks=$((k1 - k0))" \
        "primary_ticks=$((m1 - m0))" "backup_ticks=$((b1 - b0))" \
        "rss_kb=$(rss_kb "${tpid[$t]}")" "rss_busy_kb=$rss_busy" "load=\"$(load)\""
    done
  done
  echo "run.sh: round $round done, load $(load)" >&2
done

# --- what is left behind once the load ended
sleep 2
for t in "${mem_targets[@]}"; do record after "$t" 0 "rss_kb=$(rss_kb "${tpid[$t]}")"; done

report_args=()
[ "$docs" = 1 ] && [ "$compose_only" = 0 ] && report_args+=(--docs "$repo/docs/BENCHMARKS.md")
[ "$smoke" = 1 ] && report_args+=(--check-smoke)
/usr/bin/python3 "$repo/bench/report.py" "$out" "${report_args[@]}"
cleanup; trap - EXIT
export MEMHA_SIDECAR=$sidecar MEMHA_LOADGEN=$loadgen MEMHA_RELAY=$relay
[ -n "${sidecar_rev:-}" ] && export MEMHA_SIDECAR_REV=$sidecar_rev
if [ -n "$baseline" ]; then
  export MEMHA_BASELINE=$baseline
  if [ -n "$baseline_rev" ]; then export MEMHA_BASELINE_REV=$baseline_rev; else unset MEMHA_BASELINE_REV; fi
fi
docs_flag=(); [ "$docs" = 1 ] && [ "$compose_only" = 0 ] || docs_flag=(--no-docs)
if [ "$chaos" = 1 ]; then "$repo/bench/chaos.sh" "${docs_flag[@]}"; fi
profiled=0 profile_out=$repo/bench/results/profile
[ "$compose_only" = 1 ] && profile_out=$out/profile
if [ "$profile" = 1 ] && command -v valgrind >/dev/null; then
  "$repo/bench/profile.sh" --out "$profile_out" "${docs_flag[@]}" && profiled=1
fi
# what composing and proving replies cost: the baseline against this sidecar, with the instruction counts
if [ -n "$baseline" ]; then
  compose_args=(--compose); [ "$profiled" = 1 ] && compose_args+=(--profile "$profile_out")
  [ "$docs" = 1 ] && compose_args+=(--docs "$repo/docs/BENCHMARKS.md")
  /usr/bin/python3 "$repo/bench/report.py" "$out" "${compose_args[@]}"
fi
