# Helpers for the end-to-end scripts that drive eqd through eqctl (eqctl_e2e.sh, discovery_e2e.sh,
# discovery_veth.sh, discovery_buses.sh, discovery_avahi_restart.sh). Source it; the functions read, at call time:
#   EQCTL      the eqctl binary            WORK   the test's scratch directory
#   START      $SECONDS at the test's start
#   FAIL_LOGS  glob patterns (unexpanded, space-separated) of logs to show on failure
#   CTL_TIMEOUT_S  per eqctl call (default 10)   WAIT_POLL_S  wait_for's poll period (default 0.1)
#   FAIL_TAIL  lines of each log shown on failure (default 25)

# fail MESSAGE: print it with the elapsed time and the tails of the logs, exit 1.
fail() {
  echo "FAIL ($((SECONDS - START)) s): $*"
  local f
  for f in $FAIL_LOGS; do  # unquoted on purpose: the patterns are globbed now, when the logs exist
    [ -f "$f" ] && { echo "--- $f"; tail -n "${FAIL_TAIL:-25}" "$f"; }
  done
  exit 1
}

step() { echo "[$((SECONDS - START)) s] $*"; }

# ctl_of CONTROLLER FIELD: jq filter on `eqctl controllers --json`: that field of that controller.
ctl_of() {
  echo "[.controllers[] | select(.controller == \"$1\") | .$2][0]"
}

# ctl ARGS...: runs eqctl, keeps stdout/stderr in $OUT/$ERR and the exit code in $RC.
ctl() {
  OUT=$(timeout "${CTL_TIMEOUT_S:-10}" "$EQCTL" "$@" 2>"$WORK/err")
  RC=$?
  ERR=$(cat "$WORK/err")
}

# wait_answering PID NAME: until the eqd of PID answers `eqctl status` on $SOCK (10 s); fails if it exits.
wait_answering() {
  local pid=$1 name=$2
  local until=$((SECONDS + 10))
  while [ $SECONDS -lt $until ]; do
    kill -0 "$pid" 2>/dev/null || fail "$name exited at start"
    ctl status && [ "$RC" = 0 ] && return 0
    sleep 0.1
  done
  fail "$name does not answer on $SOCK"
}

# wait_for SECONDS DESCRIPTION JQ-FILTER -- eqctl reading command: until the filter prints true.
wait_for() {
  local limit=$1 what=$2 filter=$3
  shift 4
  local until=$((SECONDS + limit))
  while [ $SECONDS -lt $until ]; do
    ctl --json "$@"
    if [ "$RC" = 0 ] && [ "$(echo "$OUT" | jq -r "$filter" 2>/dev/null)" = true ]; then return 0; fi
    sleep "${WAIT_POLL_S:-0.1}"
  done
  fail "$what: not reached within $limit s (last: rc=$RC $(echo "$OUT" | head -c 600) $ERR)"
}
