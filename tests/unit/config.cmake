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
catch_discover_tests(test_config PROPERTIES LABELS "unit")
