# Daemon services beside the control loop: the predictor thread and its learned.bin, the planner thread.
# transport_plugin_test: a transport defined only in the test plugs in (registry, config, rig plan, Daemon).
add_executable(daemon_unit_tests unit/daemon_predictor_test.cpp unit/daemon_planner_test.cpp
                                 unit/transport_plugin_test.cpp unit/daemon_window_needs_test.cpp)
target_link_libraries(daemon_unit_tests PRIVATE eqd_daemon eqd_catch_main)
catch_discover_tests(daemon_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:daemon:tsan")
