# eqctl + control API end to end with the real binaries (eqsim + eqd + eqctl over a Unix socket and
# loopback Modbus). Needs root (runs eqctl as nobody through setpriv), jq and socat.
add_test(NAME eqctl_e2e
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_e2e.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml)
set_tests_properties(eqctl_e2e PROPERTIES LABELS "integration" TIMEOUT 90)

# Fault catalogue, control socket: idle and hostile local clients against the real eqd and eqctl
# (connection limits, reserved slots, busy, idle timeout, duplicate keys). Root for the other uids.
add_executable(control_limits_e2e_test integration/control_limits_e2e_test.cpp)
target_link_libraries(control_limits_e2e_test PRIVATE eqd_catch_main nlohmann_json::nlohmann_json)
target_compile_definitions(control_limits_e2e_test PRIVATE EQD_BIN="$<TARGET_FILE:eqd>" EQCTL_BIN="$<TARGET_FILE:eqctl>")
add_dependencies(control_limits_e2e_test eqd eqctl)
catch_discover_tests(control_limits_e2e_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:faults" TIMEOUT 60)

# eqctl's command line against the real eqd + eqsim (issue #18): global options anywhere, --version,
# unknown commands, usage errors prefixed, set/assign in words, --efficiency, unreachable with --json.
add_test(NAME eqctl_cli
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_cli.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml ${PROJECT_VERSION})
set_tests_properties(eqctl_cli PROPERTIES LABELS "integration" TIMEOUT 60)

# eqctl watch on a pseudo-terminal (header, timestamp, nothing scrolls off 24 rows; plain when piped).
add_test(NAME eqctl_watch
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_watch.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml)
# alone: timed frames on a pseudo-terminal; CI runs it before a build starts beside the tests (scripts/test.sh).
set_tests_properties(eqctl_watch PROPERTIES LABELS "integration:alone" TIMEOUT 60)

# Shell completion with names from the running daemon: bash (function as bash calls it, then bash -i on
# a pseudo-terminal) and zsh (zsh -i with compinit; skipped when zsh is not installed).
foreach(_sh bash zsh)
  add_test(NAME eqctl_completion_${_sh}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_completion.sh ${_sh} $<TARGET_FILE:eqsim>
                   $<TARGET_FILE:eqd> $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml
                   ${PROJECT_SOURCE_DIR}/scripts/eqctl-completion.${_sh})
  # Label shell: what they test is the bash/zsh scripts; the C++ they drive (eqd, eqctl's name lists) is
  # under ASan in eqctl_cli and eqctl_e2e, so the ASan stage leaves them out (45 s there).
  set_tests_properties(eqctl_completion_${_sh} PROPERTIES LABELS "integration;shell" TIMEOUT 90 SKIP_RETURN_CODE 77)
endforeach()

# Learned forecasts end to end: eqsim's step and cycle numbers over Modbus, the predictor thread, the
# skill gate, eqctl's SKILL column and status, learned.bin across a restart (issue #14).
add_test(NAME eqctl_learning
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_learning.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${CMAKE_CURRENT_SOURCE_DIR}/integration/rigs/learning_fast.yaml)
set_tests_properties(eqctl_learning PROPERTIES LABELS "integration" TIMEOUT 120)

# Law planned end to end: the planner thread, plans applied on the announced demo rig, bus balanced.
add_test(NAME eqctl_planned
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_planned.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml)
set_tests_properties(eqctl_planned PROPERTIES LABELS "integration" TIMEOUT 90)

# Statistical forecasts end to end: stat_forecast on a rig that announces nothing, in use once its gates
# open (after 120 s), shown, in use again within seconds of a restart (stat_forecast.bin) and turned off.
# Label slow: about 2 min, mostly waiting for the shadow gate's first 120 s; the normal stage runs it, the
# ASan stage not (core_stat_forecast_test and daemon_predictor_test cover its C++ under ASan: the fit, the
# gate, save and restore, the predictor thread).
add_test(NAME eqctl_stat
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_stat.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${CMAKE_CURRENT_SOURCE_DIR}/integration/rigs/learning_fast.yaml)
set_tests_properties(eqctl_stat PROPERTIES LABELS "integration;slow" TIMEOUT 260)

# The audit log end to end (issue #16): the test's own release/assign under its uid in `eqctl audit
# --json`, a refusal as nobody, start and SIGHUP reload with the sender, kill -9 during writes leaves a
# database that passes integrity_check. Root (setpriv), jq, socat, sqlite3.
add_test(NAME eqctl_audit_e2e
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_audit_e2e.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml)
set_tests_properties(eqctl_audit_e2e PROPERTIES LABELS "integration" TIMEOUT 90)

# `eqctl report` end to end (issue #16 acceptance): a run of 150 s, the history rows and the report hold
# the bus counters to 0.1 %, the saving is eqsim's grid meter's, the html renders in headless Chromium,
# bad input is refused. jq, sqlite3, python3, chromium, unshare (root or user namespaces).
add_test(NAME eqctl_report_e2e
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_report_e2e.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml)
# Label slow: about 3.5 min, mostly waiting for whole minutes of history; the normal stage runs it, the
# ASan stage not (history_report_test and control_report_test cover its C++ under ASan).
set_tests_properties(eqctl_report_e2e PROPERTIES LABELS "integration;slow" TIMEOUT 360)

# Backup and restore end to end (issue #16): backup while eqd runs (admin only, audited), --restore
# refused while running and for a tampered archive, wipe + restore + start brings rows, state and cache
# back. Root (setpriv), jq, sqlite3, tar.
add_test(NAME eqctl_backup_e2e
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_backup_e2e.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml)
set_tests_properties(eqctl_backup_e2e PROPERTIES LABELS "integration" TIMEOUT 90)
