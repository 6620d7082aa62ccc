#!/usr/bin/env bash
# Benchmark: time from eqd's start to the first control cycle with every controller connected,
# (a) from the connection cache, (b) from discovery alone (empty state directory), with a real
# avahi-daemon inside network/mount/PID namespaces this script creates (never the machine's own).
# Usage: discovery_bench.sh EQSIM EQD EQCTL RIG_YAML [RUNS] [DEBOUNCE_MS]. Root.
# Prints one line per run and the median of each case. Measured: from spawning eqd until
# `eqctl controllers` shows every controller connected (polled every 10 ms, plus eqctl's own ~5 ms);
# the control cycle that uses them follows within one period (100 ms), not included. See
# docs/benchmarks.md.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" != --inner ]; then
  exec timeout -s KILL 600 unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
    "$0" --inner "$@"
fi
shift
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4 RUNS=${5:-5} DEBOUNCE=${6:-2000}
source "$HERE/lib.sh"
WORK=$(mktemp -d /tmp/discovery-bench-XXXXXX)
export EQD_SOCKET=$WORK/eqd.sock
SIM_PID="" EQD_PID=""
cleanup() {
  kill_all $EQD_PID; kill_all $SIM_PID; netns_host_down
  [ -n "${BENCH_KEEP_LOG:-}" ] && cp "$WORK/eqd.log" "$BENCH_KEEP_LOG"
  rm -rf "$WORK"
}
trap cleanup EXIT

netns_host_up "$WORK/host" benchhost lo || exit 1
"$EQSIM" -r "$RIG" --base-port 0 --publish -q >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 50); do grep -q publishing "$WORK/sim.log" && break; sleep 0.1; done
N=$(grep -c "^eqsim: controller " "$WORK/sim.log")
BUS=$(awk '/^buses:/{b=1;next} b && /name:/{print $NF; exit}' "$RIG" | tr -d '{},')
cat >"$WORK/eqd.yaml" <<YAML
buses:
  - name: ${BUS:-main}
discovery:
  enabled: true
  debounce_ms: $DEBOUNCE
YAML

# One run: ms from spawning eqd until eqctl shows all N controllers connected.
run_once() {
  local t0 t1 out cycles
  t0=$(date +%s%N)
  "$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$EQD_SOCKET" --set "state_dir=$WORK/state" --set metrics.enabled=false \
    --set api.group=users --set control_loop.shutdown_timeout_ms=1000 >>"$WORK/eqd.log" 2>&1 &
  EQD_PID=$!
  while :; do
    out=$("$EQCTL" --json controllers 2>/dev/null) &&
      [ "$(echo "$out" | jq "[.controllers[] | select(.connected)] | length")" = "$N" ] && break
    [ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 30000 ] && { echo "timeout" >&2; return 1; }
    sleep 0.01
  done
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
  # Connections are cached on the next tick (<= 1 s): wait for it, or the next run has no cache.
  for _ in $(seq 50); do
    [ "$(jq '.controllers | length' "$WORK/state/controllers-cache.json" 2>/dev/null)" = "$N" ] && break
    sleep 0.05
  done
  kill -TERM "$EQD_PID"; wait "$EQD_PID" 2>/dev/null; EQD_PID=""
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

echo "rig $RIG: $N controllers; discovery.debounce_ms $DEBOUNCE; $RUNS runs per case"
: >"$WORK/disc" ; : >"$WORK/cache"
for i in $(seq "$RUNS"); do
  rm -rf "$WORK/state"
  d=$(run_once) || exit 1
  c=$(run_once) || exit 1   # the first run left the cache behind
  echo "run $i: discovery alone $d ms, from cache $c ms"
  echo "$d" >>"$WORK/disc"; echo "$c" >>"$WORK/cache"
done
echo "median: discovery alone $(median <"$WORK/disc") ms, from cache $(median <"$WORK/cache") ms"
