# Daemon services beside the control loop: the predictor thread and its learned.bin, the planner thread.
add_executable(daemon_unit_tests unit/daemon_predictor_test.cpp unit/daemon_planner_test.cpp)
target_link_libraries(daemon_unit_tests PRIVATE eqd_daemon eqd_catch_main)
catch_discover_tests(daemon_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:daemon:tsan")
