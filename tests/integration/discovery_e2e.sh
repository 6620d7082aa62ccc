#!/usr/bin/env bash
# Discovery end to end with a real avahi-daemon and a private system D-Bus, inside network, mount and
# PID namespaces that this test creates (never in the machine's own network namespace):
# eqsim --publish announces its controllers, eqd (a configuration without controllers) discovers
# them read-only, refuses to assign on them, adopts one with eqctl and equalizes; eqd restarted with
# avahi-daemon stopped connects from the connection cache and says once that discovery is off; a
# controller whose port changed is followed; a corrupt cache is moved aside; forget removes one.
# Usage: discovery_e2e.sh EQSIM EQD EQCTL RIG_YAML. Root. Bounded: < 60 s; every process is killed
# on every path (the PID namespace dies with its first process).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" != --inner ]; then
  # --kill-child + a PID namespace: if this script dies, everything started inside dies with it.
  exec timeout -s KILL 58 unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
    "$0" --inner "$@"
fi
shift
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4
source "$HERE/../netns/lib.sh"

WORK=$(mktemp -d /tmp/discovery-e2e-XXXXXX)
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

FAIL_LOGS="$WORK/eqd-*.log $WORK/sim-*.log $WORK/host/avahi.log"
source "$HERE/eqctl_lib.sh"  # fail, step, ctl, ctl_of, wait_for

start_sim() {
  "$EQSIM" -r "$RIG" --base-port 0 --publish -q >"$WORK/sim-$1.log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 50); do grep -q "publishing" "$WORK/sim-$1.log" && return 0; sleep 0.1; done
  fail "eqsim did not publish"
}
sim_port() {  # port eqsim serves controller $1 on (from its log)
  sed -n "s/^eqsim: controller $1 .* on 127.0.0.1:\([0-9]*\) unit.*/\1/p" "$WORK/sim-$2.log"
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

netns_host_up "$WORK/host" discohost lo || fail "avahi-daemon setup"
cat >"$WORK/eqd.yaml" <<YAML
# No controllers: discovery brings them in.
buses:
  - name: main
    tau_s: 2
    allow_any_tau: true
discovery:
  enabled: true
  debounce_ms: 300
YAML

step "eqsim announces, eqd discovers read-only"
start_sim 1
start_eqd
wait_for 10 "cab1 and cab2 discovered and connected" \
  "($(ctl_of cab1 connected)) and ($(ctl_of cab2 connected)) and $(ctl_of cab2 source) == \"discovery\"" -- controllers
ctl --json controllers
[ "$(echo "$OUT" | jq -r "$(ctl_of cab2 adopted)")" = false ] || fail "cab2 adopted before adoption: $OUT"
[ "$(echo "$OUT" | jq -r "$(ctl_of cab1 endpoint)")" = "127.0.0.1:$(sim_port cab1 1)#1" ] || fail "cab1 endpoint: $OUT"

step "no assignment on a read-only controller"
LIMITS=(--max-charge-W 3000 --max-discharge-W 3000 --v-min-V 48 --v-max-V 56)
ctl assign cab2/1 "${LIMITS[@]}"
[ "$RC" = 1 ] || fail "assign on a read-only controller exited $RC: $OUT $ERR"
echo "$ERR" | grep -q "read-only until it is adopted" || fail "unclear refusal: $ERR"
echo "$ERR" | grep -q "not_adopted" || fail "refusal code: $ERR"

step "adopt cab2 with eqctl, assign both buffers, equalize"
ctl controllers adopt nosuch
[ "$RC" = 1 ] && echo "$ERR" | grep -q unknown_controller || fail "adopt of an unknown controller: rc $RC $ERR"
ctl controllers adopt cab2
[ "$RC" = 0 ] || fail "adopt cab2: rc $RC $ERR"
wait_for 10 "cab2 adopted" "$(ctl_of cab2 adopted) == true and $(ctl_of cab1 adopted) == false" -- controllers
for ch in cab2/1 cab2/2; do
  ctl assign "$ch" "${LIMITS[@]}"
  [ "$RC" = 0 ] || fail "assign $ch after adoption: rc $RC $ERR"
done
ctl --json status
NET0=$(echo "$OUT" | jq '.buses[0].net_W')
wait_for 20 "bus main equalized (net power from $NET0 W to within 500 W)" \
  '(.buses[0].net_W | fabs) < 500 and (.buses[0].free_W | fabs) > 1500' -- status
wait_for 5 "both controllers cached, cab2 adopted" "true" -- status
jq -e '[.controllers[] | {(.name): .adopted}] | add == {"cab1": false, "cab2": true}' "$CACHE" >/dev/null ||
  fail "cache content: $(cat "$CACHE")"
jq -e '.format == "eqd-controller-cache" and .version == 1' "$CACHE" >/dev/null || fail "cache header"

step "restart with avahi-daemon stopped: connects from the cache"
stop_eqd
avahi_stop
T0=$(date +%s%N)
start_eqd
wait_for 10 "controllers from the cache connected" \
  "($(ctl_of cab1 connected)) and ($(ctl_of cab2 connected)) and $(ctl_of cab1 source) == \"cache\" and $(ctl_of cab2 adopted) == true" -- controllers
T1=$(date +%s%N)
echo "  all controllers connected $(( (T1 - T0) / 1000000 )) ms after eqd was started (cache, no avahi-daemon)"
wait_for 10 "persisted buffers back in equalization" \
  '[.channels[] | select(.role == "equalization") | .channel] == ["cab2/1", "cab2/2"]' -- channels
sleep 1.5  # several ticks: "discovery is off" must still have been said once only
N=$(grep -c "discovery is off" "$WORK/eqd-$N_EQD.log")
[ "$N" = 1 ] || fail "'discovery is off' said $N times (expected once)"
grep "discovery is off" "$WORK/eqd-$N_EQD.log" | grep -q "avahi-daemon" || fail "unclear reason for discovery off"

step "port change followed"
stop_eqd
OLD_PORT=$(sim_port cab1 1)
kill_all $SIM_PID
SIM_PID=""
avahi_start || fail "avahi-daemon restart"
start_sim 2
NEW_PORT=$(sim_port cab1 2)
[ "$NEW_PORT" != "$OLD_PORT" ] || fail "eqsim reused port $OLD_PORT: cannot test a change"
start_eqd
wait_for 15 "cab1 followed to its new port $NEW_PORT" \
  "$(ctl_of cab1 endpoint) == \"127.0.0.1:$NEW_PORT#1\" and ($(ctl_of cab1 connected)) and ($(ctl_of cab2 connected))" -- controllers
grep -q "controller cab1 moved from 127.0.0.1:$OLD_PORT" "$WORK/eqd-$N_EQD.log" || fail "no 'moved' log line"
wait_for 5 "cab2 still adopted" "$(ctl_of cab2 adopted) == true" -- controllers
for _ in $(seq 30); do jq -e ".controllers[] | select(.name == \"cab1\") | .port == $NEW_PORT" "$CACHE" >/dev/null 2>&1 && break; sleep 0.1; done
jq -e ".controllers[] | select(.name == \"cab1\") | .port == $NEW_PORT" "$CACHE" >/dev/null || fail "cache not updated: $(cat "$CACHE")"

step "corrupt cache moved aside"
stop_eqd
echo '{"format": "eqd-controller-cache", "version": 1, "controllers": [ {"name": ' >"$CACHE"
start_eqd
grep -q "unusable (not valid JSON); moved it to $CACHE.corrupt-" "$WORK/eqd-$N_EQD.log" || fail "no clear corrupt-cache message"
ls "$CACHE".corrupt-* >/dev/null 2>&1 || fail "corrupt cache not kept"
wait_for 15 "rediscovered after the corrupt cache" "($(ctl_of cab1 connected)) and ($(ctl_of cab2 connected))" -- controllers
kill -0 "$EQD_PID" || fail "eqd died"

step "forget"
ctl controllers forget cab1
[ "$RC" = 0 ] || fail "forget cab1: rc $RC $ERR"
wait_for 10 "cab1 gone" '[.controllers[].controller] == ["cab2"]' -- controllers
for _ in $(seq 30); do jq -e '[.controllers[].name] == ["cab2"]' "$CACHE" >/dev/null 2>&1 && break; sleep 0.1; done
jq -e '[.controllers[].name] == ["cab2"]' "$CACHE" >/dev/null || fail "cab1 still cached: $(cat "$CACHE")"
ctl controllers forget cab1
[ "$RC" = 1 ] || fail "second forget exited $RC"

stop_eqd
step "PASS"
