#!/usr/bin/env bash
# eqd and avahi-daemon in either order, and avahi-daemon restarted under a running eqd (issue #12,
# "Discovery that stays right"), with a real avahi-daemon and a private system D-Bus inside network,
# mount and PID namespaces that this test creates (never in the machine's own network namespace):
# eqd started before avahi-daemon says once that discovery is off and finds eqsim's controllers once
# the daemon runs; after a restart of avahi-daemon it says once that it lost it and once that it is
# back, browses again (finds controllers announced after the restart) and announces itself again;
# eqsim --publish announces its controllers again by itself; the same when the system D-Bus restarts
# with avahi-daemon (eqd retries until the bus is back).
# Usage: discovery_avahi_restart.sh EQSIM EQD EQCTL RIG_YAML RIG2_YAML. Root. Bounded: < 60 s; every
# process is killed on every path (the PID namespace dies with its first process).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" != --inner ]; then
  exec timeout -s KILL 58 unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
    "$0" --inner "$@"
fi
shift
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4 RIG2=$5
source "$HERE/../netns/lib.sh"

WORK=$(mktemp -d /tmp/discovery-restart-XXXXXX)
SOCK=$WORK/eqd.sock
export EQD_SOCKET=$SOCK
SIM_PID="" SIM2_PID="" EQD_PID=""
START=$SECONDS

cleanup() {
  kill_all $EQD_PID
  kill_all $SIM_PID $SIM2_PID
  netns_host_down
  rm -rf "$WORK"
}
trap cleanup EXIT

FAIL_LOGS="$WORK/eqd.log $WORK/sim*.log $WORK/host/avahi.log"
source "$HERE/eqctl_lib.sh"  # fail, step, ctl, ctl_of, wait_for
count() { grep -c "$1" "$2"; }
# Instances of service type $1 that avahi-daemon resolves now (names, one a line).
announced() { timeout 5 avahi-browse -rpt "$1" 2>/dev/null | awk -F';' '$1 == "=" { print $4 }' | sort -u; }
start_sim() {  # start_sim LOG RIG: eqsim --publish on ephemeral ports; prints nothing
  "$EQSIM" -r "$2" --base-port 0 --publish -q >"$WORK/$1" 2>&1 &
  LAST_PID=$!
  for _ in $(seq 50); do grep -q "publishing" "$WORK/$1" && return 0; sleep 0.1; done
  fail "eqsim ($1) did not publish"
}

netns_host_up "$WORK/host" restarthost lo || fail "avahi-daemon setup"
cat >"$WORK/eqd.yaml" <<YAML
buses:
  - {name: main}
  - {name: aux}
discovery:
  enabled: true
  debounce_ms: 300
YAML

step "eqd started before avahi-daemon: discovery is off, said once"
avahi_stop
"$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$SOCK" --set "state_dir=$WORK/state" --set metrics.enabled=false \
  --set api.group=users --set control_loop.shutdown_timeout_ms=1500 >"$WORK/eqd.log" 2>&1 &
EQD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "eqd did not open its socket"
sleep 1.5  # a few ticks
[ "$(count "discovery is off" "$WORK/eqd.log")" = 1 ] || fail "'discovery is off' not said exactly once"
grep "discovery is off" "$WORK/eqd.log" | grep -q "starts by itself" || fail "the log does not say discovery starts by itself"

step "avahi-daemon starts: eqd finds the controllers without a restart"
avahi_start || fail "avahi-daemon start"
T0=$SECONDS
start_sim sim1.log "$RIG"
SIM_PID=$LAST_PID
wait_for 15 "cab1 and cab2 discovered and connected" "($(ctl_of cab1 connected)) and ($(ctl_of cab2 connected))" -- controllers
echo "  found $((SECONDS - T0)) s after avahi-daemon started"
[ "$(count "discovery is on again" "$WORK/eqd.log")" = 1 ] || fail "'discovery is on again' not said exactly once"
for _ in $(seq 30); do announced _eqd._tcp | grep -q "^eqd.032on" && break; sleep 0.2; done
announced _eqd._tcp | grep -q "^eqd.032on" || fail "eqd does not announce itself once avahi-daemon runs"

step "avahi-daemon restarts: eqd says so once, reconnects, browses and publishes again"
avahi_stop
for _ in $(seq 30); do grep -q "discovery is off: lost avahi-daemon" "$WORK/eqd.log" && break; sleep 0.1; done
[ "$(count "discovery is off: lost avahi-daemon" "$WORK/eqd.log")" = 1 ] || fail "the loss of avahi-daemon is not said once"
avahi_start || fail "avahi-daemon restart"
T0=$SECONDS
for _ in $(seq 50); do [ "$(count "discovery is on again" "$WORK/eqd.log")" = 2 ] && break; sleep 0.1; done
[ "$(count "discovery is on again" "$WORK/eqd.log")" = 2 ] || fail "the reconnection is not said (once)"
echo "  reconnected $((SECONDS - T0)) s after avahi-daemon was started again"
# A controller announced after the restart is found: eqd browses again.
start_sim sim2.log "$RIG2"
SIM2_PID=$LAST_PID
wait_for 15 "cab5 (announced after the restart) discovered and connected" "($(ctl_of cab5 connected))" -- controllers
# eqd announces itself again, and eqsim (not restarted) its controllers.
for _ in $(seq 30); do announced _eqd._tcp | grep -q "^eqd.032on" && announced _eqd-ctrl._tcp | grep -qx cab1 && break; sleep 0.2; done
announced _eqd._tcp | grep -q "^eqd.032on" || fail "eqd does not announce itself again after the restart"
announced _eqd-ctrl._tcp | grep -qx cab1 || fail "eqsim does not announce cab1 again after the restart"
grep -q "announcing again" "$WORK/sim1.log" || fail "eqsim does not say it announces again"
[ "$(count "discovery is off" "$WORK/eqd.log")" = 2 ] || fail "'discovery is off' said more than once per loss"
kill -0 "$EQD_PID" || fail "eqd died"

step "the system D-Bus restarts too: eqd retries until it is back"
avahi_stop
kill -TERM "$(cat "$WORK/host/dbus.pid")"
for _ in $(seq 30); do [ -S /run/dbus/system_bus_socket ] || break; sleep 0.1; done
rm -f /run/dbus/system_bus_socket
sleep 2.5  # eqd's new clients fail (no bus) and are retried
dbus-daemon --config-file="$WORK/host/system-bus.conf" --fork --print-pid >"$WORK/host/dbus.pid" || fail "dbus-daemon restart"
avahi_start || fail "avahi-daemon start after the D-Bus restart"
for _ in $(seq 50); do [ "$(count "discovery is on again" "$WORK/eqd.log")" = 3 ] && break; sleep 0.1; done
[ "$(count "discovery is on again" "$WORK/eqd.log")" = 3 ] || fail "no reconnection after the D-Bus restart"
[ "$(count "discovery is off" "$WORK/eqd.log")" = 3 ] || fail "the loss is not said exactly once"
# cab5 moves to a new port: only a working browser tells eqd.
OLD_PORT=$(sed -n 's/^eqsim: controller cab5 .* on 127.0.0.1:\([0-9]*\) unit.*/\1/p' "$WORK/sim2.log")
kill_all $SIM2_PID
start_sim sim3.log "$RIG2"
SIM2_PID=$LAST_PID
NEW_PORT=$(sed -n 's/^eqsim: controller cab5 .* on 127.0.0.1:\([0-9]*\) unit.*/\1/p' "$WORK/sim3.log")
[ "$NEW_PORT" != "$OLD_PORT" ] || fail "eqsim reused port $OLD_PORT: cannot test a change"
wait_for 15 "cab5 followed to its new port $NEW_PORT" \
  "$(ctl_of cab5 endpoint) == \"127.0.0.1:$NEW_PORT#1\" and ($(ctl_of cab5 connected))" -- controllers

kill -TERM "$EQD_PID"
for _ in $(seq 40); do kill -0 "$EQD_PID" 2>/dev/null || break; sleep 0.1; done
EQD_PID=""
step "PASS"
