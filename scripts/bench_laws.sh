#!/usr/bin/env bash
# Benchmark eqd's control law against peer laws and the perfect-foresight bound, then draw the plots.
# Builds bench_laws in Release (build dir: $BUILD_DIR, default build-bench), runs it on
# tests/bench/scenarios/*.yaml, prints the tables and writes docs/img/laws_*.png with gnuplot.
# Usage: scripts/bench_laws.sh [SCENARIO.yaml...]     (about 20 s on 2 cores, after the build)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
out=$build/bench-laws
img=$root/docs/img

command -v gnuplot >/dev/null || { echo "bench_laws.sh: gnuplot missing (apt-get install gnuplot-nox)" >&2; exit 1; }
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEQD_CORE_ONLY=ON >/dev/null
fi
cmake --build "$build" --target bench_laws -j2 >/dev/null
[[ -x $build/tests/bench/bench_laws ]] || { echo "bench_laws.sh: bench_laws not built (libglpk-dev missing?)" >&2; exit 1; }

if [[ $# -gt 0 ]]; then scenarios=("$@"); else scenarios=("$root"/tests/bench/scenarios/*.yaml); fi
"$build/tests/bench/bench_laws" --out "$out" "${scenarios[@]}"

mkdir -p "$img"
# One point file per scenario: law travel_kW exchange_ratio flips_per_hour rms_W (space separated).
awk -F, -v dir="$out" 'NR > 1 { print $2, $8, $3, $7, $5 > (dir "/points_" $1 ".dat") }' "$out/results.csv"

for pts in "$out"/points_*.dat; do
  name=$(basename "$pts" .dat); name=${name#points_}
  gnuplot <<GP
set terminal pngcairo size 1200,480 font "DejaVu Sans,10" noenhanced
set output "$img/laws_$name.png"
set multiplot layout 1,2 title "$name: residual versus actuation (one point per law; lower left is better)"
set grid
set key off
set offsets graph 0.05, graph 0.25, graph 0.08, graph 0.08
set style line 1 pt 7 ps 1.6
# Colour by law: none grey, evcc orange, pid red, eqd blue, what-ifs light blue, bound green.
col(l) = l eq "none" ? 0x888888 : l eq "evcc" ? 0xe69f00 : l eq "pid" ? 0xd55e00 : l eq "eqd" ? 0x0072b2 : l eq "bound" ? 0x009e73 : 0x56b4e9
set xlabel "setpoint travel (kW, sum of |change| of the total command over the hour)"
set ylabel "grid exchange / no equalization"
set yrange [0:*]
plot "$pts" using 2:3:(col(stringcolumn(1))) with points ls 1 lc rgb variable, \
     "" using 2:3:1 with labels offset 0.8,0.6 left font ",9"
set xlabel "direction flips per hour"
set ylabel "RMS residual (W)"
plot "$pts" using 4:5:(col(stringcolumn(1))) with points ls 1 lc rgb variable, \
     "" using 4:5:1 with labels offset 0.8,0.6 left font ",9"
unset multiplot
GP
done

# Time series of the fast-load scenario: where a damped causal law meets second-scale loads.
series=$out/series_drive_cycle.csv
if [[ -f $series ]]; then
  gnuplot <<GP
set terminal pngcairo size 1200,560 font "DejaVu Sans,10" noenhanced
set output "$img/laws_timeseries_drive_cycle.png"
set datafile separator ","
set title "drive_cycle, t = 1200..1500 s: free power and the grid's net power under each law (bus side)"
set xlabel "time (s)"
set ylabel "power (W, + = drawn from the grid)"
set grid
set key below horizontal
set xrange [1200:1500]
plot "$series" using 1:2 with lines lw 2.5 lc rgb "#888888" title "free (no equalization)", \
     "" using 1:4 with lines lw 1.2 lc rgb "#e69f00" title "net, evcc-step", \
     "" using 1:5 with lines lw 1.2 lc rgb "#d55e00" title "net, pid", \
     "" using 1:6 with lines lw 2 lc rgb "#0072b2" title "net, eqd", \
     "" using 1:9 with lines lw 1 dt 2 lc rgb "#009e73" title "net, bound (foresight)"
GP
fi
echo "plots: $img/laws_*.png"
