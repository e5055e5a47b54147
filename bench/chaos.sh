#!/usr/bin/env bash
# Chaos timelines, memha vs twemproxy (auto_eject_hosts) in the same script (docs/BENCHMARKS.md):
#   kill:   primary 1 gets `kill -9` under load at FAULT s, restarted EMPTY on the same port at RESTORE s;
#   freeze: primary 1 gets SIGSTOP at FAULT s, SIGCONT at RESTORE s;
#   backup-empty: the backup gets `kill -9` at FAULT s and comes back empty at once, then primary 1 gets `kill -9`
#          at RESTORE s and stays dead (issue 10, finding 4: the backup must have been refilled by then);
#   double: primary 1 gets `kill -9` at FAULT s and comes back empty at once, then the backup gets `kill -9` at
#          RESTORE s and stays dead (the primary must have been refilled by then).
# Targets: memha, twemproxy, and for backup-empty/double also memha_norefill (the same sidecar, nothing refills).
# memha refills the member that came back with memha-bench-refill (controller/refill, the code the controller's
# leader runs when it detects the restart; docs/ARCHITECTURE.md "Bulk refill"), started as soon as it is back.
# Each (target, scenario) runs on fresh processes: two primary memcached (ketama over both), plus one backup
# memcached for memha. The workload is a verifying read-through cache client (memha-loadgen --verify
# --read-through, open loop): on a miss it sets the key, every read is checked against acknowledged writes.
#
#   bench/chaos.sh [--out DIR] [--duration S] [--fault S] [--restore S] [--rate R] [--scenarios "kill freeze ..."]
#                  [--no-docs] [--quick]
#   env: MEMHA_SIDECAR, MEMHA_LOADGEN, MEMHA_SIDECAR_REV (bench/lib.sh; default: build-bench/, Release)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="" duration=36 fault=10 restore=20 rate=5000 docs=1 scenarios="kill freeze backup-empty double"
while (($#)); do
  case $1 in
    --out) out=$2; shift ;;
    --duration) duration=$2; shift ;;
    --fault) fault=$2; shift ;;
    --restore) restore=$2; shift ;;
    --rate) rate=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --no-docs) docs=0 ;;
    --quick) duration=12; fault=3; restore=6; docs=0 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "chaos.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-$repo/bench/results/chaos}
rm -rf "$out"; mkdir -p "$out/logs"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_binaries "$repo"
refill_tool=${MEMHA_REFILL:-$(dirname "$loadgen")/memha-bench-refill}
[ -x "$refill_tool" ] || ninja -C "$(dirname "$refill_tool")" memha-bench-refill >/dev/null 2>&1 || true
ulimit -n 65536 2>/dev/null || true
bench_cores
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT
memcached_on() { "${server[@]}" memcached "${user[@]}" -l 127.0.0.1 -p "$1" -U 0 -t 1 -m 256 -c 4096 & }

echo "{\"sidecar_commit\":\"$sidecar_commit\",\"sidecar_uncommitted_files\":$sidecar_dirty,\"sidecar_binary\":\"$sidecar\",\"nproc\":$(nproc),\"loadavg_start\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"duration\":$duration,\"fault\":$fault,\"restore\":$restore,\"rate\":$rate}" > "$out/meta.json"

run_one() {  # run_one TARGET SCENARIO
  local target=$1 scenario=$2 name="$1.$2"
  local P1 P2 BK PX; P1=$(port); P2=$(port); BK=$(port); PX=$(port)
  memcached_on "$P1"; local p1=$!; pids+=($!)
  memcached_on "$P2"; pids+=($!)
  wait_port "$P1"; wait_port "$P2"
  local bk=""
  if [ "$target" != twemproxy ]; then
    memcached_on "$BK"; bk=$!; pids+=($!); wait_port "$BK"
    "${server[@]}" "$sidecar" -p "$PX" -s "127.0.0.1:$P1,127.0.0.1:$P2" -b "127.0.0.1:$BK" --no-admin \
      2>"$out/logs/$name.sidecar.log" & pids+=($!)
  else
    cat > "$out/$name.nutcracker.yml" <<EOF
pool:
  listen: 127.0.0.1:$PX
  hash: md5
  distribution: ketama
  timeout: 250
  preconnect: true
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:$P1:1 p1
   - 127.0.0.1:$P2:1 p2
EOF
    "${server[@]}" nutcracker -c "$out/$name.nutcracker.yml" -s "$(port)" -o "$out/logs/$name.nutcracker.log" &
    pids+=($!)
  fi
  wait_port "$PX"
  # Two-fault scenarios use 10x the keys: in the 10 s between the faults the read-through client then touches
  # only part of them, so what the member that came back holds shows (with 5,000 it re-fills them all itself).
  local keys=5000
  case $scenario in backup-empty|double) keys=50000 ;; esac
  "${client[@]}" "$loadgen" --server "127.0.0.1:$PX" --connections 20 --rate "$rate" --duration "$duration" \
    --keys "$keys" --get-ratio 0.895 --delete-ratio 0.005 --value-size 100 --verify --read-through --prefill \
    --timeout-ms 1000 --progress --label "$name" --json "$out/$name.json" 2>"$out/logs/$name.loadgen.log" &
  local lg=$!
  for _ in $(seq 300); do grep -qs MAIN_START "$out/logs/$name.loadgen.log" && break; sleep 0.1; done
  local start; start=$(grep -oE 'unix_ms=[0-9]+' "$out/logs/$name.loadgen.log" | cut -d= -f2)
  sleep "$(awk "BEGIN{print ($start + $fault * 1000 - $(now_ms)) / 1000}")"
  local t_fault; t_fault=$(now_ms)
  local refill_pid="" refill_role="" refill_args=()
  case $scenario in
    kill) kill -9 "$p1"; wait "$p1" 2>/dev/null || true ;;
    freeze) kill -STOP "$p1" ;;
    backup-empty)
      if [ -n "$bk" ]; then
        kill -9 "$bk"; wait "$bk" 2>/dev/null || true; memcached_on "$BK"; bk=$!; pids+=($!); wait_port "$BK"
        refill_role=backup
        refill_args=(--target "b1=127.0.0.1:$BK" --ring b1 --peer "127.0.0.1:$P1=127.0.0.1:$P1"
                     --peer "127.0.0.1:$P2=127.0.0.1:$P2")
      fi ;;
    double)
      kill -9 "$p1"; wait "$p1" 2>/dev/null || true; memcached_on "$P1"; p1=$!; pids+=($!); wait_port "$P1"
      refill_role=primary
      refill_args=(--target "127.0.0.1:$P1=127.0.0.1:$P1" --ring "127.0.0.1:$P1,127.0.0.1:$P2"
                   --peer "b1=127.0.0.1:$BK") ;;
  esac
  local t_refill_start; t_refill_start=$(now_ms)
  if [ "$target" = memha ] && [ -n "$refill_role" ]; then
    "${server[@]}" "$refill_tool" --role "$refill_role" "${refill_args[@]}" --verify-delay-ms 1000 \
      >"$out/$name.refill.json" 2>"$out/logs/$name.refill.log" &
    refill_pid=$!
  fi
  sleep "$(awk "BEGIN{print ($start + $restore * 1000 - $(now_ms)) / 1000}")"
  local t_restore; t_restore=$(now_ms)
  local refill_done_s=null
  if [ -n "$refill_pid" ]; then
    if kill -0 "$refill_pid" 2>/dev/null; then
      echo "chaos.sh: $name: the refill was still running at RESTORE" >&2
    fi
    wait "$refill_pid" || echo "chaos.sh: $name: memha-bench-refill failed: $(cat "$out/$name.refill.json")" >&2
    refill_done_s=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'])" \
      "$out/$name.refill.json" 2>/dev/null || echo null)
  fi
  case $scenario in
    kill) memcached_on "$P1"; pids+=($!) ;;
    freeze) kill -CONT "$p1" ;;
    backup-empty) kill -9 "$p1"; wait "$p1" 2>/dev/null || true ;;
    double) if [ -n "$bk" ]; then kill -9 "$bk"; wait "$bk" 2>/dev/null || true; fi ;;
  esac
  wait $lg
  echo "{\"target\":\"$target\",\"scenario\":\"$scenario\",\"fault_s\":$(awk "BEGIN{print ($t_fault - $start) / 1000}"),\"restore_s\":$(awk "BEGIN{print ($t_restore - $start) / 1000}"),\"refill_s\":$refill_done_s,\"refill_started_s\":$(awk "BEGIN{print ($t_refill_start - $start) / 1000}"),\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" > "$out/$name.events.json"
  stop_all
  echo "chaos.sh: $name: $(tail -1 "$out/logs/$name.loadgen.log")" >&2
}

for scenario in $scenarios; do
  case $scenario in
    kill|freeze) targets="memha twemproxy" ;;
    backup-empty|double) targets="memha memha_norefill twemproxy" ;;
    *) echo "chaos.sh: unknown scenario $scenario" >&2; exit 2 ;;
  esac
  for target in $targets; do run_one "$target" "$scenario"; done
done
args=("$out"); [ "$docs" = 1 ] && args+=(--docs "$repo/docs/BENCHMARKS.md")
/usr/bin/python3 "$repo/bench/chaos_report.py" "${args[@]}"
