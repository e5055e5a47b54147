#!/usr/bin/env bash
# What a bulk refill costs live traffic (docs/BENCHMARKS.md, "Refill: speed and cost to live traffic"): a primary
# that came back empty is refilled from the backup (memha-bench-refill: controller/refill, default rate limits)
# while a verifying client reads and writes through memha-sidecar at a fixed rate. p99 per second during the refill
# is compared with p99 before it and after it, in the same run.
#
#   bench/refill_cost.sh [--keys N] [--value-size B] [--rate R] [--out DIR] [--no-docs]
#   env: MEMHA_SIDECAR, MEMHA_LOADGEN, MEMHA_REFILL (default: build-bench/, Release)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
keys=200000 size=100 rate=5000 out="" docs=1
while (($#)); do
  case $1 in
    --keys) keys=$2; shift ;;
    --value-size) size=$2; shift ;;
    --rate) rate=$2; shift ;;
    --out) out=$2; shift ;;
    --no-docs) docs=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "refill_cost.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-$repo/bench/results/refill}
rm -rf "$out"; mkdir -p "$out/logs"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_binaries "$repo"
refill_tool=${MEMHA_REFILL:-$(dirname "$loadgen")/memha-bench-refill}
[ -x "$refill_tool" ] || ninja -C "$(dirname "$refill_tool")" memha-bench-refill >/dev/null
bench_cores
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT
memcached_on() { "${server[@]}" memcached "${user[@]}" -l 127.0.0.1 -p "$1" -U 0 -t 1 -m 2048 -c 4096 & }

P1=$(port); BK=$(port); PX=$(port)
memcached_on "$P1"; pids+=($!); memcached_on "$BK"; pids+=($!)
wait_port "$P1"; wait_port "$BK"
# The backup holds the keys to refill (the primary came back empty): a prefill straight into it.
"${client[@]}" "$loadgen" --server "127.0.0.1:$BK" --keys "$keys" --value-size "$size" --key-prefix refill: \
  --prefill-only --connections 4 >"$out/logs/prefill.json" 2>"$out/logs/prefill.log"
"${server[@]}" "$sidecar" -p "$PX" -s "127.0.0.1:$P1" -b "127.0.0.1:$BK" --no-admin 2>"$out/logs/sidecar.log" &
pids+=($!)
wait_port "$PX"
duration=40 refill_at=10
"${client[@]}" "$loadgen" --server "127.0.0.1:$PX" --connections 20 --rate "$rate" --duration "$duration" \
  --keys 5000 --get-ratio 0.9 --value-size 100 --verify --read-through --prefill --timeout-ms 1000 --progress \
  --label refill_cost --json "$out/load.json" 2>"$out/logs/load.log" &
lg=$!
for _ in $(seq 300); do grep -qs MAIN_START "$out/logs/load.log" && break; sleep 0.1; done
start=$(grep -oE 'unix_ms=[0-9]+' "$out/logs/load.log" | cut -d= -f2)
sleep "$(awk "BEGIN{d = ($start + $refill_at * 1000 - $(now_ms)) / 1000; print (d > 0 ? d : 0)}")"
t0=$(now_ms)
"${server[@]}" "$refill_tool" --role primary --target "127.0.0.1:$P1=127.0.0.1:$P1" --ring "127.0.0.1:$P1" \
  --peer "b1=127.0.0.1:$BK" >"$out/refill.json" 2>"$out/logs/refill.log"
t1=$(now_ms)
wait $lg
echo "{\"keys\":$keys,\"value_size\":$size,\"rate\":$rate,\"refill_from_s\":$(awk "BEGIN{print ($t0 - $start) / 1000}"),\"refill_to_s\":$(awk "BEGIN{print ($t1 - $start) / 1000}"),\"sidecar_commit\":\"$sidecar_commit\",\"nproc\":$(nproc),\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >"$out/meta.json"
stop_all
args=("$out"); [ "$docs" = 1 ] && args+=(--docs "$repo/docs/BENCHMARKS.md")
/usr/bin/python3 "$repo/bench/refill_cost_report.py" "${args[@]}"
