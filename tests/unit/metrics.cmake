# Metrics: collector and exporter (unit, loopback HTTP), names used by the dashboard/rules/docs, and
# the shipped Prometheus rules checked and unit-tested by promtool (Debian package `prometheus`).
add_executable(metrics_unit_tests unit/metrics_collector_test.cpp unit/metrics_names_test.cpp
                                  unit/metrics_text_format_test.cpp)
target_link_libraries(metrics_unit_tests PRIVATE eqd_metrics eqd_catch_main yaml-cpp nlohmann_json::nlohmann_json)
target_compile_definitions(metrics_unit_tests PRIVATE EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}" EQD_TEST_VERSION="${PROJECT_VERSION}")
catch_discover_tests(metrics_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:metrics" TIMEOUT 60)

# Without promtool these tests report "skipped" (exit 77), never "passed".
find_program(EQD_PROMTOOL promtool)
set(_eqd_promtool_run ${CMAKE_CURRENT_SOURCE_DIR}/integration/metrics_promtool.sh)
add_test(NAME metrics_promtool_check_rules
         COMMAND ${_eqd_promtool_run} "${EQD_PROMTOOL}" check rules ${PROJECT_SOURCE_DIR}/config/prometheus/eqd-alerts.yml)
add_test(NAME metrics_promtool_test_rules
         COMMAND ${_eqd_promtool_run} "${EQD_PROMTOOL}" test rules ${PROJECT_SOURCE_DIR}/config/prometheus/eqd-alerts.test.yml)
add_test(NAME metrics_promtool_check_config
         COMMAND ${_eqd_promtool_run} "${EQD_PROMTOOL}" check config ${PROJECT_SOURCE_DIR}/config/prometheus/prometheus.yml)
set_tests_properties(metrics_promtool_check_rules metrics_promtool_test_rules metrics_promtool_check_config
                     PROPERTIES LABELS "unit:metrics" SKIP_RETURN_CODE 77 TIMEOUT 30)
