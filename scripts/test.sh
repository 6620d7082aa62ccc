#!/usr/bin/env bash
# Sets up everything (missing Debian packages, builds) and runs the whole test suite under CTest:
#   1. the normal build (RelWithDebInfo): every test, every label (unit, scenario, integration, stress,
#      vm, systemd, ...); the benchmarks are built too, so that they cannot rot;
#   2. an ASan+UBSan build: every test but those that boot a VM (label vm/systemd), the slow ones (label
#      slow), the PostgreSQL one (label postgresql: libpq is not instrumented; most of its time is
#      starting the server) and the shell-completion ones (label shell: they test bash/zsh scripts);
#      the tests' own code is compiled at -O0 there (tests/CMakeLists.txt), the code under test at -O1;
#      UBSan's costly vptr/null/alignment checks only in the control core and the parsers of untrusted
#      bytes (CMakeLists.txt: they doubled the other sources' compile time);
#   3. a TSan build of the concurrent parts: the tests labelled tsan (control core, pollers, history writer, control
#      API server, handover, eqd + eqsim end to end).
# Usage: scripts/test.sh [--only normal|asan|tsan] [--jobs N]
# Ends with one line "total: N passed, M failed"; exit status 0 only if every stage passed.
set -uo pipefail
cd "$(dirname "$0")/.."

only=""
jobs=$(nproc)
while (($#)); do
  case "$1" in
    --only) only="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup.sh --deps-only --with all || exit 1

passed=0
failed=0
status=0
log_dir=build-logs
mkdir -p "$log_dir"

# stage NAME BUILD_DIR "CMAKE ARGS" "BUILD TARGETS (empty: all)" "CTEST ARGS"
stage() {
  local name=$1 dir=$2 cmake_args=$3 targets=$4 ctest_args=$5
  [ -n "$only" ] && [ "$only" != "$name" ] && return 0
  echo "=== stage $name: configure and build in $dir"
  local t0=$SECONDS
  # shellcheck disable=SC2086
  # eval: the arguments may carry a quoted value with a space (e.g. -DCMAKE_CXX_FLAGS_DEBUG='-O1 -g1').
  if ! eval "cmake -S . -B \"$dir\" $cmake_args" >"$log_dir/$name-configure.log" 2>&1; then
    tail -n 30 "$log_dir/$name-configure.log"; echo "stage $name: configure failed"; status=1; failed=$((failed + 1)); return
  fi
  local target_args=()
  for t in $targets; do target_args+=(--target "$t"); done
  if ! cmake --build "$dir" -j"$jobs" "${target_args[@]}" >"$log_dir/$name-build.log" 2>&1; then
    grep -E "error|Error" "$log_dir/$name-build.log" | head -n 40; echo "stage $name: build failed"
    status=1; failed=$((failed + 1)); return
  fi
  echo "=== stage $name: built in $((SECONDS - t0)) s; running tests"
  local out="$log_dir/$name-ctest.log"
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 600 $ctest_args) 2>&1 | tee "$out" | \
    grep -E "^ *[0-9]+/[0-9]+ Test|tests passed|tests failed|Total Test time|\*\*\*|FAILED" || true
  local line p f
  line=$(grep -E "[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+" "$out" | tail -n 1)
  if [ -z "$line" ]; then
    echo "stage $name: ctest did not report a result"; status=1; failed=$((failed + 1)); return
  fi
  f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  p=$(( $(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line") - f ))
  passed=$((passed + p))
  failed=$((failed + f))
  [ "$f" -eq 0 ] || status=1
  echo "=== stage $name: $p passed, $f failed ($((SECONDS - t0)) s)"
}

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# Light debug info (-g1: line tables, enough for backtraces and the dbgsym package of package_lintian)
# compiles a quarter faster than -g (server.cpp 28 -> 21 s, a test file 19 -> 14 s): CI stays well
# inside its time on 2 cores. A packaged or local build keeps CMake's -O2 -g.
stage normal build-test "-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2\ -g1\ -DNDEBUG" "" ""
# Sanitizer builds at -O1 (what ASan/TSan recommend) without debug info: a report names each frame's
# function from the symbol table (no file:line; rebuild with -g1 to read one), and the sources compile
# 13-21 % faster than with -g1 (control/server.cpp under ASan+UBSan 51.0 -> 44.3 s, a test file at -O0
# 20.1 -> 15.8 s): CI must stay under 40 minutes on 2 cores.
san_flags="-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O1\ -g0 -DEQD_BUILD_BENCH=OFF"
stage asan build-asan "$san_flags -DEQD_SANITIZE=address" "" "-LE vm|systemd|slow|postgresql|shell"
stage tsan build-tsan "$san_flags -DEQD_SANITIZE=thread" \
  "eqd eqsim core_unit_tests core_alloc_test core_stress_test core_planner_test modbus_poller_test sunspec_client_test sunspec_meter_test neware_client_test control_unit_tests daemon_unit_tests history_unit_tests handover_test e2e_test" \
  "-L tsan"

echo "total: $passed passed, $failed failed"
exit $status
