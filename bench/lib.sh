# shellcheck shell=bash disable=SC2034  # sets variables for the sourcing script
# Sourced by bench/run.sh, chaos.sh, profile.sh: picks the binaries to measure and describes the sidecar build.
#   MEMHA_SIDECAR / MEMHA_LOADGEN   measure these binaries as they are;
#   MEMHA_SIDECAR_REV=<git rev>     measure the memha-sidecar of that commit: `git archive` of it, built Release
#                                   in build-bench/rev-<hash>/ (the figure then names exactly what was measured);
#   otherwise                       (re)build the working tree's memha-sidecar and memha-loadgen in build-bench/
#                                   (Release); the figure names the last sidecar commit plus uncommitted files.
# Sets: sidecar_rev (with MEMHA_SIDECAR_REV), sidecar, loadgen, relay (memha-bench-relay beside the loadgen, or MEMHA_RELAY), sidecar_commit, sidecar_dirty (uncommitted files under sidecar/ in what was built).
bench_binaries() {
  local repo=$1 targets=()
  loadgen=${MEMHA_LOADGEN:-}
  sidecar=${MEMHA_SIDECAR:-}
  [ -z "$loadgen" ] && targets+=(memha-loadgen memha-bench-relay)
  [ -z "$sidecar" ] && [ -z "${MEMHA_SIDECAR_REV:-}" ] && targets+=(memha-sidecar)
  if ((${#targets[@]})); then
    [ -f "$repo/build-bench/build.ninja" ] ||
      cmake -S "$repo" -B "$repo/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    ninja -C "$repo/build-bench" "${targets[@]}" >/dev/null ||
      echo "bench: build of ${targets[*]} failed; measuring the binaries already in build-bench/" >&2
  fi
  loadgen=${loadgen:-$repo/build-bench/memha-loadgen}
  relay=${MEMHA_RELAY:-$(dirname "$loadgen")/memha-bench-relay}
  sidecar_commit=$(git -C "$repo" log -1 --format=%h -- sidecar 2>/dev/null || echo unknown)
  sidecar_dirty=$(git -C "$repo" status --porcelain -- sidecar 2>/dev/null | wc -l)
  if [ -n "$sidecar" ] && [ -z "${MEMHA_SIDECAR_REV:-}" ]; then
    :
  elif [ -n "${MEMHA_SIDECAR_REV:-}" ]; then
    local rev dir
    rev=$(git -C "$repo" rev-parse --short "$MEMHA_SIDECAR_REV")
    dir=$repo/build-bench/rev-$rev
    if [ -n "$sidecar" ]; then
      :  # given together with its revision (run.sh passes both to chaos.sh and profile.sh)
    elif [ ! -x "$dir/build/sidecar/memha-sidecar" ]; then
      rm -rf "$dir/src"; mkdir -p "$dir/src"
      git -C "$repo" archive "$rev" | tar -x -C "$dir/src"
      cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
      ninja -C "$dir/build" memha-sidecar >/dev/null
    fi
    sidecar=${sidecar:-$dir/build/sidecar/memha-sidecar}
    sidecar_commit=$(git -C "$repo" log -1 --format=%h "$rev" -- sidecar)
    sidecar_rev=$rev
    sidecar_dirty=0
  else
    sidecar=$repo/build-bench/sidecar/memha-sidecar
  fi
  local b
  for b in "$sidecar" "$loadgen" "$relay"; do [ -x "$b" ] || { echo "bench: missing $b" >&2; return 1; }; done
}
