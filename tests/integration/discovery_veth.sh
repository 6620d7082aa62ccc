#!/usr/bin/env bash
# Discovery across two "hosts": two network + mount + PID namespaces that this test creates, joined
# by a veth pair (10.77.0.1 <-> 10.77.0.2), each with its own system D-Bus and avahi-daemon allowed on
# the veth only. eqsim --publish --listen 10.77.0.1 runs on host A; eqd (no controllers configured,
# adopt rule "cab2") on host B discovers them over mDNS, connects over the veth, and equalizes.
# Usage: discovery_veth.sh EQSIM EQD EQCTL RIG_YAML. Root. Bounded: < 60 s; every process is killed
# on every path (each PID namespace dies with its first process).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../netns/lib.sh"

if [ "${1:-}" = --host ]; then
  # Inside one namespace: wait for the veth, address it, start D-Bus + avahi-daemon, run the role
  # until the stop file appears.
  ROLE=$2 WORK=$3 EQSIM=$4 EQD=$5 RIG=$6
  IF=veq$ROLE
  ADDR=$([ "$ROLE" = a ] && echo 10.77.0.1 || echo 10.77.0.2)
  for _ in $(seq 100); do ip link show "$IF" >/dev/null 2>&1 && break; sleep 0.05; done
  ip addr add "$ADDR/24" dev "$IF" && ip link set "$IF" up || { echo "no $IF"; exit 1; }
  netns_host_up "$WORK/host-$ROLE" "host$ROLE" "$IF" || exit 1
  if [ "$ROLE" = a ]; then
    "$EQSIM" -r "$RIG" --base-port 0 --listen "$ADDR" --publish -q >"$WORK/sim.log" 2>&1 &
  else
    "$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$WORK/eqd.sock" --set "state_dir=$WORK/state" \
      --set metrics.enabled=false --set api.group=users --set control_loop.shutdown_timeout_ms=1500 \
      >"$WORK/eqd.log" 2>&1 &
  fi
  CHILD=$!
  touch "$WORK/ready-$ROLE"
  while [ ! -e "$WORK/stop" ] && kill -0 "$CHILD" 2>/dev/null; do sleep 0.1; done
  kill_all $CHILD
  netns_host_down
  exit 0
fi

EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4
WORK=$(mktemp -d /tmp/discovery-veth-XXXXXX)
export EQD_SOCKET=$WORK/eqd.sock
PID_A="" PID_B=""
START=$SECONDS

cleanup() {
  touch "$WORK/stop"
  for _ in $(seq 40); do
    { [ -n "$PID_A" ] && kill -0 "$PID_A" 2>/dev/null; } || { [ -n "$PID_B" ] && kill -0 "$PID_B" 2>/dev/null; } || break
    sleep 0.1
  done
  # --kill-child: killing unshare kills the namespace's first process, and with it the namespace.
  for p in $PID_A $PID_B; do kill -KILL "$p" 2>/dev/null; done
  [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
FAIL_LOGS="$WORK/eqd.log $WORK/sim.log $WORK/host-*/avahi.log $WORK/ns-*.log"
WAIT_POLL_S=0.2
source "$HERE/eqctl_lib.sh"  # fail, step, ctl, wait_for

cat >"$WORK/eqd.yaml" <<YAML
buses:
  - name: main
    tau_s: 2
    allow_any_tau: true
discovery:
  enabled: true
  adopt: [cab2]
  debounce_ms: 300
YAML

step "two namespaces joined by a veth pair"
# Bounded even if this script hangs: the watchdog's TERM runs cleanup (trap).
# Its output goes nowhere: a sleep holding the test's stdout would keep ctest waiting for 58 s.
( sleep 58; kill -TERM $$ ) >/dev/null 2>&1 &
WATCHDOG=$!
for role in a b; do
  # No wrapper in front of unshare: $! must be unshare itself, which lives in the new namespace.
  unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
    "$0" --host "$role" "$WORK" "$EQSIM" "$EQD" "$RIG" >"$WORK/ns-$role.log" 2>&1 &
  [ "$role" = a ] && PID_A=$! || PID_B=$!
done
# Never create a link in the machine's own namespace: both pids must be in other network namespaces.
HOST_NS=$(readlink /proc/self/ns/net)
for _ in $(seq 50); do
  NS_A=$(readlink "/proc/$PID_A/ns/net" 2>/dev/null) NS_B=$(readlink "/proc/$PID_B/ns/net" 2>/dev/null)
  [ -n "$NS_A" ] && [ -n "$NS_B" ] && [ "$NS_A" != "$HOST_NS" ] && [ "$NS_B" != "$HOST_NS" ] && [ "$NS_A" != "$NS_B" ] && break
  sleep 0.05
done
[ "$NS_A" != "$HOST_NS" ] && [ "$NS_B" != "$HOST_NS" ] && [ "$NS_A" != "$NS_B" ] || fail "namespaces not created"
# Create the pair inside A's namespace with its peer in B's: the host namespace never holds it.
for _ in $(seq 50); do
  nsenter -t "$PID_A" -n ip link add veqa type veth peer name veqb netns "$PID_B" 2>"$WORK/veth.err" && break
  sleep 0.1
done
nsenter -t "$PID_A" -n ip link show veqa >/dev/null 2>&1 || fail "cannot create the veth pair: $(cat "$WORK/veth.err")"
for _ in $(seq 100); do [ -e "$WORK/ready-a" ] && [ -e "$WORK/ready-b" ] && break; sleep 0.1; done
[ -e "$WORK/ready-a" ] && [ -e "$WORK/ready-b" ] || fail "hosts not ready"
# The host namespace never sees the pair.
ip link show veqa >/dev/null 2>&1 && fail "veth visible in the host namespace"

step "eqd on host B discovers eqsim's controllers on host A"
wait_for 30 "cab1 and cab2 discovered over the veth and connected" \
  '[.controllers[] | select(.connected and (.endpoint | startswith("10.77.0.1:")))] | length == 2' -- controllers
ctl --json controllers
echo "$OUT" | jq -e '[.controllers[] | {(.controller): .adopted}] | add == {"cab1": false, "cab2": true}' >/dev/null ||
  fail "adopt rule not applied: $OUT"
step "equalize through the adopt rule"
for ch in cab2/1 cab2/2; do
  ctl assign "$ch" --max-charge-W 3000 --max-discharge-W 3000 --v-min-V 48 --v-max-V 56
  [ "$RC" = 0 ] || fail "assign $ch: rc $RC $ERR"
done
ctl assign cab1/1 --max-charge-W 3000 --max-discharge-W 3000 --v-min-V 48 --v-max-V 56
[ "$RC" = 1 ] || fail "assign on cab1 (not matched by the rule) exited $RC"
wait_for 20 "bus main equalized" '(.buses[0].net_W | fabs) < 500 and (.buses[0].free_W | fabs) > 1500' -- status
step "PASS"
