#!/usr/bin/env bash
# The audit log end to end with the real binaries (issue #16): eqsim + eqd + eqctl. The test's own
# release and assign of cab2/16 show in `eqctl audit --json` under its uid and user name, with the values
# before and after; a change refused to another uid (nobody, through setpriv) is recorded with that uid
# and role; the daemon's start and a SIGHUP reload with the sender's uid and pid; the table fits 80
# columns. Then eqd is killed with SIGKILL while a client floods it with audited requests: the
# database passes PRAGMA integrity_check, is not moved aside at the next start, and keeps the records.
# Last, the energy history: a stopped eqd has written its minute, holding what its bus counters said.
# Usage: eqctl_audit_e2e.sh EQSIM EQD EQCTL RIG_YAML. Runs as root (setpriv to nobody). Bounded: < 60 s.
set -uo pipefail
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4

WORK=$(mktemp -d /tmp/eqctl-audit-XXXXXX)
chmod 0755 "$WORK"  # traversable for the unprivileged client
SOCK=$WORK/run/eqd.sock
STATE=$WORK/state
DB=$STATE/history.db
export EQD_SOCKET=$SOCK
SIM_PID="" EQD_PID="" FLOOD_PID=""
START=$SECONDS

cleanup() {
  for p in $FLOOD_PID $EQD_PID $SIM_PID; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 30); do
    alive=0
    for p in $EQD_PID $SIM_PID; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in $FLOOD_PID $EQD_PID $SIM_PID; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

FAIL_LOGS="$WORK/eqd-*.log"
FAIL_TAIL=30
CTL_TIMEOUT_S=15
WAIT_POLL_S=0.25
source "$(cd "$(dirname "$0")" && pwd)/eqctl_lib.sh"  # fail, step, ctl, wait_for, wait_answering

command -v sqlite3 >/dev/null || fail "sqlite3 (Debian package sqlite3) is needed to check the database"
ME_UID=$(id -u)
ME=$(id -un)

start_eqd() {
  "$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$SOCK" --set "state_dir=$STATE" --set metrics.enabled=false \
    --set api.group=users --set api.admin_group=staff --set control_loop.shutdown_timeout_ms=2000 >"$WORK/eqd-$1.log" 2>&1 &
  EQD_PID=$!
  wait_answering "$EQD_PID" "eqd #$1"
}

# audit_json ARGS...: `eqctl audit --json ARGS` into $OUT (one record per line), failing on an error.
audit_json() {
  ctl audit --json "$@"
  [ "$RC" = 0 ] || fail "eqctl audit --json $*: rc $RC: $ERR"
}

step "start eqsim and eqd"
"$EQSIM" --rig "$RIG" --base-port 0 --write-eqd-config "$WORK/eqd.yaml" --eqd-tau 2 -q >"$WORK/eqsim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 50); do [ -s "$WORK/eqd.yaml" ] && break; sleep 0.1; done
[ -s "$WORK/eqd.yaml" ] || fail "eqsim wrote no eqd config"
start_eqd 1
wait_for 15 "config buffers in equalization" \
  '[.channels[] | select(.channel == "cab2/16" and .role == "equalization")] | length == 1' -- channels --role eq
[ "$(sqlite3 "$DB" 'PRAGMA journal_mode')" = wal ] || fail "history database not in WAL mode"

step "release and assign cab2/16, a refused set as nobody"
ctl release cab2/16
[ "$RC" = 0 ] || fail "release cab2/16: rc $RC $ERR"
wait_for 15 "cab2/16 back to a test channel" '[.channels[] | select(.channel == "cab2/16") | .role][0] == "test"' -- channels
ctl assign cab2/16 --max-charge-W 2500
[ "$RC" = 0 ] || fail "assign cab2/16: rc $RC $ERR"
chmod 0666 "$SOCK"
NOBODY_OUT=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$EQCTL" --socket "$SOCK" set --bus main tau_s=12 2>&1)
NOBODY_RC=$?
[ "$NOBODY_RC" = 1 ] || fail "set as nobody: rc $NOBODY_RC (expected 1, refused): $NOBODY_OUT"

step "eqctl audit --json shows them under their uids"
audit_json --channel cab2/16
echo "$OUT" | jq -e -s --argjson uid "$ME_UID" --arg user "$ME" '
  length == 2
  and .[0].command == "release" and .[0].result == "ok" and .[0].uid == $uid and .[0].user == $user
  and .[0].before.role == "equalization" and .[0].after.role == "test"
  and .[1].command == "assign" and .[1].result == "ok" and .[1].uid == $uid and .[1].user == $user
  and .[1].request.limits.max_charge_W == 2500 and .[1].after.limits.max_charge_W == 2500
  and .[1].role == "admin" and (.[1].pid | type == "number") and .[1].time_ms <= (now * 1000)' >/dev/null ||
  fail "audit of cab2/16 is not this test's release + assign under uid $ME_UID ($ME): $OUT"
audit_json --user nobody
echo "$OUT" | jq -e -s '
  length == 1 and .[0].command == "set" and .[0].result == "forbidden" and .[0].uid == 65534
  and .[0].role == "viewer" and .[0].bus == "main" and .[0].after == null
  and (.[0].before.params.tau_s | type == "number")' >/dev/null ||
  fail "the refused set of nobody is not recorded as such: $OUT"
audit_json --user "$ME" --since 1h
echo "$OUT" | jq -e -s --argjson pid "$EQD_PID" '[.[] | select(.command == "start" and .pid == $pid and .result == "ok")] | length == 1' \
  >/dev/null || fail "no start record of eqd (pid $EQD_PID): $OUT"
audit_json --since 2000-01-01 --limit 2
[ "$(echo "$OUT" | wc -l)" = 2 ] || fail "--limit 2 printed $(echo "$OUT" | wc -l) lines"
expect_usage() { ctl audit "$@"; [ "$RC" = 2 ] || fail "eqctl audit $* exited $RC, expected 2 (usage): $ERR"; }
expect_usage --since yesterday
expect_usage --limit 0

step "SIGHUP: the reload is recorded with the sender's uid and pid"
kill -HUP "$EQD_PID"
SENDER=$BASHPID
wait_for 15 "reload recorded" '.buses | length > 0' -- status
for _ in $(seq 40); do
  audit_json --since 5m
  echo "$OUT" | jq -e -s 'any(.[]; .command == "reload")' >/dev/null && break
  sleep 0.25
done
echo "$OUT" | jq -e -s --argjson uid "$ME_UID" --argjson pid "$SENDER" \
  'any(.[]; .command == "reload" and .result == "ok" and .uid == $uid and .pid == $pid and (.after.channels | type == "number"))' \
  >/dev/null || fail "no reload record from uid $ME_UID pid $SENDER: $OUT"

step "the table fits 80 columns"
ctl audit --since 1h
[ "$RC" = 0 ] || fail "eqctl audit: rc $RC $ERR"
echo "$OUT" | head -1 | grep -q "^TIME (UTC) *USER *ROLE *COMMAND *TARGET *RESULT$" || fail "audit table header: $OUT"
echo "$OUT" | grep -q "assign *cab2/16 *ok" || fail "audit table lacks the assign of cab2/16: $OUT"
WIDEST=$(echo "$OUT" | awk '{ if (length($0) > w) w = length($0) } END { print w }')
[ "$WIDEST" -le 80 ] || fail "audit table is $WIDEST columns wide: $OUT"
grep -q "audit: uid $ME_UID ($ME, admin, pid [0-9]*) assign cab2/16: ok" "$WORK/eqd-1.log" ||
  fail "the log lacks the audit line of the assign"

step "kill -9 during a flood of audited requests"
ROWS_BEFORE=$(sqlite3 "$DB" 'SELECT count(*) FROM audit')
( for _ in $(seq 4000); do echo '{"cmd":"release","channel":"cab9/99"}'; done | socat -t 5 - "UNIX-CONNECT:$SOCK" >/dev/null 2>&1 ) &
FLOOD_PID=$!
for _ in $(seq 100); do
  [ "$(sqlite3 "$DB" 'SELECT count(*) FROM audit' 2>/dev/null || echo 0)" -gt $((ROWS_BEFORE + 200)) ] && break
  sleep 0.05
done
kill -KILL "$EQD_PID"
wait "$EQD_PID" 2>/dev/null
EQD_PID=""
kill -KILL "$FLOOD_PID" 2>/dev/null
wait "$FLOOD_PID" 2>/dev/null
FLOOD_PID=""
ROWS_AFTER=$(sqlite3 "$DB" 'SELECT count(*) FROM audit')
[ "$ROWS_AFTER" -gt $((ROWS_BEFORE + 200)) ] || fail "the flood wrote only $((ROWS_AFTER - ROWS_BEFORE)) rows before the kill"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after kill -9: $(sqlite3 "$DB" 'PRAGMA integrity_check')"
start_eqd 2
ls "$STATE" | grep -q corrupt && fail "the database was moved aside after kill -9: $(ls "$STATE")"
audit_json --channel cab2/16
[ "$(echo "$OUT" | wc -l)" = 2 ] || fail "the records of cab2/16 did not survive kill -9: $OUT"
audit_json --channel cab9/99 --limit 1000000
[ "$(echo "$OUT" | wc -l)" -ge 200 ] || fail "the flood's records did not survive kill -9: $(echo "$OUT" | wc -l)"
echo "$OUT" | jq -e -s 'all(.[]; .result == "unknown_channel")' >/dev/null || fail "flood records: $(echo "$OUT" | head -3)"
step "energy history: a stop writes the minute in progress; it holds what the bus counters say"
# A database of its own, so that only this run's minutes are in it (the runs above share minutes).
stop_eqd_term() {
  kill -TERM "$EQD_PID"
  for _ in $(seq 80); do kill -0 "$EQD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$EQD_PID" 2>/dev/null && fail "eqd did not stop within 8 s of SIGTERM"
  wait "$EQD_PID" 2>/dev/null
  local rc=$?
  EQD_PID=""
  # 0 only: a sanitizer build exits otherwise on a leak or an error found at shutdown.
  [ "$rc" = 0 ] || fail "eqd exited $rc after SIGTERM"
}
stop_eqd_term
EDB=$WORK/energy.db
"$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$SOCK" --set "state_dir=$STATE" --set metrics.enabled=false \
  --set "history.path=$EDB" --set control_loop.shutdown_timeout_ms=2000 >"$WORK/eqd-3.log" 2>&1 &
EQD_PID=$!
wait_answering "$EQD_PID" "eqd #3"
sleep 2
ctl --json status
[ "$RC" = 0 ] || fail "status: $ERR"
STATUS=$OUT
stop_eqd_term
for bus in main aux; do
  SUMS=$(sqlite3 "$EDB" "SELECT count(*), coalesce(sum(samples), 0), coalesce(sum(free_import_J + free_export_J), 0)
                         FROM energy_bus WHERE bus = '$bus'")
  SEEN=$(echo "$STATUS" | jq --arg b "$bus" '[.buses[] | select(.bus == $b) | .energy | .without_eq_import_J + .without_eq_export_J][0]')
  awk -F'|' -v seen="$SEEN" -v bus="$bus" '{
    # rows, samples, energy: the rows hold at least what status said 0..1 s before the stop, and not much more.
    printf "bus %s: %s row(s), %s sample(s), %.1f J in the energy history; status said %.1f J before the stop\n", bus, $1, $2, $3, seen
    if ($1 < 1 || $2 < 5 || seen <= 0 || $3 < 0.999 * seen || $3 > 1.5 * seen) exit 1
  }' <<<"$SUMS" || fail "the energy history of bus $bus does not hold the bus counters' energy"
done
[ "$(sqlite3 "$EDB" "SELECT count(*) FROM energy_buffer WHERE channel = 'cab2/16' AND charged_J + discharged_J > 0")" -ge 1 ] ||
  fail "no energy_buffer row of buffer cab2/16: $(sqlite3 "$EDB" 'SELECT * FROM energy_buffer')"
echo "PASS ($((SECONDS - START)) s; $((ROWS_AFTER - ROWS_BEFORE)) rows written by the flood before SIGKILL)"
