#!/usr/bin/env bash
# Learned forecasts end to end (issue #14): eqsim serves step and cycle numbers of repeating programs
# over Modbus (eqd's default profile), eqd's predictor thread learns them, the skill gate opens and the
# law counts the learned forecasts (eqctl channels: SKILL and ~forecast; eqctl status: learning, skill);
# at stop eqd writes state_dir/learned.bin and the next eqd restores it.
# Usage: eqctl_learning.sh EQSIM EQD EQCTL RIG_YAML. Bounded: < 90 s.
set -uo pipefail
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/eqctl_rig.sh"
rig_start

step "step and cycle numbers reach eqd"
wait_for 15 "step numbers of cab1/1..3" '[.channels[] | select(.role == "test") | .step_index != null] | all and length == 3' \
  -- channels
step "the skill gate opens on every test channel and the law counts learned forecasts"
wait_for 70 "skill > 0.5 and a learned forecast in use on every test channel" \
  '[.channels[] | select(.role == "test") | (.forecast_skill // -1) > 0.5 and .learned_forecast_W != null] | all and length == 3' \
  -- channels
ctl channels
echo "$OUT" | grep -q "SKILL" || fail "eqctl channels has no SKILL column: $OUT"
echo "$OUT" | grep -Eq "cab1/[123] .* ~-?[0-9]+ " || fail "no learned forecast shown as ~W: $OUT"
ctl status
# The bus's own skill (of its learned path, which the law uses above 0.2) is scored and shown; whether
# this tiny rig's path beats persistence 2 s ahead is the unit tests' and the benchmark's business. The
# default law, planned, also reports its statistical path (stat_forecast on by default).
echo "$OUT" | grep -A1 "^bus main " | grep -Eq "^  forecast +on \(horizon 5 s, learning, skill -?[0-9]+\.[0-9][0-9](, statistical path (in use|gated))?\)$" ||
  fail "status does not show learning with its skill: $OUT"

step "stop: learned.bin written; the next eqd restores it"
kill -TERM "$RIG_EQD_PID"
for _ in $(seq 50); do kill -0 "$RIG_EQD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$RIG_EQD_PID" 2>/dev/null && fail "eqd did not stop"
[ -s "$WORK/state/learned.bin" ] || fail "no learned.bin in $WORK/state"
"$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$SOCK" --set "state_dir=$WORK/state" --set metrics.enabled=false \
  --set api.group=root --set control_loop.shutdown_timeout_ms=1000 >"$WORK/eqd2.log" 2>&1 &
RIG_EQD_PID=$!
FAIL_LOGS="$FAIL_LOGS $WORK/eqd2.log"
wait_answering "$RIG_EQD_PID" eqd
grep -q "learned forecasts: restored 3 channel(s)" "$WORK/eqd2.log" || fail "the restarted eqd restored nothing"
step "PASS"
