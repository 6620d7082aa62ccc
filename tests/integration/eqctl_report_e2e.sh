#!/usr/bin/env bash
# `eqctl report` end to end with the real binaries (issue #16, acceptance): eqsim + eqd + eqctl, a run of
# a few minutes (REPORT_RUN_S, default 150 s: at least two whole minutes). Then eqsim is paused
# (SIGSTOP) after printing its grid meter (SIGUSR1): eqd's samples go stale and its bus counters stop.
# Checked: the history rows (sqlite3) and `eqctl report --json`'s totals hold the bus counters of
# `eqctl status` to 0.1 %; the report's saving per bus is the one eqsim's grid meter prints (within 2.5
# percentage points: eqsim meters bus-side truth from its own start, eqd sums the controllers' noisy
# battery-side readings from its start); csv and table agree; a tariff gives money; --format html
# renders in headless Chromium (report_html_chromium.sh); bad input is refused with a clear message:
# unknown bus, --from after --to, bad dates, a bad tariff file (FILE:LINE:COL).
# Usage: eqctl_report_e2e.sh EQSIM EQD EQCTL RIG_YAML. Needs jq, sqlite3, python3, chromium, unshare.
set -uo pipefail
EQSIM=$1 EQD=$2 EQCTL=$3 RIG=$4
RUN_S=${REPORT_RUN_S:-150}

WORK=$(mktemp -d /tmp/eqctl-report-XXXXXX)
SOCK=$WORK/run/eqd.sock
DB=$WORK/state/history.db
export EQD_SOCKET=$SOCK
SIM_PID="" EQD_PID=""
START=$SECONDS
HERE=$(cd "$(dirname "$0")" && pwd)

cleanup() {
  [ -n "$SIM_PID" ] && kill -CONT "$SIM_PID" 2>/dev/null
  for p in $EQD_PID $SIM_PID; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 60); do  # eqd waits up to shutdown_timeout_ms (2 s) for the stop acknowledgements
    alive=0
    for p in $EQD_PID $SIM_PID; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in $EQD_PID $SIM_PID; do kill -KILL "$p" 2>/dev/null; done
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

FAIL_LOGS="$WORK/eqd.log $WORK/eqsim.log"
FAIL_TAIL=30
CTL_TIMEOUT_S=20
WAIT_POLL_S=0.25
source "$HERE/eqctl_lib.sh"  # fail, step, ctl, wait_for, wait_answering
for tool in jq sqlite3 python3; do command -v $tool >/dev/null || fail "$tool is needed"; done

step "start eqsim and eqd"
"$EQSIM" --rig "$RIG" --base-port 0 --write-eqd-config "$WORK/eqd.yaml" --eqd-tau 2 -q \
  --report-file "$WORK/meter.json" >"$WORK/eqsim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 50); do [ -s "$WORK/eqd.yaml" ] && break; sleep 0.1; done
[ -s "$WORK/eqd.yaml" ] || fail "eqsim wrote no eqd config"
"$EQD" -c "$WORK/eqd.yaml" --set "api.socket=$SOCK" --set "state_dir=$WORK/state" --set metrics.enabled=false \
  --set control_loop.shutdown_timeout_ms=2000 >"$WORK/eqd.log" 2>&1 &
EQD_PID=$!
wait_answering "$EQD_PID" eqd
FROM=$(date '+%Y-%m-%dT%H:%M')  # the local minute eqd started in
wait_for 15 "config buffers in equalization" \
  '[.channels[] | select(.channel == "cab2/16" and .role == "equalization")] | length == 1' -- channels --role eq

step "run $RUN_S s"
sleep "$RUN_S"

step "eqsim prints its grid meter and pauses; eqd's counters stop"
kill -USR1 "$SIM_PID"
sleep 0.3
kill -STOP "$SIM_PID"
PREV=""
for _ in $(seq 40); do
  sleep 0.5
  ctl --json status
  [ "$RC" = 0 ] || fail "status: $ERR"
  NOW=$(echo "$OUT" | jq -c '[.buses[] | .energy]')
  [ "$NOW" = "$PREV" ] && break
  PREV=$NOW
done
[ "$NOW" = "$PREV" ] || fail "eqd's bus counters still move 20 s after eqsim paused"
STATUS=$OUT
METER=$(grep -A3 'eqsim: grid meter' "$WORK/eqsim.log")
[ -n "$METER" ] || fail "eqsim printed no grid meter on SIGUSR1"
echo "$METER"

step "wait for the minute to end: the recorder writes it"
TO=$(date -d '+2 minutes' '+%Y-%m-%dT%H:%M')
sleep $((62 - 10#$(date +%S)))
SQL_SUMS=$(sqlite3 "$DB" "SELECT bus, sum(grid_import_J + grid_export_J), sum(free_import_J + free_export_J), count(*) FROM energy_bus GROUP BY bus")
echo "$SQL_SUMS"

step "the history rows and eqctl report hold the bus counters to 0.1 %"
ctl report --json --from "$FROM" --to "$TO" --by hour
[ "$RC" = 0 ] || fail "eqctl report --json: rc $RC: $ERR"
REPORT=$OUT
for bus in main aux; do
  WITH=$(echo "$STATUS" | jq --arg b "$bus" '[.buses[] | select(.bus == $b) | .energy | .grid_import_J + .grid_export_J][0]')
  WITHOUT=$(echo "$STATUS" | jq --arg b "$bus" '[.buses[] | select(.bus == $b) | .energy | .without_eq_import_J + .without_eq_export_J][0]')
  ROW=$(echo "$SQL_SUMS" | grep "^$bus|")
  R_WITH=$(echo "$REPORT" | jq --arg b "$bus" '[.totals[] | select(.bus == $b) | .with_eq_kWh * 3600000][0]')
  R_WITHOUT=$(echo "$REPORT" | jq --arg b "$bus" '[.totals[] | select(.bus == $b) | .without_eq_kWh * 3600000][0]')
  awk -F'|' -v bus="$bus" -v w="$WITH" -v wo="$WITHOUT" -v rw="$R_WITH" -v rwo="$R_WITHOUT" '
    function off(a, b) { return (a > b ? a - b : b - a) / (b > 0 ? b : 1) }
    { printf "bus %s: counters %.1f J with, %.1f J without; rows %.1f / %.1f J (%d minutes); report %.1f / %.1f J\n",
             bus, w, wo, $2, $3, $4, rw, rwo
      if (wo <= 0 || off($2, w) > 0.001 || off($3, wo) > 0.001 || off(rw, w) > 0.001 || off(rwo, wo) > 0.001) exit 1 }' \
    <<<"$ROW" || fail "bus $bus: the history does not hold the bus counters to 0.1 %"
done
MINUTES=$(echo "$REPORT" | jq '[.totals[] | select(.bus == "main") | .minutes][0]')
[ "$MINUTES" -ge 2 ] || fail "only $MINUTES minute rows of bus main"

step "the report's saving is the one eqsim's grid meter prints"
for bus in main aux; do
  SIM_PCT=$(echo "$METER" | sed -n "s/.*bus $bus .*(\([0-9-]*\) % saved).*/\1/p")
  [ -n "$SIM_PCT" ] || fail "no saving of bus $bus in eqsim's grid meter: $METER"
  EQ_PCT=$(echo "$REPORT" | jq --arg b "$bus" '[.totals[] | select(.bus == $b) | .saved_pct][0]')
  awk -v s="$SIM_PCT" -v e="$EQ_PCT" -v bus="$bus" 'BEGIN {
    printf "bus %s: eqsim grid meter %d %% saved, eqctl report %.2f %% saved\n", bus, s, e
    d = s - e; if (d < 0) d = -d; exit (d <= 2.5 ? 0 : 1) }' || fail "bus $bus: eqctl report's saving is not eqsim's"
done

step "table, csv, a tariff's money, and json agree"
ctl report --from "$FROM" --to "$TO" --by day --bus main
[ "$RC" = 0 ] || fail "report table: rc $RC $ERR"
echo "$OUT"
echo "$OUT" | grep -q "^PERIOD *BUS *WITH kWh" || fail "report table header: $OUT"
[ "$(echo "$OUT" | grep -c ' aux ')" = 0 ] || fail "--bus main shows bus aux: $OUT"
ctl report --from "$FROM" --to "$TO" --by day --format csv
[ "$RC" = 0 ] || fail "report csv: rc $RC $ERR"
CSV_SAVED=$(echo "$OUT" | awk -F, '$1 == "total" && $3 == "main" { print $7 }')
JSON_SAVED=$(echo "$REPORT" | jq '[.totals[] | select(.bus == "main") | .saved_kWh][0]')
awk -v c="$CSV_SAVED" -v j="$JSON_SAVED" 'BEGIN { d = c - j; if (d < 0) d = -d; exit (c != "" && d < 0.0001 ? 0 : 1) }' ||
  fail "csv total saving '$CSV_SAVED' kWh is not json's $JSON_SAVED"
cat >"$WORK/tariff.yaml" <<'TARIFF'
currency: EUR
energy:
  - {days: mon-fri, from: "07:00", to: "21:00", price_per_kWh: 0.40}
  - price_per_kWh: 0.25
demand_price_per_kW: 12
TARIFF
ctl report --json --from "$FROM" --to "$TO" --tariff "$WORK/tariff.yaml" --buffer-capacity-kWh 10
[ "$RC" = 0 ] || fail "report with a tariff: rc $RC $ERR"
echo "$OUT" | jq -e '.currency == "EUR" and all(.totals[]; (.money_saved | type == "number")
  and (.equivalent_full_cycles | type == "number") and (.peak_import_kW | type == "number"))' >/dev/null ||
  fail "a tariff report without money, cycles or peaks: $(echo "$OUT" | jq -c .totals)"
echo "$OUT" | jq -c '.totals[] | {bus, saved_kWh, saved_pct, peak_import_kW, without_eq_peak_import_kW, buffer_throughput_kWh, equivalent_full_cycles, money_saved}'

step "--format html renders in headless Chromium, naming no URL"
ctl report --from "$FROM" --to "$TO" --by hour --format html --tariff "$WORK/tariff.yaml"
[ "$RC" = 0 ] || fail "report html: rc $RC $ERR"
echo "$OUT" >"$WORK/report.html"
"$HERE/report_html_chromium.sh" "$WORK/report.html" "$WORK" || fail "the html report does not render"

step "bad input: unknown bus, --from after --to, bad dates, a bad tariff"
expect() {  # expect RC PATTERN ARGS...
  local want=$1 pattern=$2
  shift 2
  ctl report "$@"
  [ "$RC" = "$want" ] || fail "eqctl report $*: rc $RC, expected $want: $ERR"
  echo "$ERR" | grep -q -- "$pattern" || fail "eqctl report $*: '$ERR' does not say '$pattern'"
}
expect 1 'unknown bus "nosuch"' --bus nosuch
expect 2 'is not before --to' --from 2026-12-03 --to 2026-12-01
expect 2 'is not before --to' --from 2026-12-03 --to 2026-12-03
expect 2 "'2026-02-30' is not a local date" --from 2026-02-30
expect 2 "'yesterday' is not a local date" --to yesterday
expect 2 'by' --by fortnight
printf 'energy:\n  - from: "7:00"\n    to: "25:00"\n    price_per_kWh: 0.3\n' >"$WORK/bad.yaml"
expect 2 "$WORK/bad.yaml:3:9: energy\[0\].to: '25:00' is not a time of day" --tariff "$WORK/bad.yaml"
expect 2 "cannot read the tariff file" --tariff "$WORK/none.yaml"
kill -0 "$EQD_PID" 2>/dev/null || fail "eqd died"
echo "PASS ($((SECONDS - START)) s)"
