#!/usr/bin/env bash
# End to end with the real binaries: eqsim (simulated cyclers on loopback) + eqd + eqctl.
# assign/release/set (use_forecast too) through eqctl, the bus converges, refusals and exit codes,
# an unprivileged user can read but not change, garbage on the socket leaves eqd serving, eqd
# restarts with the persisted assignments and parameters, a corrupt state file is moved aside.
# Usage: eqctl_e2e.sh EQSIM EQD EQCTL RIG_YAML. Runs as root (setpriv to nobody). Bounded: < 60 s.
set -uo pipefail
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4

WORK=$(mktemp -d /tmp/eqctl-e2e-XXXXXX)
chmod 0755 "$WORK"  # traversable for the unprivileged client
SOCK=$WORK/run/eqd.sock
STATE=$WORK/state
export EQD_SOCKET=$SOCK
SIM_PID="" EQD_PID=""
START=$SECONDS

cleanup() {
  for p in $EQD_PID $SIM_PID; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 30); do
    alive=0
    for p in $EQD_PID $SIM_PID; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in $EQD_PID $SIM_PID; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

FAIL_LOGS="$WORK/eqd-*.log"
FAIL_TAIL=30
CTL_TIMEOUT_S=15
WAIT_POLL_S=0.25
source "$(cd "$(dirname "$0")" && pwd)/eqctl_lib.sh"  # fail, step, ctl, wait_for

expect_rc() {  # expect_rc RC PATTERN-IN-STDERR-OR-EMPTY DESCRIPTION -- eqctl args...
  local want=$1 pattern=$2 what=$3
  shift 4
  ctl "$@"
  [ "$RC" = "$want" ] || fail "$what: eqctl $* exited $RC, expected $want; stderr: $ERR"
  if [ -n "$pattern" ]; then
    echo "$ERR" | grep -q -- "$pattern" || fail "$what: stderr lacks '$pattern': $ERR"
  fi
}

start_eqd() {
  local n=$1
  "$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$SOCK" --set "state_dir=$STATE" --set metrics.enabled=false \
    --set api.group=users --set api.admin_group=staff --set control_loop.shutdown_timeout_ms=2000 >"$WORK/eqd-$n.log" 2>&1 &
  EQD_PID=$!
  wait_answering "$EQD_PID" "eqd #$n"
}

stop_eqd() {
  kill -TERM "$EQD_PID"
  for _ in $(seq 80); do kill -0 "$EQD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$EQD_PID" 2>/dev/null && fail "eqd did not stop within 8 s of SIGTERM"
  wait "$EQD_PID" 2>/dev/null
  EQD_PID=""
  [ -e "$SOCK" ] && fail "eqd left its socket behind"
  return 0
}

role_of() {  # jq filter: role of channel $1
  echo "[.channels[] | select(.channel == \"$1\") | .role][0]"
}

step "start eqsim"
"$EQSIM" --rig "$RIG" --base-port 0 --write-eqd-config "$WORK/eqd.yaml" --eqd-tau 2 \
  --report-file "$WORK/report.json" -q >"$WORK/eqsim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 50); do [ -s "$WORK/eqd.yaml" ] && break; sleep 0.1; done
[ -s "$WORK/eqd.yaml" ] || fail "eqsim wrote no eqd config"
grep -q "channel: cab2/16" "$WORK/eqd.yaml" || fail "expected cab2/16 among the config buffers of the demo rig"

step "start eqd"
start_eqd 1
[ "$(stat -c %a "$SOCK")" = 660 ] || fail "socket mode is $(stat -c %a "$SOCK"), expected 660"
[ "$(stat -c %G "$SOCK")" = users ] || fail "socket group is $(stat -c %G "$SOCK"), expected users"
wait_for 15 "config buffers in equalization" \
  '[.channels[] | select(.role == "equalization")] | length == 4' -- channels --role eq

step "refusals and exit codes"
expect_rc 1 "did you mean" "unknown channel" -- assign cab1/99
expect_rc 1 "is on bus main" "wrong bus" -- assign cab1/15 --bus aux
ctl --json channels --bus main --role test
RUNNING=$(echo "$OUT" | jq -r '[.channels[] | select(.state == "running") | .channel][0]')
[ "$RUNNING" != null ] || fail "no running test channel on main to try"
expect_rc 1 "running a test" "assign of a running channel" -- assign "$RUNNING" --max-charge-W 100 \
  --max-discharge-W 100 --v-min-V 40 --v-max-V 58
expect_rc 1 "give --max-charge-W" "assign without known limits" -- assign "$RUNNING"
expect_rc 1 "tau_s" "tau out of range" -- set --bus main tau_s=-1
expect_rc 2 "" "missing channel" -- assign
expect_rc 2 "not a number" "bad value" -- set --bus main tau_s=abc
expect_rc 2 "cannot be set" "unknown parameter" -- set --bus main lease_ms=3
expect_rc 2 "not true or false" "bad use_forecast value" -- set --bus main use_forecast=maybe
expect_rc 2 "" "bad role" -- channels --role boss
expect_rc 3 "cannot connect" "no daemon" -- --socket "$WORK/none.sock" status
expect_rc 0 "" "help" -- assign --help
echo "$OUT" | grep -q -- "--max-charge-W" || fail "assign --help lacks --max-charge-W"

step "release and assign through eqctl"
expect_rc 0 "" "release cab2/16" -- release cab2/16
wait_for 15 "cab2/16 back to a test channel" "$(role_of cab2/16) == \"test\"" -- channels --bus main
expect_rc 0 "" "assign cab2/16" -- assign cab2/16 --bus main --max-charge-W 3000
echo "$OUT" | grep -q "assigned" || fail "assign said: $OUT"
wait_for 15 "cab2/16 in equalization" "$(role_of cab2/16) == \"equalization\"" -- channels --role eq
ctl --json channels --role eq
[ "$(echo "$OUT" | jq '[.channels[] | select(.channel == "cab2/16") | .limits.max_charge_W][0]')" = 3000 ] ||
  fail "cab2/16 limits not applied: $OUT"
expect_rc 0 "" "release config buffer cab1/15" -- release cab1/15
expect_rc 0 "" "set tau" -- set --bus main tau_s=3 deadband_W=40
wait_for 5 "tau_s 3 on main" '.buses[0].params.tau_s == 3' -- status

step "announced schedules: use_forecast through eqctl set, forecasts in status and channels"
ctl --json status
echo "$OUT" | jq -e '[.buses[] | (.free_forecast_W | type == "number") and .params.use_forecast == true] | all' \
  >/dev/null || fail "status lacks free_forecast_W or use_forecast (default true): $(echo "$OUT" | head -c 600)"
ctl --json channels
echo "$OUT" | jq -e '[.channels[] | has("forecast_W") and (.role == "test" or .forecast_W == null)] | all' \
  >/dev/null || fail "channels: forecast_W missing, or set on a non-test channel"
expect_rc 0 "" "set use_forecast" -- set --bus aux use_forecast=off
wait_for 5 "use_forecast off on aux only" \
  '.buses[1].params.use_forecast == false and .buses[0].params.use_forecast == true' -- status
ctl status
# Each bus line is followed by its forecast line.
echo "$OUT" | grep -A1 "^bus aux " | grep -q "^  forecast  *off$" || fail "status does not say forecast off for aux: $OUT"
echo "$OUT" | grep -A1 "^bus main " | grep -q "^  forecast  *on (horizon [0-9]* s[^)]*)$" ||
  fail "status does not say forecast on for main: $OUT"

step "the bus converges"
sleep 4  # let the law settle after the changes
ctl --json status; E0=$OUT
sleep 8
ctl --json status; E1=$OUT
RATIO=$(jq -n --argjson a "$E0" --argjson b "$E1" '
  ($b.buses[0].energy.grid_import_J + $b.buses[0].energy.grid_export_J
   - $a.buses[0].energy.grid_import_J - $a.buses[0].energy.grid_export_J) /
  ($b.buses[0].energy.without_eq_import_J + $b.buses[0].energy.without_eq_export_J
   - $a.buses[0].energy.without_eq_import_J - $a.buses[0].energy.without_eq_export_J)')
step "grid energy / energy without equalization over 8 s on main: $RATIO"
jq -n --argjson r "$RATIO" '$r < 0.5' | grep -q true || fail "bus main did not converge: ratio $RATIO"

step "garbage on the socket"
R=$(printf 'garbage\n' | timeout 5 socat -t2 - "UNIX-CONNECT:$SOCK")
echo "$R" | jq -e '.ok == false and .error.code == "malformed"' >/dev/null || fail "garbage answer: $R"
R=$(printf '{"v":1,"id":3,"cmd":"self_destruct"}\n' | timeout 5 socat -t2 - "UNIX-CONNECT:$SOCK")
echo "$R" | jq -e '.id == 3 and .error.code == "unknown_command"' >/dev/null || fail "unknown command answer: $R"
R=$( (head -c 100000 /dev/zero | tr '\0' x; echo) | timeout 5 socat -t2 - "UNIX-CONNECT:$SOCK" 2>/dev/null)
echo "$R" | jq -e '.error.code == "too_large"' >/dev/null || fail "oversized answer: $R"
head -c 20000 /dev/urandom | timeout 5 socat -t1 - "UNIX-CONNECT:$SOCK" >/dev/null 2>&1
expect_rc 0 "" "serving after garbage" -- status
kill -0 "$EQD_PID" || fail "eqd died"

step "unprivileged user"
AS_NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
R=$("${AS_NOBODY[@]}" "$EQCTL" status 2>&1); RC=$?
[ "$RC" = 3 ] || fail "nobody opened a 0660 socket (rc $RC): $R"
chmod o+rw "$SOCK"  # the admin lets everyone read
R=$("${AS_NOBODY[@]}" "$EQCTL" status 2>&1) || fail "nobody cannot read: $R"
R=$("${AS_NOBODY[@]}" "$EQCTL" channels --role eq 2>&1) || fail "nobody cannot list channels: $R"
R=$("${AS_NOBODY[@]}" "$EQCTL" assign cab1/15 2>&1); RC=$?
[ "$RC" = 1 ] && echo "$R" | grep -q "needs the operator role" || fail "nobody could assign or wrong error (rc $RC): $R"
R=$("${AS_NOBODY[@]}" "$EQCTL" set --bus aux deadband_W=45 2>&1); RC=$?
[ "$RC" = 1 ] || fail "nobody could set (rc $RC): $R"
# Roles (docs/control-api.md): a supplementary member of api.group (users) is an operator, who may not
# set; a member of api.admin_group (staff) is an admin, who may.
R=$(setpriv --reuid=65534 --regid=65534 --groups=100 "$EQCTL" set --bus aux deadband_W=45 2>&1); RC=$?
[ "$RC" = 1 ] && echo "$R" | grep -q "needs the admin role" || fail "an operator could set or wrong error (rc $RC): $R"
R=$(setpriv --reuid=65534 --regid=65534 --groups=50 "$EQCTL" set --bus aux deadband_W=45 2>&1) ||
  fail "member of group staff (api.admin_group) cannot set: $R"

step "restart eqd: the assignments and parameters come back"
stop_eqd
jq -e '.channels["cab2/16"].assigned == true and .channels["cab2/16"].limits.max_charge_W == 3000
       and .channels["cab1/15"].assigned == false and .buses.main.tau_s == 3 and .buses.aux.deadband_W == 45
       and .buses.aux.use_forecast == false and (.buses.main | has("use_forecast") | not)' \
  "$STATE/state.json" >/dev/null || fail "state file: $(cat "$STATE/state.json")"
start_eqd 2
grep -q "restored assignment of cab2/16" "$WORK/eqd-2.log" || fail "no restore line in the log"
wait_for 15 "cab2/16 restored in equalization" \
  "$(role_of cab2/16) == \"equalization\" and ([.channels[] | select(.channel == \"cab1/15\")] | length == 0)" \
  -- channels --role eq
ctl --json channels --role eq
[ "$(echo "$OUT" | jq '[.channels[] | select(.channel == "cab2/16") | .limits.max_charge_W][0]')" = 3000 ] ||
  fail "restored limits of cab2/16 wrong: $OUT"
wait_for 5 "restored parameters" '.buses[0].params.tau_s == 3 and .buses[1].params.deadband_W == 45
  and .buses[1].params.use_forecast == false and .buses[0].params.use_forecast == true' -- status

step "corrupt state file"
stop_eqd
echo '{"version":1,"channels":{"cab2/16":' >"$STATE/state.json"
start_eqd 3
grep -q "is corrupt" "$WORK/eqd-3.log" || fail "no log line about the corrupt state file"
ls "$STATE"/state.json.corrupt-* >/dev/null 2>&1 || fail "corrupt state file not moved aside"
# Config's buffers apply again (cab1/15 is back).
wait_for 15 "config buffers after a corrupt state" "$(role_of cab1/15) == \"equalization\"" -- channels --role eq

step "PASS"
