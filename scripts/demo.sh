#!/usr/bin/env bash
# The demo: sets up (packages + build), starts the simulated rig (eqsim, 4 cyclers x 16 channels on
# loopback Modbus TCP) and eqd, and shows per bus the net power the grid would see without
# equalization and what it sees with it. Ctrl-C stops eqd cleanly (buffers to 0 W, out of
# equalization), then eqsim, which prints the grid energy with and without equalization.
#   scripts/demo.sh [--rig FILE] [--duration SECONDS] [--keep-state] [--no-setup] [--build-dir DIR] [--run-dir DIR]
# Each run starts from a clean state (build/demo/state.json removed) unless --keep-state is given, so that
# a parameter set with eqctl in one run does not change the next demo.
# --no-setup skips scripts/setup.sh (no package installation, no build) and runs the binaries already
# built in --build-dir (default build); --run-dir (default BUILD_DIR/demo) holds the log, socket and state.
# The demo's pseudo-terminal test (tests/integration/demo_pty.py) runs it so.
set -euo pipefail
cd "$(dirname "$0")/.."
rig=config/rigs/demo.yaml
duration=0
keep_state=0
setup=1
build=build
run=""
while (($#)); do
  case "$1" in
    --rig) rig="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --keep-state) keep_state=1 ;;
    --no-setup) setup=0 ;;
    --build-dir) build="$2"; shift ;;
    --run-dir) run="$2"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

if ((setup)); then
  bash scripts/setup.sh --build-dir "$build"
else
  for b in "$build/eqsim" "$build/src/app/eqd"; do
    [ -x "$b" ] || { echo "demo: --no-setup: $b is not built (run scripts/setup.sh)" >&2; exit 1; }
  done
fi
build=$(cd "$build" && pwd)
run=${run:-$build/demo}
mkdir -p "$run"
rm -f "$run/eqd.yaml" "$run/eqd.sock"
((keep_state)) || rm -f "$run/state.json" "$run"/state.json.* "$run/controllers-cache.json"

# Each in its own session: Ctrl-C reaches only this script, which stops eqd first (so that it can still
# reach the controllers to stop the buffers), then eqsim.
setsid "$build/eqsim" --rig "$rig" --base-port 0 --write-eqd-config "$run/eqd.yaml" &
sim=$!
for _ in $(seq 50); do [ -s "$run/eqd.yaml" ] && break; sleep 0.1; done
[ -s "$run/eqd.yaml" ] || { echo "demo: eqsim did not start" >&2; kill "$sim" 2>/dev/null; exit 1; }

# api.group and api.admin_group: the invoking user's own group, which exists on every machine (the package creates 'eqd').
setsid "$build/src/app/eqd" --config "$run/eqd.yaml" --set "state_dir=$run" --set "api.socket=$run/eqd.sock" \
  --set "api.group=$(id -gn)" --set "api.admin_group=$(id -gn)" >"$run/eqd.log" 2>&1 &
eqd=$!
sleep 1
if ! kill -0 "$eqd" 2>/dev/null; then
  echo "demo: eqd did not start:" >&2; cat "$run/eqd.log" >&2
  kill -TERM "$sim" 2>/dev/null; wait "$sim" 2>/dev/null; exit 1
fi
# eqsim's live line (redrawn in place with CR, no newline) is on the terminal's last line by now: start
# each of the demo's own lines on a cleared line, so that the two never share one.
say() {
  if [ -t 1 ]; then printf '\r\033[K%s\n' "$*"; else printf '%s\n' "$*"; fi
}
ctl="$build/src/cli/eqctl"
[[ $ctl == "$PWD"/* ]] && ctl="./${ctl#"$PWD"/}"
say "demo: eqd running (log: $run/eqd.log; try: $ctl --socket $run/eqd.sock status)"
say "demo: buffers follow with tau_s = 15 s: watch 'with eq' approach 0 kW within a minute. Ctrl-C stops."

stopped=0
stop() {
  ((stopped)) && return
  stopped=1
  trap - INT TERM
  echo
  kill -TERM "$eqd" 2>/dev/null && wait "$eqd" 2>/dev/null || true
  # eqsim's live line may be on the terminal's last line again: eqd's closing log lines likewise.
  [ -t 1 ] || echo
  tail -n 2 "$run/eqd.log" | while IFS= read -r line; do say "$line"; done
  kill -TERM "$sim" 2>/dev/null && wait "$sim" 2>/dev/null || true
}
trap stop INT TERM
if ((duration > 0)); then
  sleep "$duration" &
  wait $! || true
else
  wait "$sim" || true
fi
stop
