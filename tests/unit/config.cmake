# owned by the config area
add_executable(test_config
  ${CMAKE_CURRENT_LIST_DIR}/config_parse_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config_errors_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config_overrides_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config_shipped_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config_input_test.cpp
)
target_link_libraries(test_config PRIVATE eqd_config eqd_catch_main yaml-cpp)
# The shipped config and examples are tested in place, from the source tree.
target_compile_definitions(test_config PRIVATE EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
catch_discover_tests(test_config EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit")

# End to end with the real binaries (eqd --check-config on bad files; eqd + eqsim + eqctl on loopback:
# bad reloads, out-of-bounds API values, a reload that releases, a state file with a bad entry).
add_executable(config_faults_test ${CMAKE_CURRENT_LIST_DIR}/../integration/config_faults_test.cpp)
target_link_libraries(config_faults_test PRIVATE eqd_catch_main nlohmann_json::nlohmann_json)
target_compile_definitions(config_faults_test PRIVATE EQD_BIN="$<TARGET_FILE:eqd>" EQSIM_BIN="$<TARGET_FILE:eqsim>"
                                                      EQCTL_BIN="$<TARGET_FILE:eqctl>" EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(config_faults_test eqd eqsim eqctl)
catch_discover_tests(config_faults_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:faults" TIMEOUT 120)
