#!/usr/bin/env bash
# `eqctl watch` through a pseudo-terminal against a real eqd + eqsim (issue #18 item 6): header and
# timestamp on the top line of every frame, nothing scrolls off a 24-row terminal, Ctrl-C exits 0;
# appended frames without escape codes when stdout is not a terminal. The checks: eqctl_pty.py.
# Usage: eqctl_watch.sh EQSIM EQD EQCTL RIG_YAML. Bounded: < 30 s.
set -uo pipefail
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/eqctl_rig.sh"
rig_start
wait_for 15 "the config buffers in equalization" '[.channels[] | select(.role == "equalization")] | length == 4' \
  -- channels --role eq
step "eqctl watch on a pseudo-terminal"
python3 "$HERE/eqctl_pty.py" watch "$EQCTL" || fail "eqctl watch"
step "PASS"
