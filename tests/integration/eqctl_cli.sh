#!/usr/bin/env bash
# eqctl's command line against a real eqd + eqsim (issue #18 items 1-4, 8): global options anywhere,
# --version, unknown commands, the "eqctl:" prefix on every usage error, set and assign in words (and
# set's warning where stat_forecast does nothing without use_forecast),
# assign --efficiency, the daemon's missing limits named by their options, and an unreachable daemon
# with --json (an error object on stdout, the message on stderr).
# Usage: eqctl_cli.sh EQSIM EQD EQCTL RIG_YAML VERSION. Runs as root. Bounded: < 30 s.
set -uo pipefail
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4 VERSION=$5
source "$(cd "$(dirname "$0")" && pwd)/eqctl_rig.sh"

expect() {  # expect RC STDERR-PATTERN DESCRIPTION -- eqctl args...  (pattern: grep -E, empty: any)
  local want=$1 pattern=$2 what=$3
  shift 4
  ctl "$@"
  [ "$RC" = "$want" ] || fail "$what: eqctl $* exited $RC, expected $want; stdout: $OUT; stderr: $ERR"
  if [ -n "$pattern" ]; then
    echo "$ERR" | grep -Eq -- "$pattern" || fail "$what: stderr lacks /$pattern/: $ERR"
  fi
}

every_line_prefixed() {  # every_line_prefixed DESCRIPTION: each line of $ERR starts with "eqctl: "
  [ -n "$ERR" ] || fail "$1: nothing on stderr"
  if echo "$ERR" | grep -v '^eqctl: ' | grep -q .; then fail "$1: a line without the eqctl: prefix: $ERR"; fi
}

rig_start

step "--version, unknown commands, the eqctl: prefix (item 2)"
expect 0 "" "version" -- --version
[ "$OUT" = "eqctl $VERSION" ] || fail "--version printed '$OUT', expected 'eqctl $VERSION'"
expect 0 "" "version after a command" -- status --version
[ "$OUT" = "eqctl $VERSION" ] || fail "status --version printed '$OUT'"
expect 2 "^eqctl: unknown command 'bogus' \(commands: status, channels, controllers, watch, assign, release, set, audit, report, backup\)$" \
  "unknown command" -- bogus
every_line_prefixed "unknown command"
[ -z "$OUT" ] || fail "unknown command printed on stdout: $OUT"
expect 2 "^eqctl: unknown controllers command 'bogus' \(commands: adopt, forget\)$" "unknown controllers command" \
  -- controllers bogus
expect 2 "^eqctl: a command is required" "no command" --
expect 2 "^eqctl: Could not convert: --max-charge-W = abc$" "bad number" -- assign cab1/1 --max-charge-W abc
every_line_prefixed "bad number"
expect 2 "^eqctl: Could not convert: --efficiency = x$" "bad efficiency" -- assign cab1/1 --efficiency x
expect 2 "" "bad role" -- channels --role boss
every_line_prefixed "bad role"
expect 2 "" "unexpected argument" -- status extra
every_line_prefixed "unexpected argument"
expect 2 "" "missing name" -- controllers adopt
every_line_prefixed "missing name"
expect 2 "^eqctl: set: " "bad set argument" -- set --bus main tau_s=abc
every_line_prefixed "bad set argument"

step "global options anywhere on the line (item 1)"
for args in "--json status" "status --json"; do
  # shellcheck disable=SC2086
  expect 0 "" "$args" -- $args
  echo "$OUT" | jq -e '.buses[0].bus == "main"' >/dev/null || fail "eqctl $args: not the status JSON: $OUT"
done
unset EQD_SOCKET
expect 0 "" "--socket after the command" -- channels --bus main --socket "$SOCK" --role eq --json
echo "$OUT" | jq -e '[.channels[] | .bus == "main"] | all and length > 0' >/dev/null ||
  fail "channels with trailing --socket/--json: $OUT"
expect 0 "" "--json between a command and its subcommand" -- controllers --json --socket "$SOCK"
echo "$OUT" | jq -e '.controllers | length > 0' >/dev/null || fail "controllers --json: $OUT"
expect 0 "" "--json between options of set" -- set --json --bus main tau_s=3 --socket "$SOCK"
echo "$OUT" | jq -e '.bus == "main" and .params.tau_s == 3' >/dev/null || fail "set --json: $OUT"
export EQD_SOCKET=$SOCK

step "set in words without --json (item 3)"
expect 0 "" "set" -- set --bus main tau_s=4 use_forecast=off
echo "$OUT" | grep -Eq '^bus main: set tau_s to 4, use_forecast to off; its parameters now: deadband_W [0-9.]+, export_limit_W [0-9.]+, fill_energy_Wh [0-9.]+, fill_lead_s [0-9.]+, fill_margin [0-9.]+, import_limit_W [0-9.]+, import_limit_average_s [0-9.]+, learn_forecast on, level_shaving on, mode balance, plan_travel_weight_s [0-9.]+, stat_forecast on, target_W [-0-9.]+, tau_s 4, use_forecast off, valley_fill on$' ||
  fail "set printed: $OUT"
echo "$OUT" | grep -q '[{}]' && fail "set printed JSON without --json: $OUT"
expect 0 "" "set back" -- set --bus main use_forecast=on

step "set mode=caps and its limits by name; a bad mode is a usage error naming the choices (issue #17)"
expect 0 "" "set caps" -- set --bus main mode=caps import_limit_W=5000 export_limit_W=0
echo "$OUT" | grep -Eq '^bus main: set mode to caps, import_limit_W to 5000, export_limit_W to 0;' ||
  fail "set caps printed: $OUT"
expect 0 "" "status in caps mode" -- status
echo "$OUT" | grep -Eq '^bus main  \[[a-z_]+\]  caps: import limit 5\.00 kW, export limit 0 W' ||
  fail "status in caps mode printed: $OUT"
expect 2 "mode: 'peak' is not one of: balance, caps" "set a bad mode" -- set --bus main mode=peak
expect 0 "" "set balance" -- set --bus main mode=balance
# stat_forecast (on by default) is a path for law planned (bus main's, the default): with use_forecast
# off there is no path, and the set that makes it so is kept, with a warning.
expect 0 "^eqctl: warning: bus main: stat_forecast is on but does nothing while use_forecast is off \(law planned then plans over no path\)$" \
  "use_forecast off with stat_forecast on" -- set --bus main use_forecast=off
echo "$OUT" | grep -Eq '^bus main: set use_forecast to off;' || fail "set use_forecast printed: $OUT"
every_line_prefixed "use_forecast off with stat_forecast on"
expect 0 "" "use_forecast on" -- set --bus main use_forecast=on
[ -z "$ERR" ] || fail "use_forecast on warned: $ERR"
expect 0 "" "stat_forecast off" -- set --bus main stat_forecast=off
[ -z "$ERR" ] || fail "stat_forecast off warned: $ERR"
expect 0 "" "stat_forecast on with law planned" -- set --bus main stat_forecast=on
[ -z "$ERR" ] || fail "stat_forecast on with law planned warned: $ERR"

step "assign: nothing changed, --efficiency, missing limits named by their options (item 4)"
wait_for 15 "cab2/16 (a config buffer) in equalization" \
  '[.channels[] | select(.channel == "cab2/16") | .role][0] == "equalization"' -- channels --role eq
expect 0 "" "re-assign without limits" -- assign cab2/16
[ "$OUT" = "cab2/16 was already assigned with these limits; nothing changed" ] || fail "re-assign said: $OUT"
expect 0 "" "assign --efficiency" -- assign cab2/16 --efficiency 0.92
[ "$OUT" = "cab2/16 was already assigned; limits updated: --efficiency 0.96 -> 0.92" ] ||
  fail "assign --efficiency said: $OUT (the demo rig's buffers have efficiency 0.96)"
ctl --json channels --role eq
[ "$(echo "$OUT" | jq '[.channels[] | select(.channel == "cab2/16") | .limits.efficiency][0]')" = 0.92 ] ||
  fail "efficiency of cab2/16 not applied: $OUT"
# Persisted as the base of the next assignment: the same again changes nothing.
expect 0 "" "re-assign after --efficiency" -- assign cab2/16
[ "$OUT" = "cab2/16 was already assigned with these limits; nothing changed" ] || fail "re-assign said: $OUT"
expect 1 "efficiency: must be within 0.5..1" "efficiency out of range" -- assign cab2/16 --efficiency 0.3
ctl --json channels --bus main --role test
TEST_CH=$(echo "$OUT" | jq -r '[.channels[] | .channel][0]')
[ "$TEST_CH" != null ] || fail "no test channel on main"
expect 1 "give --max-charge-W, --max-discharge-W, --v-min-V, --v-max-V \(invalid\)$" "no known limits" -- assign "$TEST_CH"
every_line_prefixed "no known limits"
expect 1 "give --max-discharge-W, --v-max-V \(invalid\)$" "some limits given" -- assign "$TEST_CH" --max-charge-W 100 \
  --v-min-V 40
ctl --json assign "$TEST_CH"  # with --json, the daemon's error object as it came, wire names and all
echo "$OUT" | jq -e '.ok == false and .error.code == "invalid" and (.error.missing | index("max_charge_W") != null)' \
  >/dev/null || fail "assign --json refusal: $OUT"

step "daemon unreachable (item 8)"
expect 3 "^eqctl: cannot connect to $WORK/none.sock" "unreachable, --json" -- --socket "$WORK/none.sock" status --json
echo "$OUT" | jq -e --arg s "$WORK/none.sock" \
  '.ok == false and .v == 1 and .error.code == "unreachable" and (.error.message | startswith("cannot connect to " + $s))' \
  >/dev/null || fail "unreachable --json printed no error object on stdout: '$OUT'"
# The same shape as a refusal's.
ctl --json assign cab1/99
REFUSAL_KEYS=$(echo "$OUT" | jq -c 'keys, (.error | keys - ["suggestions"])')
ctl --socket "$WORK/none.sock" --json assign cab1/99
[ "$(echo "$OUT" | jq -c 'keys, (.error | keys)')" = "$REFUSAL_KEYS" ] ||
  fail "unreachable object $(echo "$OUT" | jq -c .) has not the shape of a refusal ($REFUSAL_KEYS)"
expect 3 "" "unreachable, no --json" -- --socket "$WORK/none.sock" channels
[ -z "$OUT" ] || fail "unreachable without --json printed on stdout: $OUT"

step "PASS"
