#!/usr/bin/env bash
# Scaling under load, memha vs twemproxy in the same script (docs/BENCHMARKS.md, "Scaling under load"):
# the primary pool goes from 2 to 3 members at OUT s and back to 2 at IN s while a verifying read-through client
# (memha-loadgen --verify --read-through, open loop) reads and writes. memha gets each topology from its JSON file
# (SIGHUP reloads it; one backup memcached); twemproxy has no reload, so it is restarted with the new server list
# on the same port, which is how it is scaled. Both hash the same member names with ketama, so the same keys move.
#
#   bench/chaos_scale.sh [--out DIR] [--duration S] [--out-at S] [--in-at S] [--rate R] [--no-docs] [--quick]
#   env: MEMHA_SIDECAR, MEMHA_LOADGEN, MEMHA_SIDECAR_REV (bench/lib.sh; default: build-bench/, Release)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="" duration=36 out_at=10 in_at=20 rate=5000 docs=1
while (($#)); do
  case $1 in
    --out) out=$2; shift ;;
    --duration) duration=$2; shift ;;
    --out-at) out_at=$2; shift ;;
    --in-at) in_at=$2; shift ;;
    --rate) rate=$2; shift ;;
    --no-docs) docs=0 ;;
    --quick) duration=12; out_at=3; in_at=6; docs=0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "chaos_scale.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-$repo/bench/results/scale}
rm -rf "$out"; mkdir -p "$out/logs"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_binaries "$repo"
ulimit -n 65536 2>/dev/null || true
bench_cores
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT
memcached_on() { "${server[@]}" memcached "${user[@]}" -l 127.0.0.1 -p "$1" -U 0 -t 1 -m 256 -c 4096 & }

echo "{\"sidecar_commit\":\"$sidecar_commit\",\"sidecar_uncommitted_files\":$sidecar_dirty,\"nproc\":$(nproc),\"loadavg_start\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"duration\":$duration,\"out_at\":$out_at,\"in_at\":$in_at,\"rate\":$rate}" > "$out/meta.json"

topology_json() {  # topology_json VERSION PX BK P1 P2 [P3]
  local v=$1 px=$2 bk=$3; shift 3
  local members="" i=1
  for p in "$@"; do
    members+="${members:+,}{\"name\":\"p$i\",\"address\":\"127.0.0.1:$p\",\"state\":\"up\"}"
    i=$((i + 1))
  done
  echo "{\"epoch\":0,\"version\":$v,\"pools\":[{\"name\":\"bench\",\"listen\":\"127.0.0.1:$px\",\"primary\":[$members],\"backup\":[{\"name\":\"b1\",\"address\":\"127.0.0.1:$bk\",\"state\":\"up\"}]}]}"
}

nutcracker_yml() {  # nutcracker_yml PX P1 P2 [P3]
  local px=$1; shift
  printf 'pool:\n  listen: 127.0.0.1:%s\n  hash: md5\n  distribution: ketama\n  timeout: 250\n  preconnect: true\n  servers:\n' "$px"
  local i=1
  for p in "$@"; do printf '   - 127.0.0.1:%s:1 p%s\n' "$p" "$i"; i=$((i + 1)); done
}

run_one() {  # run_one TARGET
  local target=$1 name="$1.scale"
  local P1 P2 P3 BK PX; P1=$(port); P2=$(port); P3=$(port); BK=$(port); PX=$(port)
  for p in "$P1" "$P2" "$P3"; do memcached_on "$p"; pids+=($!); done
  for p in "$P1" "$P2" "$P3"; do wait_port "$p"; done
  local proxy
  if [ "$target" = memha ]; then
    memcached_on "$BK"; pids+=($!); wait_port "$BK"
    topology_json 1 "$PX" "$BK" "$P1" "$P2" > "$out/$name.topology.json"
    "${server[@]}" "$sidecar" --config "$out/$name.topology.json" --no-admin 2>"$out/logs/$name.sidecar.log" &
    proxy=$!; pids+=($!)
  else
    nutcracker_yml "$PX" "$P1" "$P2" > "$out/$name.nutcracker.yml"
    "${server[@]}" nutcracker -c "$out/$name.nutcracker.yml" -s "$(port)" -o "$out/logs/$name.nutcracker.log" &
    proxy=$!
  fi
  wait_port "$PX"
  "${client[@]}" "$loadgen" --server "127.0.0.1:$PX" --connections 20 --rate "$rate" --duration "$duration" \
    --keys 5000 --get-ratio 0.895 --delete-ratio 0.005 --value-size 100 --verify --read-through --prefill \
    --timeout-ms 1000 --progress --label "$name" --json "$out/$name.json" 2>"$out/logs/$name.loadgen.log" &
  local lg=$!
  for _ in $(seq 300); do grep -qs MAIN_START "$out/logs/$name.loadgen.log" && break; sleep 0.1; done
  local start; start=$(grep -oE 'unix_ms=[0-9]+' "$out/logs/$name.loadgen.log" | cut -d= -f2)
  local t_out t_in
  for step in out in; do
    local at=$out_at; [ "$step" = in ] && at=$in_at
    sleep "$(awk "BEGIN{d = ($start + $at * 1000 - $(now_ms)) / 1000; print (d > 0 ? d : 0)}")"
    local members=("$P1" "$P2"); [ "$step" = out ] && members+=("$P3")
    if [ "$target" = memha ]; then
      local v=2; [ "$step" = in ] && v=3
      topology_json "$v" "$PX" "$BK" "${members[@]}" > "$out/$name.topology.json.new"
      mv "$out/$name.topology.json.new" "$out/$name.topology.json"
      kill -HUP "$proxy"
    else
      nutcracker_yml "$PX" "${members[@]}" > "$out/$name.nutcracker.yml"
      kill "$proxy"; wait "$proxy" 2>/dev/null || true
      "${server[@]}" nutcracker -c "$out/$name.nutcracker.yml" -s "$(port)" -o "$out/logs/$name.nutcracker.log" &
      proxy=$!
    fi
    if [ "$step" = out ]; then t_out=$(now_ms); else t_in=$(now_ms); fi
  done
  wait $lg
  [ "$target" = twemproxy ] && pids+=("$proxy")
  echo "{\"target\":\"$target\",\"out_s\":$(awk "BEGIN{print ($t_out - $start) / 1000}"),\"in_s\":$(awk "BEGIN{print ($t_in - $start) / 1000}"),\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" > "$out/$name.events.json"
  stop_all
  echo "chaos_scale.sh: $name: $(tail -1 "$out/logs/$name.loadgen.log")" >&2
}

for target in memha twemproxy; do run_one "$target"; done
args=("$out"); [ "$docs" = 1 ] && args+=(--docs "$repo/docs/BENCHMARKS.md")
/usr/bin/python3 "$repo/bench/chaos_scale_report.py" "${args[@]}"
