#!/usr/bin/env bash
# Backup and restore end to end with the real binaries (issue #16): eqsim + eqd + eqctl. Audit rows
# and persisted state are made (release/assign with limits, set tau_s), a connection cache is present;
# a viewer (nobody) is refused `eqctl backup` naming the admin role; root's backup is taken while eqd
# runs and writes (0600 file, a tar whose manifest lists each member); the backup is in the audit log;
# `eqd --restore` is refused while eqd runs, and refuses a tampered copy, changing nothing; eqd is
# stopped, state_dir wiped and the configuration altered, the archive restored (the altered file moved
# aside, not deleted); the restarted eqd has the rows, state (the assigned limits, tau_s) and cache back.
# Usage: eqctl_backup_e2e.sh EQSIM EQD EQCTL RIG_YAML. Runs as root (setpriv to nobody). Bounded: < 60 s.
set -uo pipefail
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4

WORK=$(mktemp -d /tmp/eqctl-backup-XXXXXX)
chmod 0755 "$WORK"  # traversable for the unprivileged client
SOCK=$WORK/run/eqd.sock
STATE=$WORK/state
DB=$STATE/history.db
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
source "$(cd "$(dirname "$0")" && pwd)/eqctl_lib.sh"  # fail, step, ctl, wait_for, wait_answering

command -v sqlite3 >/dev/null || fail "sqlite3 (Debian package sqlite3) is needed to check the database"
OVERRIDES=(--set "api.socket=$SOCK" --set "state_dir=$STATE" --set metrics.enabled=false --set api.group=users
           --set api.admin_group=staff --set control_loop.shutdown_timeout_ms=2000)

start_eqd() {
  "$EQD" -c "$WORK/eqd.yaml" "${OVERRIDES[@]}" >"$WORK/eqd-$1.log" 2>&1 &
  EQD_PID=$!
  wait_answering "$EQD_PID" "eqd #$1"
}
stop_eqd() {
  kill -TERM "$EQD_PID"
  wait "$EQD_PID" 2>/dev/null
  EQD_PID=""
}
audit_count() { sqlite3 "$DB" 'SELECT count(*) FROM audit'; }

step "start eqsim and eqd; make audit rows and persisted state"
"$EQSIM" --rig "$RIG" --base-port 0 --write-eqd-config "$WORK/eqd.yaml" --eqd-tau 2 -q >"$WORK/eqsim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 50); do [ -s "$WORK/eqd.yaml" ] && break; sleep 0.1; done
[ -s "$WORK/eqd.yaml" ] || fail "eqsim wrote no eqd config"
mkdir -p "$STATE"
# A connection cache as discovery leaves it (discovery is off here: eqd only carries the file).
echo '{"version":1,"controllers":[{"name":"cab9","host":"192.0.2.9","port":502}]}' >"$STATE/controllers-cache.json"
start_eqd 1
wait_for 15 "config buffers in equalization" \
  '[.channels[] | select(.channel == "cab2/16" and .role == "equalization")] | length == 1' -- channels --role eq
ctl release cab2/16
[ "$RC" = 0 ] || fail "release cab2/16: rc $RC $ERR"
wait_for 15 "cab2/16 back to a test channel" '[.channels[] | select(.channel == "cab2/16") | .role][0] == "test"' -- channels
ctl assign cab2/16 --max-charge-W 2345
[ "$RC" = 0 ] || fail "assign cab2/16: rc $RC $ERR"
ctl set --bus main tau_s=7
[ "$RC" = 0 ] || fail "set tau_s: rc $RC $ERR"
grep -q 2345 "$STATE/state.json" || fail "the assigned limit is not in state.json: $(cat "$STATE/state.json")"

step "a viewer may not back up"
chmod 0666 "$SOCK"
NOBODY_OUT=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$EQCTL" --socket "$SOCK" backup "$WORK/nobody.tar" 2>&1)
NOBODY_RC=$?
[ "$NOBODY_RC" = 1 ] || fail "backup as nobody: rc $NOBODY_RC (expected 1, refused): $NOBODY_OUT"
echo "$NOBODY_OUT" | grep -q "backup needs the admin role" || fail "the refusal does not name the admin role: $NOBODY_OUT"
[ -e "$WORK/nobody.tar" ] && fail "a refused backup left a file"

step "backup while eqd runs and writes"
ctl backup "$WORK/b1.tar"
[ "$RC" = 0 ] || fail "eqctl backup: rc $RC $OUT $ERR"
echo "$OUT" | grep -q "backup written to $WORK/b1.tar" || fail "eqctl backup said: $OUT"
[ "$(stat -c %a "$WORK/b1.tar")" = 600 ] || fail "the archive is mode $(stat -c %a "$WORK/b1.tar"), not 0600"
LIST=$(tar -tf "$WORK/b1.tar" | tr '\n' ' ')
[ "$LIST" = "manifest.json history.db state.json controllers-cache.json eqd.yaml " ] || fail "archive members: $LIST"
tar -xOf "$WORK/b1.tar" manifest.json | jq -e --arg sha "$(tar -xOf "$WORK/b1.tar" state.json | sha256sum | cut -d' ' -f1)" \
  '.format == "eqd-backup" and .format_version == 1 and (.schema_version | type == "number")
   and ([.files[] | select(.name == "state.json")][0].sha256 == $sha)' >/dev/null ||
  fail "manifest: $(tar -xOf "$WORK/b1.tar" manifest.json)"
ls "$STATE" | grep -q backup && fail "temporary files left in state_dir: $(ls "$STATE")"
ctl audit --json --since 5m
echo "$OUT" | jq -e -s '[.[] | select(.command == "backup")] | length == 2
  and (map(select(.result == "ok"))[0].after.files | length == 4)
  and (map(select(.result == "forbidden"))[0].uid == 65534)' >/dev/null || fail "backups not audited: $OUT"
# Rows taken into the backup: the restored database must have at least these (later ones may follow).
ROWS_BACKED_UP=$(tar -xOf "$WORK/b1.tar" history.db >"$WORK/copy.db" && sqlite3 "$WORK/copy.db" 'SELECT count(*) FROM audit')
[ "$ROWS_BACKED_UP" -ge 4 ] || fail "only $ROWS_BACKED_UP audit rows in the backup"
[ "$(sqlite3 "$WORK/copy.db" 'PRAGMA integrity_check')" = ok ] || fail "the backed-up database fails integrity_check"
cp "$STATE/state.json" "$WORK/state.saved"

step "eqd --restore refuses while eqd runs, and refuses a tampered archive"
OUT=$("$EQD" -c "$WORK/eqd.yaml" "${OVERRIDES[@]}" --restore "$WORK/b1.tar" 2>&1)
[ $? = 1 ] || fail "--restore while running did not exit 1: $OUT"
echo "$OUT" | grep -q "eqd is running" || fail "--restore while running said: $OUT"
ls "$STATE" "$WORK" | grep -q before-restore && fail "a refused restore moved files aside"
python3 - "$WORK/b1.tar" "$WORK/bad.tar" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.index(b'192.0.2.9')  # inside controllers-cache.json's data
b[i] = ord('8')
open(sys.argv[2], 'wb').write(b)
PY
stop_eqd
OUT=$("$EQD" -c "$WORK/eqd.yaml" "${OVERRIDES[@]}" --restore "$WORK/bad.tar" 2>&1)
[ $? = 1 ] || fail "--restore of a tampered archive did not exit 1: $OUT"
echo "$OUT" | grep -q "controllers-cache.json: SHA-256 mismatch" || fail "tampered archive: $OUT"
ls "$STATE" "$WORK" | grep -q before-restore && fail "a refused restore moved files aside"

step "wipe, restore, start: rows, state and cache are back"
rm -rf "$STATE"
echo "# edited after the backup" >>"$WORK/eqd.yaml"
OUT=$("$EQD" -c "$WORK/eqd.yaml" "${OVERRIDES[@]}" --restore "$WORK/b1.tar" 2>&1)
[ $? = 0 ] || fail "--restore: $OUT"
echo "$OUT" | grep -q "restored 4 file(s)" || fail "--restore said: $OUT"
grep -q "edited after the backup" "$WORK/eqd.yaml" && fail "the configuration was not restored"
grep -q "edited after the backup" "$WORK"/eqd.yaml.before-restore-* || fail "the replaced configuration was not kept aside"
cmp -s "$STATE/state.json" "$WORK/state.saved" || fail "state.json differs after restore"
grep -q 192.0.2.9 "$STATE/controllers-cache.json" || fail "the connection cache is not back"
[ "$(audit_count)" = "$ROWS_BACKED_UP" ] || fail "restored database has $(audit_count) rows, the backup $ROWS_BACKED_UP"
start_eqd 2
ctl audit --json --channel cab2/16
echo "$OUT" | jq -e -s 'length == 2 and .[0].command == "release" and .[1].command == "assign"
  and .[1].after.limits.max_charge_W == 2345' >/dev/null || fail "audit rows not back: $OUT"
wait_for 15 "restored limits and tau_s in effect" \
  '([.channels[] | select(.channel == "cab2/16")][0].limits.max_charge_W == 2345)' -- channels
ctl status --json
echo "$OUT" | jq -e '[.buses[] | select(.bus == "main")][0].params.tau_s == 7' >/dev/null ||
  fail "tau_s not restored: $(echo "$OUT" | jq -c '.buses[0].params')"
grep -q "schema migrated\|corrupt" "$WORK/eqd-2.log" && fail "the restored database was not taken as is: $(cat "$WORK/eqd-2.log")"
step "ok"
