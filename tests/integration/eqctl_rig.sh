# A real rig for the eqctl tests (eqctl_cli.sh, eqctl_watch.sh, eqctl_completion.sh): eqsim's demo
# rig on loopback and an eqd on a socket in the test's scratch directory. Source it after setting
#   EQSIM EQD RIG   the binaries and the rig file
# then call rig_start (it sets WORK, SOCK, START and exports EQD_SOCKET; the EXIT trap stops both
# and removes WORK). Uses eqctl_lib.sh (fail, step, ctl, wait_for), so EQCTL must be set too.

rig_cleanup() {
  for p in $RIG_EQD_PID $RIG_SIM_PID; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 30); do
    local alive=0 p
    for p in $RIG_EQD_PID $RIG_SIM_PID; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in $RIG_EQD_PID $RIG_SIM_PID; do kill -KILL "$p" 2>/dev/null; done
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
}

rig_start() {
  START=$SECONDS
  WORK=$(mktemp -d /tmp/eqctl-test-XXXXXX)
  SOCK=$WORK/run/eqd.sock
  export EQD_SOCKET=$SOCK
  RIG_SIM_PID="" RIG_EQD_PID=""
  FAIL_LOGS="$WORK/eqd.log $WORK/eqsim.log"
  trap rig_cleanup EXIT
  source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/eqctl_lib.sh"
  "$EQSIM" --rig "$RIG" --base-port 0 --write-eqd-config "$WORK/eqd.yaml" --eqd-tau 2 -q >"$WORK/eqsim.log" 2>&1 &
  RIG_SIM_PID=$!
  for _ in $(seq 50); do [ -s "$WORK/eqd.yaml" ] && break; sleep 0.1; done
  [ -s "$WORK/eqd.yaml" ] || fail "eqsim wrote no eqd config"
  : >"$WORK/eqd.log"
  rig_start_eqd
}

# Starts eqd on the rig (rig_start does; again after a test stopped it: the same state_dir, its log
# appended to eqd.log).
rig_start_eqd() {
  # api.group=root: the group exists on every machine (no warning); the tests run as root.
  # RIG_EQD_ARGS (an array, optional): more eqd options, e.g. (--set buses.main.law=planned).
  "$EQD" -c "$WORK/eqd.yaml" ${RIG_EQD_ARGS[@]+"${RIG_EQD_ARGS[@]}"} --set "api.socket=$SOCK" --set "state_dir=$WORK/state" --set metrics.enabled=false \
    --set api.group=root --set control_loop.shutdown_timeout_ms=1000 >>"$WORK/eqd.log" 2>&1 &
  RIG_EQD_PID=$!
  wait_answering "$RIG_EQD_PID" eqd
}

# Stops eqd (SIGTERM, as systemd does) and waits for it to exit.
rig_stop_eqd() {
  kill -TERM "$RIG_EQD_PID" 2>/dev/null
  wait "$RIG_EQD_PID" 2>/dev/null
  RIG_EQD_PID=""
}
