#!/usr/bin/env bash
# First throughput comparison (issue "Sidecar data path"), kept for history: superseded by bench/run.sh (docs/BENCHMARKS.md).
# memcaslap (libmemcached-tools), 50 connections, default 90/10 get/set, 5 s per round, rounds interleaved x3.
# Client on core 0; memcached, memha-sidecar and nutcracker on core 1. memha mirrors writes to a backup.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${MEMHA_SIDECAR:-$repo/build/sidecar/memha-sidecar}
tmp=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MC=$(port); MC2=$(port); SC=$(port); NC=$(port); NCS=$(port)
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
taskset -c 1 memcached "${user[@]}" -l 127.0.0.1 -p "$MC" -U 0 -t 1 -m 256 & pids+=($!)
taskset -c 1 memcached "${user[@]}" -l 127.0.0.1 -p "$MC2" -U 0 -t 1 -m 256 & pids+=($!)
sleep 0.3
taskset -c 1 "$bin" -p "$SC" -s "127.0.0.1:$MC" -b "127.0.0.1:$MC2" --no-admin 2>"$tmp/sidecar.log" & pids+=($!)
printf 'pool:\n  listen: 127.0.0.1:%s\n  hash: md5\n  distribution: ketama\n  auto_eject_hosts: true\n  servers:\n   - 127.0.0.1:%s:1 primary\n' "$NC" "$MC" > "$tmp/nc.yml"
taskset -c 1 nutcracker -c "$tmp/nc.yml" -s "$NCS" -o "$tmp/nc.log" & pids+=($!)
sleep 0.5
for round in 1 2 3; do
  for target in direct:$MC memha:$SC twemproxy:$NC; do
    tps=$(taskset -c 0 memcaslap -s "127.0.0.1:${target##*:}" -t 5s -c 50 -T 1 2>&1 | grep -E '^Run time' | tail -1 |
          grep -oE 'TPS: [0-9]+' | cut -d' ' -f2)
    echo "round=$round target=${target%%:*} ops_per_s=$tps"
  done
done
