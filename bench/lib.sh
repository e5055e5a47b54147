# shellcheck shell=bash disable=SC2034  # sets variables for the sourcing script
# Sourced by bench/run.sh, chaos.sh, profile.sh: picks the binaries to measure and describes the sidecar build.
#   MEMHA_SIDECAR / MEMHA_LOADGEN   measure these binaries as they are;
#   MEMHA_SIDECAR_REV=<git rev>     measure the memha-sidecar of that commit: `git archive` of it, built Release
#                                   in build-bench/rev-<hash>/ (the figure then names exactly what was measured);
#   otherwise                       (re)build the working tree's memha-sidecar and memha-loadgen in build-bench/
#                                   (Release); the figure names the last sidecar commit plus uncommitted files.
#   MEMHA_BASELINE_REV=<git rev>    (bench_baseline) also measure the memha-sidecar of that commit, built the same
#                                   way, as the target "memha_before"; MEMHA_BASELINE takes a given binary instead.
#   MEMHA_BENCH_JOBS                parallel build jobs (default 2).
# Sets: sidecar_rev (with MEMHA_SIDECAR_REV), sidecar, loadgen, relay (memha-bench-relay beside the loadgen, or MEMHA_RELAY), sidecar_commit, sidecar_dirty (uncommitted files under sidecar/ in what was built).

# bench_rev_sidecar REPO REV: builds (once) the memha-sidecar of commit REV from `git archive`, Release, in
# build-bench/rev-<hash>/, and prints the binary's path.
bench_rev_sidecar() {
  local repo=$1 rev dir
  rev=$(git -C "$repo" rev-parse --short "$2") || return 1
  dir=$repo/build-bench/rev-$rev
  if [ ! -x "$dir/build/sidecar/memha-sidecar" ]; then
    echo "bench: building memha-sidecar of $rev (git archive, Release) in $dir" >&2
    rm -rf "$dir/src"; mkdir -p "$dir/src"
    git -C "$repo" archive "$rev" | tar -x -C "$dir/src"
    cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || return 1
    ninja -C "$dir/build" -j "${MEMHA_BENCH_JOBS:-2}" memha-sidecar >/dev/null || return 1
  fi
  echo "$dir/build/sidecar/memha-sidecar"
}

bench_binaries() {
  local repo=$1 targets=()
  loadgen=${MEMHA_LOADGEN:-}
  sidecar=${MEMHA_SIDECAR:-}
  [ -z "$loadgen" ] && targets+=(memha-loadgen memha-bench-relay)
  [ -z "$sidecar" ] && [ -z "${MEMHA_SIDECAR_REV:-}" ] && targets+=(memha-sidecar)
  if ((${#targets[@]})); then
    [ -f "$repo/build-bench/build.ninja" ] ||
      cmake -S "$repo" -B "$repo/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    ninja -C "$repo/build-bench" -j "${MEMHA_BENCH_JOBS:-2}" "${targets[@]}" >/dev/null ||
      echo "bench: build of ${targets[*]} failed; measuring the binaries already in build-bench/" >&2
  fi
  loadgen=${loadgen:-$repo/build-bench/memha-loadgen}
  relay=${MEMHA_RELAY:-$(dirname "$loadgen")/memha-bench-relay}
  sidecar_commit=$(git -C "$repo" log -1 --format=%h -- sidecar 2>/dev/null || echo unknown)
  sidecar_dirty=$(git -C "$repo" status --porcelain -- sidecar 2>/dev/null | wc -l)
  if [ -n "$sidecar" ] && [ -z "${MEMHA_SIDECAR_REV:-}" ]; then
    :
  elif [ -n "${MEMHA_SIDECAR_REV:-}" ]; then
    local rev
    rev=$(git -C "$repo" rev-parse --short "$MEMHA_SIDECAR_REV")
    # given together with its revision (run.sh passes both to chaos.sh and profile.sh), or built here
    [ -n "$sidecar" ] || sidecar=$(bench_rev_sidecar "$repo" "$rev") || return 1
    sidecar_commit=$(git -C "$repo" log -1 --format=%h "$rev" -- sidecar)
    sidecar_rev=$rev
    sidecar_dirty=0
  else
    sidecar=$repo/build-bench/sidecar/memha-sidecar
  fi
  local b
  for b in "$sidecar" "$loadgen" "$relay"; do [ -x "$b" ] || { echo "bench: missing $b" >&2; return 1; }; done
}

# bench_baseline REPO [REV]: the sidecar to compare against (target "memha_before"): REV, else MEMHA_BASELINE_REV;
# MEMHA_BASELINE (a binary) is taken as it is, named by the revision if one is given. Sets baseline (empty when
# none is asked for), baseline_rev, baseline_commit (last commit touching sidecar/ at that revision).
bench_baseline() {
  local repo=$1 rev=${2:-${MEMHA_BASELINE_REV:-}}
  baseline=${MEMHA_BASELINE:-} baseline_rev="" baseline_commit=""
  [ -n "$baseline" ] || [ -n "$rev" ] || return 0
  if [ -n "$rev" ]; then
    baseline_rev=$(git -C "$repo" rev-parse --short "$rev") || return 1
    baseline_commit=$(git -C "$repo" log -1 --format=%h "$baseline_rev" -- sidecar)
    [ -n "$baseline" ] || baseline=$(bench_rev_sidecar "$repo" "$baseline_rev") || return 1
  else
    baseline_commit=unknown
  fi
  [ -x "$baseline" ] || { echo "bench: missing baseline $baseline" >&2; return 1; }
}

# Shared by the chaos scripts: a free loopback port, waiting for a listener, milliseconds since the epoch, and
# the client/server core split (client on core 0, servers on core 1; one core: both on 0).
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "$(basename "$0"): nothing listens on $1" >&2; return 1
}
now_ms() { date +%s%3N; }
bench_cores() {  # sets client=(taskset ...) server=(taskset ...) user=(-u nobody when root)
  if [ "$(nproc)" -ge 2 ]; then client=(taskset -c 0); server=(taskset -c 1); else client=(taskset -c 0); server=(taskset -c 0); fi
  user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
}
