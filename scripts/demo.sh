#!/usr/bin/env bash
# memha demo: a primary memcached, a backup memcached and the sidecar on 127.0.0.1, with read-through cache
# traffic (scripts/demo_traffic.py) while the primary is killed (kill -9) and then restarted empty.
#
#   scripts/demo.sh          # ~25 s; exit status 0 only if no client saw an error and the hit ratio after the
#                            # restart stayed >= 90%
#
# Environment: MEMHA_SIDECAR (binary; default build/sidecar/memha-sidecar, built if missing), PYTHON
# (default /usr/bin/python3, needs pymemcache), MEMCACHED (default memcached), WARMUP_S / OUTAGE_S /
# RESTART_S (phase lengths, default 6 / 6 / 10), SIDECAR_ARGS (extra sidecar flags, e.g. --no-warmup to see
# the hit ratio drop after the restart), KEEP_TMP=1 (keep the temp dir with the logs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIDECAR="${MEMHA_SIDECAR:-$ROOT/build/sidecar/memha-sidecar}"
PYTHON="${PYTHON:-/usr/bin/python3}"
MEMCACHED="${MEMCACHED:-memcached}"
WARMUP_S="${WARMUP_S:-6}"
OUTAGE_S="${OUTAGE_S:-6}"
RESTART_S="${RESTART_S:-10}"

say() { printf '%s\n' "$*"; }
banner() { printf '\n*** %s ***\n\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

command -v "$MEMCACHED" >/dev/null || die "memcached not found (scripts/install-deps.sh installs it)"
"$PYTHON" -c 'import pymemcache' 2>/dev/null || die "$PYTHON cannot import pymemcache (apt-get install python3-pymemcache)"

if [[ ! -x "$SIDECAR" ]]; then
  say "demo: building the sidecar into $ROOT/build ..."
  cmake -S "$ROOT" -B "$ROOT/build" -G Ninja >/dev/null
  ninja -C "$ROOT/build" -j2 >/dev/null
  [[ -x "$SIDECAR" ]] || die "build did not produce $SIDECAR"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/memha-demo.XXXXXX")"
PIDS=()
TRAFFIC_PID=""
PRIMARY_PID=""
DEMO_OK=0

# Stop a process we started (by pid) and wait until it is gone: SIGTERM, then SIGKILL after 2 s.
stop_pid() {
  local i
  kill "$1" 2>/dev/null || return 0
  for ((i = 0; i < 40; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -9 "$1" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i
  [[ -n "$TRAFFIC_PID" ]] && stop_pid "$TRAFFIC_PID"
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do  # the sidecar before the memcacheds
    stop_pid "${PIDS[i]}"
  done
  if [[ $DEMO_OK != 1 && -s "$TMP/sidecar.log" ]]; then
    say ""
    say "demo: last 20 lines of the sidecar's stderr:"
    tail -n 20 "$TMP/sidecar.log" | sed 's/^/  /'
  fi
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    say "demo: logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Four distinct free loopback ports: sidecar, primary, backup, admin.
read -r PORT P_PORT B_PORT ADMIN_PORT < <("$PYTHON" -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
PRIMARY="127.0.0.1:$P_PORT"
BACKUP="127.0.0.1:$B_PORT"

MC_USER=()
[[ "$(id -u)" == 0 ]] && MC_USER=(-u nobody)

# Background processes are disowned so that bash prints no "Killed" notice for them; stop_pid polls instead.
start_memcached() {  # port logfile -> sets LAST_PID
  "$MEMCACHED" "${MC_USER[@]}" -l 127.0.0.1 -U 0 -p "$1" -m 64 >>"$2" 2>&1 &
  LAST_PID=$!
  disown "$LAST_PID"
  PIDS+=("$LAST_PID")
}

wait_tcp() {  # port pid what
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$2" 2>/dev/null || die "$3 exited at start"
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  die "$3 is not listening on 127.0.0.1:$1"
}

wait_ready() {  # admin port, sidecar pid
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$2" 2>/dev/null || die "the sidecar exited at start"
    "$PYTHON" - "$1" <<'EOF' 2>/dev/null && return 0
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=0.5).read()
EOF
    sleep 0.1
  done
  die "the sidecar is not ready on http://127.0.0.1:$1/readyz"
}

# The traffic generator switches phase on its one-second boundaries; asking half a second early makes each
# phase last exactly N of its seconds.
sleep_phase() { sleep "$(($1 - 1)).5"; }

set_phase() {  # label: tell the traffic generator, wait until it has switched (at its next one-second boundary)
  printf '%s\n' "$1" >"$TMP/phase.new"
  mv "$TMP/phase.new" "$TMP/phase"
  [[ "$1" == done ]] && return 0
  local i
  for ((i = 0; i < 300; i++)); do
    [[ "$(cat "$TMP/ack" 2>/dev/null)" == "$1" ]] && return 0
    kill -0 "$TRAFFIC_PID" 2>/dev/null || die "the traffic generator exited early"
    sleep 0.01
  done
  die "the traffic generator did not switch to phase $1"
}

start_memcached "$P_PORT" "$TMP/primary.log"; PRIMARY_PID=$LAST_PID
start_memcached "$B_PORT" "$TMP/backup.log"; BACKUP_PID=$LAST_PID
wait_tcp "$P_PORT" "$PRIMARY_PID" "primary memcached"
wait_tcp "$B_PORT" "$BACKUP_PID" "backup memcached"

"$SIDECAR" -p "$PORT" -l 127.0.0.1 -s "$PRIMARY" -b "$BACKUP" --admin-address 127.0.0.1 --admin-port "$ADMIN_PORT" \
  ${SIDECAR_ARGS:-} 2>"$TMP/sidecar.log" >&2 &
SIDECAR_PID=$!
disown "$SIDECAR_PID"
PIDS+=("$SIDECAR_PID")
wait_ready "$ADMIN_PORT" "$SIDECAR_PID"

say "memha demo"
say "  sidecar   127.0.0.1:$PORT (pid $SIDECAR_PID), metrics http://127.0.0.1:$ADMIN_PORT/metrics"
say "  primary   $PRIMARY (memcached pid $PRIMARY_PID)"
say "  backup    $BACKUP (memcached pid $BACKUP_PID)"
say "  traffic   2000 keys, read-through (get; on a miss set), ~10% sets, <= 2000 ops/s"
say "  phases    warm-up ${WARMUP_S}s, primary killed ${OUTAGE_S}s, primary restarted empty ${RESTART_S}s"
say ""

printf 'warm-up\n' >"$TMP/phase"
"$PYTHON" "$ROOT/scripts/demo_traffic.py" --port "$PORT" --admin-port "$ADMIN_PORT" --primary "$PRIMARY" \
  --phase-file "$TMP/phase" --ack-file "$TMP/ack" &
TRAFFIC_PID=$!

sleep_phase "$WARMUP_S"
set_phase outage
banner "kill -9 the primary memcached (pid $PRIMARY_PID, $PRIMARY): reads fail over to the backup"
kill -9 "$PRIMARY_PID"
stop_pid "$PRIMARY_PID"

sleep_phase "$OUTAGE_S"
set_phase restarted
banner "restart the primary EMPTY on $PRIMARY: the sidecar replays missed writes, then warms it from the backup"
start_memcached "$P_PORT" "$TMP/primary.log"; PRIMARY_PID=$LAST_PID

sleep_phase "$RESTART_S"
set_phase done
rc=0
wait "$TRAFFIC_PID" || rc=$?
TRAFFIC_PID=""

kill -0 "$SIDECAR_PID" 2>/dev/null || { say "  FAIL: the sidecar is no longer running"; rc=1; }
say "  sidecar log, member events:"
grep 'component=member' "$TMP/sidecar.log" | sed 's/^/    /' | tail -n 12 || say "    (none)"
say ""
if [[ $rc == 0 ]]; then
  DEMO_OK=1
  say "demo: PASS (no client errors; hit ratio after the restart >= 90%)"
else
  say "demo: FAIL"
fi
exit "$rc"
