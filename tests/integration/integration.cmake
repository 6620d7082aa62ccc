# End-to-end tests with the real binaries over loopback (label "integration").
add_executable(e2e_test integration/e2e_test.cpp)
target_link_libraries(e2e_test PRIVATE eqd_catch_main nlohmann_json::nlohmann_json)
target_compile_definitions(e2e_test PRIVATE EQD_BIN="$<TARGET_FILE:eqd>" EQSIM_BIN="$<TARGET_FILE:eqsim>"
                                            EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(e2e_test eqd eqsim)
catch_discover_tests(e2e_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:e2e:tsan" TIMEOUT 120)

add_executable(handover_test integration/handover_test.cpp)
target_link_libraries(handover_test PRIVATE eqd_catch_main eqd_daemon eqd_modbus_server)
catch_discover_tests(handover_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:tsan" TIMEOUT 60)

# The demo on a pseudo-terminal (issue #18 item 10): scripts/demo.sh --no-setup (no packages, no
# build) against this build's binaries, Ctrl-C after 4.5 s, in 80 and 200 columns; eqsim's live line
# never shares a line with the demo's or eqd's lines, the closing lines are labelled. About 15 s.
add_test(NAME demo_pty COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/demo_pty.py ${PROJECT_BINARY_DIR})
# alone: it fails on any warning of eqd, e.g. a read timed out while a build starved eqsim; CI runs it
# before a build starts beside the tests (scripts/test.sh).
set_tests_properties(demo_pty PROPERTIES LABELS "integration:alone" TIMEOUT 60)
