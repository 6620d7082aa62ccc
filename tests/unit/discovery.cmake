# Discovery: TXT records, connection cache, manager (debounce, adoption, expiry) without avahi-daemon.
add_executable(discovery_unit_tests unit/discovery_txt_test.cpp unit/discovery_cache_test.cpp unit/discovery_config_test.cpp
                                    unit/discovery_manager_test.cpp unit/discovery_bus_test.cpp)
# eqd_daemon: the bus rules are checked through the rig plan and a real ControlCore too.
target_link_libraries(discovery_unit_tests PRIVATE eqd_discovery eqd_daemon eqd_catch_main)
catch_discover_tests(discovery_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:discovery" TIMEOUT 60)
