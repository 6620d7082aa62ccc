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
