#!/usr/bin/env bash
# eqd's sd_notify protocol without systemd: a stand-in notify socket records what eqd sends while
# eqsim serves the demo rig on loopback. Checks: READY=1 only after the control loop cycled (STATUS
# names the controllers), WATCHDOG=1 while cycling, none while ONLY the control thread is stalled
# (ptrace), again afterwards, RELOADING=1 then READY=1 on SIGHUP (valid and invalid file), STOPPING=1
# and exit 0 on SIGTERM.
#   notify_test.sh EQD EQSIM SOURCE_DIR WORK_DIR
set -euo pipefail
eqd=$1 eqsim=$2 src=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- notify log" >&2; cat "$work/notify.log" >&2 || true
         echo "--- eqd log" >&2; tail -30 "$work/eqd.log" >&2 || true; exit 1; }
count() { grep -c -- "$1" "$work/notify.log" || true; }
wait_for() {  # wait_for PATTERN SECONDS
  local end=$((SECONDS + $2)); until grep -q -- "$1" "$work/notify.log"; do
    ((SECONDS < end)) || fail "no '$1' within $2 s"; sleep 0.1; done; }

port=$((20000 + RANDOM % 20000))
"$eqsim" --rig "$src/config/rigs/demo.yaml" --base-port "$port" --write-eqd-config "$work/eqd.yaml" --quiet \
  >"$work/eqsim.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do [ -s "$work/eqd.yaml" ] && break; sleep 0.1; done
[ -s "$work/eqd.yaml" ] || fail "eqsim wrote no config"
/usr/bin/python3 "$here/notify_listener.py" "$work/notify.sock" "$work/notify.log" & pids+=($!)
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done

# WATCHDOG_USEC=2 s: eqd feeds every second while healthy.
NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=2000000 "$eqd" --config "$work/eqd.yaml" \
  --set "state_dir=$work" --set "api.socket=$work/eqd.sock" --set metrics.enabled=false >"$work/eqd.log" 2>&1 &
eqd_pid=$!; pids+=($eqd_pid)

wait_for "READY=1" 10
grep "READY=1" "$work/notify.log" | head -1 | grep -q "controller(s) connected" || fail "READY without STATUS"
[ "$(count WATCHDOG=1)" -eq 0 ] || fail "WATCHDOG=1 before READY=1" 
sleep 3.2
n=$(count WATCHDOG=1); ((n >= 2)) || fail "only $n WATCHDOG=1 in 3 s of normal operation"
echo "ok: READY=1 and $n WATCHDOG=1 in 3 s"

# Stall only the control thread: the main thread keeps running but must stop feeding the watchdog.
before=$(count WATCHDOG=1)
set +e; /usr/bin/python3 "$here/stall_thread.py" "$eqd_pid" eqd-control 4 >"$work/stall.log" 2>&1; rc=$?; set -e
if ((rc == 3)); then echo "SKIP-PART: ptrace not permitted here: $(cat "$work/stall.log")"
else
  ((rc == 0)) || fail "stall_thread: $(cat "$work/stall.log")"
  # At most one feed can still be in flight from just before the stall.
  during=$(( $(count WATCHDOG=1) - before )); ((during <= 1)) || fail "$during WATCHDOG=1 while the control thread was stalled"
  kill -0 "$eqd_pid" || fail "eqd died during the stall"
  after=$(count WATCHDOG=1); sleep 2.2
  (( $(count WATCHDOG=1) > after )) || fail "no WATCHDOG=1 after the control thread resumed"
  echo "ok: no WATCHDOG=1 while the control thread was stalled 4 s ($during in flight), fed again after"
fi

# Reload with the same valid file, then with a broken one: RELOADING=1 ... READY=1 both times; the
# broken one is refused and eqd keeps controlling (watchdog still fed).
r0=$(count RELOADING=1); y0=$(count READY=1)
kill -HUP "$eqd_pid"; sleep 1.5
(( $(count RELOADING=1) == r0 + 1 && $(count READY=1) == y0 + 1 )) || fail "no RELOADING=1/READY=1 around a reload"
cp "$work/eqd.yaml" "$work/eqd.yaml.good"; echo "bogus_key: 1" >>"$work/eqd.yaml"
kill -HUP "$eqd_pid"; sleep 1.5
(( $(count RELOADING=1) == r0 + 2 && $(count READY=1) == y0 + 2 )) || fail "no RELOADING=1/READY=1 around a refused reload"
grep -q "reload refused" "$work/eqd.log" || fail "refused reload not logged"
w=$(count WATCHDOG=1); sleep 2.2; (( $(count WATCHDOG=1) > w )) || fail "watchdog not fed after a refused reload"
echo "ok: RELOADING=1/READY=1 around reloads; bad config refused and control goes on"

kill -TERM "$eqd_pid"
set +e; wait "$eqd_pid"; rc=$?; set -e
((rc == 0)) || fail "eqd exit code $rc on SIGTERM"
grep -q "STOPPING=1" "$work/notify.log" || fail "no STOPPING=1"
echo "ok: STOPPING=1 and exit 0 on SIGTERM"
