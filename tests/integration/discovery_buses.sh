#!/usr/bin/env bash
# Discovery with two buses (issue #12, "Discovery that stays right"), with a real avahi-daemon and a
# private system D-Bus inside network, mount and PID namespaces that this test creates (never in the
# machine's own network namespace). eqsim --publish announces each controller's bus (TXT `bus`):
# cab5 on main and unit1 on aux land there, each bus's free power is its own controllers' (not the
# first bus's sum), unit1's buffers balance aux alone; unit2 announces bus hall, which eqd does not
# have: it is sampled and shown with bus unknown, read-only, in no bus's free power, until
# `eqctl controllers adopt unit2 --bus main` puts it on main. A restart with avahi-daemon stopped
# takes every bus from the connection cache.
# Usage: discovery_buses.sh EQSIM EQD EQCTL RIG_YAML. Root. Bounded: < 60 s; every process is killed
# on every path (the PID namespace dies with its first process).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" != --inner ]; then
  exec timeout -s KILL 58 unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
    "$0" --inner "$@"
fi
shift
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4
source "$HERE/../netns/lib.sh"

WORK=$(mktemp -d /tmp/discovery-buses-XXXXXX)
SOCK=$WORK/eqd.sock
STATE=$WORK/state
CACHE=$STATE/controllers-cache.json
export EQD_SOCKET=$SOCK
SIM_PID="" EQD_PID=""
START=$SECONDS
N_EQD=0

cleanup() {
  kill_all $EQD_PID
  kill_all $SIM_PID
  netns_host_down
  rm -rf "$WORK"
}
trap cleanup EXIT

FAIL_LOGS="$WORK/eqd-*.log $WORK/sim.log $WORK/host/avahi.log"
source "$HERE/eqctl_lib.sh"  # fail, step, ctl, ctl_of, wait_for
bus_of() {  # jq filter on `status`: field $2 of bus $1
  echo "[.buses[] | select(.bus == \"$1\") | .$2][0]"
}

start_eqd() {
  N_EQD=$((N_EQD + 1))
  "$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$SOCK" --set "state_dir=$STATE" --set metrics.enabled=false \
    --set api.group=users --set control_loop.shutdown_timeout_ms=1500 >"$WORK/eqd-$N_EQD.log" 2>&1 &
  EQD_PID=$!
  for _ in $(seq 50); do [ -S "$SOCK" ] && return 0; sleep 0.1; done
  fail "eqd did not open its socket"
}
stop_eqd() {
  kill -TERM "$EQD_PID"
  for _ in $(seq 40); do kill -0 "$EQD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$EQD_PID" 2>/dev/null && fail "eqd did not stop within 4 s"
  wait "$EQD_PID" 2>/dev/null
  EQD_PID=""
}

netns_host_up "$WORK/host" buseshost lo || fail "avahi-daemon setup"
# Two buses, no controllers. unit1 is adopted by a plain rule (the form without a bus): it stays on
# the bus it announces.
cat >"$WORK/eqd.yaml" <<YAML
buses:
  - {name: main, tau_s: 2, allow_any_tau: true}
  - {name: aux, tau_s: 2, allow_any_tau: true}
discovery:
  enabled: true
  debounce_ms: 300
  adopt: [unit1]
YAML

step "eqsim announces the buses; eqd puts each controller on its own"
"$EQSIM" -r "$RIG" --base-port 0 --publish -q >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 50); do grep -q "publishing" "$WORK/sim.log" && break; sleep 0.1; done
grep -q publishing "$WORK/sim.log" || fail "eqsim did not publish"
start_eqd
wait_for 15 "cab5, unit1 and unit2 discovered and connected" \
  "($(ctl_of cab5 connected)) and ($(ctl_of unit1 connected)) and ($(ctl_of unit2 connected))" -- controllers
ctl --json controllers
for c in "cab5 \"main\" false" "unit1 \"aux\" true" "unit2 null false"; do
  set -- $c
  [ "$(echo "$OUT" | jq -c "[$(ctl_of "$1" bus), $(ctl_of "$1" adopted)]")" = "[$2,$3]" ] ||
    fail "controller $1: expected bus $2 and adopted $3: $OUT"
done
ctl controllers
echo "$OUT" | grep -E "^unit2 " | grep -q unknown || fail "eqctl controllers does not show unit2's bus as unknown: $OUT"
grep -q "unit2 announces bus hall, which eqd does not have" "$WORK/eqd-1.log" || fail "no warning about unit2's bus"

step "each bus counts its own free power; unit2 (bus unknown) counts in none"
# Battery side -800 W x 2 on main, +500 W x 2 on aux; unit2's -1500 W x 2 must be in neither.
wait_for 10 "free power main ~ -1.6 kW, aux ~ +1 kW; 2 channels on main, 4 on aux" \
  "($(bus_of main free_W) | . < -1300 and . > -1900) and ($(bus_of aux free_W) | . > 800 and . < 1200) and
   $(bus_of main channels.total) == 2 and $(bus_of aux channels.total) == 4" -- status
ctl --json channels
echo "$OUT" | jq -e '[.channels[] | select(.channel | startswith("unit2/"))] | length == 2 and
  all(.bus == null and .health == "ok" and .power_W < -1000)' >/dev/null ||
  fail "unit2's channels are not sampled and shown with bus null: $OUT"
ctl channels
echo "$OUT" | grep -E "^unit2/1 " | grep -q unknown || fail "eqctl channels does not show unit2/1's bus as unknown"

step "no assignment on a controller of unknown bus"
LIMITS=(--max-charge-W 3000 --max-discharge-W 3000 --v-min-V 48 --v-max-V 56)
ctl assign unit2/1 "${LIMITS[@]}"
[ "$RC" = 1 ] || fail "assign on unit2 (bus unknown) exited $RC: $OUT $ERR"
echo "$ERR" | grep -q "its bus is not known" || fail "unclear refusal: $ERR"

step "unit1's buffers balance aux alone"
for ch in unit1/3 unit1/4; do
  ctl assign "$ch" "${LIMITS[@]}"
  [ "$RC" = 0 ] || fail "assign $ch: rc $RC $ERR"
done
wait_for 20 "aux equalized (net within 300 W) while main, without buffers, stays at its free power" \
  "($(bus_of aux net_W) | fabs) < 300 and ($(bus_of main net_W) | . < -1300) and $(bus_of main channels.equalization) == 0" -- status

step "adopt unit2 --bus: refused for a bus eqd does not have, then on main"
ctl controllers adopt unit2 --bus hall
[ "$RC" = 1 ] && echo "$ERR" | grep -q unknown_bus || fail "adopt --bus hall: rc $RC $OUT $ERR"
ctl controllers adopt unit2 --bus main
[ "$RC" = 0 ] || fail "adopt unit2 --bus main: rc $RC $ERR"
echo "$OUT" | grep -q "adopted on bus main" || fail "adopt message: $OUT"
wait_for 10 "unit2 on main, adopted" "$(ctl_of unit2 bus) == \"main\" and $(ctl_of unit2 adopted) == true" -- controllers
wait_for 10 "main's free power now includes unit2 (~ -4.6 kW), aux still balanced" \
  "($(bus_of main free_W) | . < -3800 and . > -5400) and ($(bus_of aux free_W) | . > 800 and . < 1200)" -- status
for _ in $(seq 30); do
  jq -e '[.controllers[] | {(.name): [.bus, .adopted_bus]}] | add == {"cab5": ["main", ""], "unit1": ["aux", ""], "unit2": ["hall", "main"]}' \
    "$CACHE" >/dev/null 2>&1 && break
  sleep 0.1
done
jq -e '[.controllers[] | {(.name): [.bus, .adopted_bus]}] | add == {"cab5": ["main", ""], "unit1": ["aux", ""], "unit2": ["hall", "main"]}' \
  "$CACHE" >/dev/null || fail "the cache does not remember the buses: $(cat "$CACHE")"

step "restart with avahi-daemon stopped: every bus from the cache"
stop_eqd
avahi_stop
start_eqd
wait_for 10 "controllers from the cache, on their buses" \
  "[.controllers[] | [.controller, .source, .bus, .adopted]] == [[\"cab5\",\"cache\",\"main\",false],[\"unit1\",\"cache\",\"aux\",true],[\"unit2\",\"cache\",\"main\",true]]" -- controllers
wait_for 10 "free power per bus as before" \
  "($(bus_of main free_W) | . < -3800 and . > -5400) and ($(bus_of aux free_W) | . > 800 and . < 1200)" -- status

stop_eqd
step "PASS"
