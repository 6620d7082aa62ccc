#!/usr/bin/env bash
# The default-law comparison on scenarios nobody tuned on: every benchmark scenario (the peak ones
# excepted) with its random seed changed (seed N -> 9N, the demo rig's too), run by bench_laws with the
# travel-weight columns (docs/control-benchmark.md, "Default law for a lab that announces nothing",
# "Held out"). The copies live in a temporary tree of the same depth, so that the scenarios' relative
# paths (../../../config/rigs/...) resolve to this checkout's profiles and to the re-seeded demo rig.
# Prints the default-law table and issue #14's learned-forecast tables (adaptive and shipped law).
# Usage: scripts/bench_reseeded.sh [OUT_DIR [SCENARIO_NAME...]]   (default: every non-peak scenario; needs
#        build-bench/tests/bench/bench_laws: scripts/bench_laws.sh builds it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build-bench/bench-reseeded}
shift || true
only=" $* "
BENCH=$ROOT/build-bench/tests/bench/bench_laws
[ -x "$BENCH" ] || { echo "bench_reseeded: $BENCH is missing (run scripts/bench_laws.sh once)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/config/rigs" "$TMP/t/b/s" "$OUT"
ln -s "$ROOT/config/rigs/profiles" "$TMP/config/rigs/profiles"
sed 's/^seed: \([0-9]*\)/seed: 9\1/' "$ROOT/config/rigs/demo.yaml" >"$TMP/config/rigs/demo.yaml"
grep -q '^seed: 9' "$TMP/config/rigs/demo.yaml" || { echo "bench_reseeded: demo rig has no seed line" >&2; exit 1; }
for f in "$ROOT"/tests/bench/scenarios/*.yaml; do
  n=$(basename "$f" .yaml)
  case $n in peak_*) continue ;; esac
  [ "$only" = "  " ] || [[ $only == *" $n "* ]] || continue
  # The name keeps its slow-scenario meaning for bench_laws (kSlowScenarios): same name, new seed.
  sed 's/^  seed: \([0-9]*\)/  seed: 9\1/' "$f" >"$TMP/t/b/s/$n.yaml"
done
# --jobs 2: the 2-core build machine; the bound is not part of this comparison.
"$BENCH" --jobs "${JOBS:-2}" --no-bound \
  --also planned_learned_stat_core_tw0.2,planned_learned_stat_core_tw6,planned_learned_stat_core_tw10,planned_learned_stat_core_tw12,planned_learned_stat_core_tw16 \
  --out "$OUT" "$TMP"/t/b/s/*.yaml | tee "$OUT/out.txt" |
  sed -n -e '/## Goal: learned forecasts/,/^$/p' -e '/^| scenario | measured only/,/^$/p' -e '/## Default law/,/best by/p'
