# Metrics end to end: eqsim + eqd over loopback, promtool on the live exposition, a real Prometheus
# server scraping eqd and evaluating the shipped rules. Skipped (77) without Debian's `prometheus`.
add_executable(metrics_prometheus_test integration/metrics_prometheus_test.cpp)
target_link_libraries(metrics_prometheus_test PRIVATE eqd_metrics eqd_catch_main nlohmann_json::nlohmann_json)
target_compile_definitions(metrics_prometheus_test PRIVATE EQD_BIN="$<TARGET_FILE:eqd>" EQSIM_BIN="$<TARGET_FILE:eqsim>"
                                                          EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(metrics_prometheus_test eqd eqsim)
catch_discover_tests(metrics_prometheus_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:metrics" SKIP_RETURN_CODE 77 TIMEOUT 120)

# Fault catalogue, metrics endpoint: /metrics under idle and slow-loris clients, and eqd started
# while metrics.listen is taken (controls anyway, reports it, binds when free).
add_executable(metrics_limits_e2e_test integration/metrics_limits_e2e_test.cpp)
target_link_libraries(metrics_limits_e2e_test PRIVATE eqd_metrics eqd_catch_main nlohmann_json::nlohmann_json)
target_compile_definitions(metrics_limits_e2e_test PRIVATE EQD_BIN="$<TARGET_FILE:eqd>" EQCTL_BIN="$<TARGET_FILE:eqctl>")
add_dependencies(metrics_limits_e2e_test eqd eqctl)
catch_discover_tests(metrics_limits_e2e_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:metrics:faults" TIMEOUT 90)
