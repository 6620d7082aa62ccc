#!/usr/bin/env bash
# Law `planned` end to end (issue #15 item 2): eqsim's demo rig announces its programs (30 s), eqd runs
# bus main with the default law, planned: its planner thread starts, plans are applied (eqctl status:
# plans_applied grows, law "planned"), the bus is balanced, and the other bus, set to law adaptive,
# keeps its law and applies no plan.
# Usage: eqctl_planned.sh EQSIM EQD EQCTL RIG_YAML. Bounded: < 60 s.
set -uo pipefail
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4
HERE=$(cd "$(dirname "$0")" && pwd)
RIG_EQD_ARGS=(--set buses.aux.law=adaptive)
source "$HERE/eqctl_rig.sh"
rig_start

step "the planner thread starts"
grep -q "planner thread started" "$WORK/eqd.log" || fail "no planner thread in the log"
step "plans are applied on bus main, whose law is planned"
wait_for 20 "plans applied" '.buses[] | select(.bus == "main") | .params.law == "planned" and .plans_applied > 5' -- status
step "the bus is balanced: |net| under a tenth of |free| within 30 s"
wait_for 30 "main balanced" \
  '.buses[] | select(.bus == "main") | (.free_W | fabs) > 500 and (.net_W | fabs) < 0.1 * (.free_W | fabs)' -- status
step "the other bus keeps its own law and applies no plan"
ctl --json status
[ "$(echo "$OUT" | jq -r '[.buses[] | select(.bus != "main") | .plans_applied == 0 and .params.law == "adaptive"] | all')" = true ] ||
  fail "another bus applied plans or changed law: $(echo "$OUT" | jq -c '[.buses[] | {bus, law: .params.law, plans_applied}]')"
step "PASS"
