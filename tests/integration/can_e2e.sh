#!/usr/bin/env bash
# eqd + eqsim over a real kernel's CAN stack (a vcan interface): eqsim serves the e2e rig on
# $EQD_CAN_IFACE and writes a `transport: can` eqd configuration; eqd converges the bus; eqd killed
# -> the controllers' heartbeat watchdog releases the buffers; a new eqd converges again; its control
# thread alone frozen (ptrace) -> the watchdog releases them too, and eqd converges after; SIGTERM ->
# eqd releases the buffers itself and exits 0. Run through tests/vm/run_in_vm.sh (CTest label "vm")
# or on a machine with a vcan interface:  EQD_CAN_IFACE=vcan0 tests/integration/can_e2e.sh EQD EQSIM RIG [--can-fd]
set -uo pipefail
eqd="$1" eqsim="$2" rig="$3"
shift 3
iface="${EQD_CAN_IFACE:?EQD_CAN_IFACE is not set (run through tests/vm/run_in_vm.sh or see docs/can-profile.md)}"
dir="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; }
trap cleanup EXIT
fail() {
  echo "can_e2e: FAILED: $*" >&2
  echo "--- eqsim log" >&2; tail -20 "$dir/eqsim.log" >&2
  for l in "$dir"/eqd*.log; do echo "--- $l" >&2; tail -30 "$l" >&2; done
  exit 1
}
# equalizing net_W free_W eq_W watchdog_trips
report() {
  /usr/bin/python3 -c 'import json,sys
r=json.load(open(sys.argv[1])); b=r["buses"][0]
print(r["channels_equalizing"], b["net_W"], b["free_W"], b["eq_W"], r["watchdog_trips"])' "$dir/report.json" 2>/dev/null
}
# until SECONDS CONDITION (python expression over e, net, free, eq, trips)
until_report() {
  local end=$((SECONDS + $1)) r
  while ((SECONDS < end)); do
    r="$(report)"
    if [ -n "$r" ] && /usr/bin/python3 -c "import sys
e,net,free,eq,trips=[float(x) for x in sys.argv[1].split()]
sys.exit(0 if ($2) else 1)" "$r"; then
      echo "can_e2e: [$r] ok: $2"
      return 0
    fi
    sleep 0.5
  done
  fail "not within $1 s: $2 (last report: equalizing net free eq trips = ${r:-none})"
}
converged='e == 2 and abs(free) > 1000 and abs(net) < 0.05 * abs(free)'
eqd_args=(--config "$dir/eqd.yaml" --set "state_dir=$dir" --set "api.socket=$dir/eqd.sock" --set metrics.enabled=false)

"$eqsim" --rig "$rig" --base-port 0 --can "$iface" "$@" --write-eqd-config "$dir/eqd.yaml" --eqd-tau 2 \
  --report-file "$dir/report.json" -q >"$dir/eqsim.log" 2>&1 &
pids+=($!)
until_report 20 'e == 0 and abs(net - free) < 1'
grep -q "transport: can" "$dir/eqd.yaml" || fail "eqsim wrote no transport: can controllers"

"$eqd" "${eqd_args[@]}" >"$dir/eqd1.log" 2>&1 &
eqd_pid=$!
pids+=($eqd_pid)
until_report 90 "$converged"
until_report 5 'eq > 1000'

kill -KILL "$eqd_pid"
until_report 20 'e == 0 and abs(eq) < 1 and trips >= 1'

"$eqd" "${eqd_args[@]}" >"$dir/eqd2.log" 2>&1 &
eqd_pid=$!
pids+=($eqd_pid)
until_report 90 "$converged"

# Only the control thread hangs (the CAN link thread runs on): the link must stop the heartbeat and
# the commands, so the controller's watchdog (2 s) releases the buffers within liveness 1 s + 2 s (the
# window is wider: under software emulation python's start and each report check take a second or more).
stall="$(dirname "$0")/../systemd/stall_thread.py"
/usr/bin/python3 "$stall" "$eqd_pid" eqd-control 20 >"$dir/stall.log" 2>&1 &
stall_pid=$!
pids+=($stall_pid)
until_report 25 'e == 0 and abs(eq) < 1 and trips >= 4'
wait "$stall_pid" || fail "stall_thread.py failed: $(cat "$dir/stall.log")"
grep -q "control thread stalled" "$dir/eqd2.log" || fail "eqd did not log the stall"
until_report 90 "$converged"
kill -TERM "$eqd_pid"
for _ in $(seq 1 100); do kill -0 "$eqd_pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$eqd_pid" 2>/dev/null && fail "eqd did not exit within 20 s of SIGTERM"
wait "$eqd_pid"
rc=$?
[ "$rc" = 0 ] || fail "eqd exited $rc after SIGTERM"
until_report 5 'e == 0 and abs(eq) < 1'
grep -q "acknowledged" "$dir/eqd2.log" || true
echo "can_e2e: passed"
