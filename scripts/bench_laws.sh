#!/usr/bin/env bash
# Benchmark eqd's control law against peer laws and the perfect-foresight bound, then draw the plots.
# Builds bench_laws in Release (build dir: $BUILD_DIR, default build-bench), runs it on
# tests/bench/scenarios/*.yaml (each peer swept over its aggressiveness, eqd over tau_s), prints the
# tables and the at-equal-actuation comparison, and writes docs/img/laws_*.png with gnuplot. Scenarios with a
# target schedule or a tariff (peak_*.yaml, issue #17) get the peak-shaving table instead (no plot).
# Usage: scripts/bench_laws.sh [SCENARIO.yaml...]     (about 13 min of CPU after the build: 49 law settings
#        x 13 scenarios, one LP and six replays of it per scenario, and the 4 peak-shaving scenarios; 9.5 min
#        wall on 2 cores beside another build, 2026-12-04)
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
# bench_laws writes points_<scenario>_<family>.dat: travel_kW flips_per_hour exchange_ratio "tag", one
# line per setting in sweep order (least to most aggressive), so a line through them is the sweep.
for none in "$out"/points_*_none.dat; do
  name=$(basename "$none" _none.dat); name=${name#points_}
  p="$out/points_${name}"
  gnuplot <<GP
set terminal pngcairo size 1400,680 font "DejaVu Sans,10" noenhanced
set output "$img/laws_$name.png"
set multiplot layout 1,2 title "$name: grid exchange versus actuation; lines = sweeps (peers detuned, eqd over tau 10-20 s); lower left is better"
set grid
set logscale y
set format y "%g"
set ytics (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1)
set ylabel "grid exchange / no equalization (log)"
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "#888888"
set label 1 "none (no equalization)" at graph 0.01, first 1.12 tc rgb "#888888" font ",9"
# The y range follows the laws; a bound far below them is drawn on the bottom edge (down-pointing
# triangle) with its value, so that it does not squeeze the laws into a sliver.
lawmin = 1.0
do for [f in "evcc pid pid_lp tracker eqd eqdf adaptive adaptivef learned planned statfc whatif"] {
  stats "${p}_".f.".dat" using 3 nooutput
  lawmin = STATS_min < lawmin ? STATS_min : lawmin
}
ymin = lawmin * 0.7
set yrange [ymin : 1.3]
bound_y(y) = y < ymin ? ymin * 1.03 : y
bound_pt(y) = y < ymin ? 11 : 3
bound_tag(y) = y < ymin ? sprintf("bound %.3f (below)", y) : "bound"
# Each panel carries half of the key, below it, so both panels keep the same height.
set bmargin 10
set key below horizontal maxcols 2 font ",8" spacing 1.1 width -4
# Colours: evcc orange, pid red, pid+low-pass purple, tracker grey, eqd blue, adaptive black, what-ifs sky blue,
# bound dark green triangles.
set xlabel "setpoint travel (kW over the hour, log; primary actuation axis)"
set logscale x
plot "${p}_evcc.dat" using (\$1 > 0 ? \$1 : NaN):3 with linespoints lw 1.5 pt 5 ps 1.1 lc rgb "#e69f00" title "evcc-step, interval 120/60/30/10 s", \
     "" using (\$1 > 0 ? \$1 : NaN):3:4 with labels offset 0,-0.9 font ",8" tc rgb "#e69f00" notitle, \
     "${p}_pid.dat" using 1:3 with linespoints lw 1.5 pt 7 ps 1.1 lc rgb "#d55e00" title "pid, gains x k", \
     "" using 1:3:4 with labels offset 0,0.9 font ",8" tc rgb "#d55e00" notitle, \
     "${p}_pid_lp.dat" using 1:3 with linespoints lw 1.2 dt 2 pt 6 ps 1.0 lc rgb "#cc79a7" title "pid + 5 s low-pass, gains x k", \
     "${p}_eqdf.dat" using 1:3 with linespoints lw 2.5 pt 9 ps 1.6 lc rgb "#0072b2" title "damped, announced schedules, tau 20/15/10 s", \
     "" using 1:3:4 with labels offset 1.6,0 font ",9" tc rgb "#0072b2" notitle, \
     "${p}_eqd.dat" using 1:3 with linespoints lw 1.8 dt 2 pt 9 ps 1.2 lc rgb "#0072b2" title "damped, measured only, tau 20/15/10 s", \
     "${p}_tracker.dat" using 1:3 with linespoints lw 1.5 dt 3 pt 13 ps 1.1 lc rgb "#999999" title "tracker (1st order), tau 30/20/15/10/5 s", \
     "" using 1:3:4 with labels offset 0,-0.9 font ",8" tc rgb "#999999" notitle, \
     "${p}_adaptive.dat" using 1:3 with linespoints lw 2.2 dt 2 pt 11 ps 1.4 lc rgb "#000000" title "adaptive, measured only, tau 20/15/10 s", \
     "${p}_adaptivef.dat" using 1:3 with linespoints lw 2.8 pt 11 ps 1.7 lc rgb "#000000" title "adaptive, announced, tau 20/15/10 s", \
     "${p}_learned.dat" using 1:3 with linespoints lw 2.8 pt 15 ps 1.7 lc rgb "#8c510a" title "adaptive, learned (nothing announced), tau 20/15/10 s; pattern", \
     "" using 1:3:4 with labels offset 1.6,0 font ",8" tc rgb "#8c510a" notitle, \
     "${p}_planned.dat" using 1:3 with points pt 65 ps 2.0 lw 2 lc rgb "#e41a1c" title "planned (receding horizon), announced / learned (0.2 s), announced (shipped), tau 15 s", \
     "" using 1:3:4 with labels offset 1.6,0.6 font ",8" tc rgb "#e41a1c" notitle, \
     "${p}_statfc.dat" using 1:3 with points pt 7 ps 2.0 lc rgb "#e41a1c" title "planned, learned else statistical (shipped, nothing announced) / statistical, tau 15 s", \
     "" using 1:3:4 with labels offset 1.6,-0.6 font ",8" tc rgb "#e41a1c" notitle, \
     "${p}_whatif.dat" using 1:3 with points pt 4 ps 1.1 lc rgb "#56b4e9" notitle, \
     "" using 1:3:4 with labels offset -1.2,-0.9 font ",8" tc rgb "#56b4e9" notitle, \
     "${p}_bound.dat" using 1:(bound_y(\$3)):(bound_pt(\$3)) with points pt variable ps 2.2 lw 2 lc rgb "#009e73" notitle, \
     "" using 1:(bound_y(\$3)):(bound_tag(\$3)) with labels offset 0,1.2 font ",8" tc rgb "#009e73" notitle
unset logscale x
set xlabel "direction flips per hour (secondary actuation axis)"
plot "${p}_evcc.dat" using 2:3 with linespoints lw 1.5 pt 5 ps 1.1 lc rgb "#e69f00" notitle, \
     "${p}_pid.dat" using 2:3 with linespoints lw 1.5 pt 7 ps 1.1 lc rgb "#d55e00" notitle, \
     "" using 2:3:4 with labels offset 0,0.9 font ",8" tc rgb "#d55e00" notitle, \
     "${p}_pid_lp.dat" using 2:3 with linespoints lw 1.2 dt 2 pt 6 ps 1.0 lc rgb "#cc79a7" notitle, \
     "${p}_eqdf.dat" using 2:3 with linespoints lw 2.5 pt 9 ps 1.6 lc rgb "#0072b2" notitle, \
     "" using 2:3:4 with labels offset 1.6,0 font ",9" tc rgb "#0072b2" notitle, \
     "${p}_eqd.dat" using 2:3 with linespoints lw 1.8 dt 2 pt 9 ps 1.2 lc rgb "#0072b2" notitle, \
     "${p}_tracker.dat" using 2:3 with linespoints lw 1.5 dt 3 pt 13 ps 1.1 lc rgb "#999999" notitle, \
     "${p}_adaptive.dat" using 2:3 with linespoints lw 2.2 dt 2 pt 11 ps 1.4 lc rgb "#000000" notitle, \
     "${p}_adaptivef.dat" using 2:3 with linespoints lw 2.8 pt 11 ps 1.7 lc rgb "#000000" notitle, \
     "${p}_learned.dat" using 2:3 with linespoints lw 2.8 pt 15 ps 1.7 lc rgb "#8c510a" notitle, \
     "${p}_planned.dat" using 2:3 with points pt 65 ps 2.0 lw 2 lc rgb "#e41a1c" notitle, \
     "${p}_statfc.dat" using 2:3 with points pt 7 ps 2.0 lc rgb "#e41a1c" notitle, \
     "${p}_whatif.dat" using 2:3 with points pt 4 ps 1.1 lc rgb "#56b4e9" title "what-ifs: damped dwell0, bare, nogate, deadband0; 2-stage ff", \
     NaN with points pt 3 ps 2.2 lw 2 lc rgb "#009e73" title "bound (LP, foresight)", \
     "${p}_bound.dat" using 2:(bound_y(\$3)):(bound_pt(\$3)) with points pt variable ps 2.2 lw 2 lc rgb "#009e73" notitle, \
     "" using 2:(bound_y(\$3)):(bound_tag(\$3)) with labels offset -2,1.2 font ",8" tc rgb "#009e73" notitle
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
     "" using 1:6 with lines lw 1.5 dt 2 lc rgb "#0072b2" title "net, damped (measured only)", \
     "" using 1:10 with lines lw 2 lc rgb "#0072b2" title "net, damped (announced schedules)", \
     "" using 1:12 with lines lw 1.5 dt 2 lc rgb "#56b4e9" title "net, adaptive (measured only)", \
     "" using 1:13 with lines lw 2 lc rgb "#56b4e9" title "net, adaptive (announced, shipped)", \
     "" using 1:9 with lines lw 1 dt 2 lc rgb "#009e73" title "net, bound (foresight)"
GP
fi
echo "plots: $img/laws_*.png"
