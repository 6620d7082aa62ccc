# owned by the modbus area
# Pure codec / planner / map validation tests.
add_executable(modbus_codec_test unit/modbus_codec_test.cpp unit/link_error_test.cpp)
target_link_libraries(modbus_codec_test PRIVATE eqd_modbus eqd_catch_main)
catch_discover_tests(modbus_codec_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit")

# Poller and simulator server over 127.0.0.1 sockets (also with the plant model behind the server:
# eqsim's RigBackend, for announced forecasts end to end).
add_executable(modbus_poller_test unit/modbus_poller_test.cpp)
target_link_libraries(modbus_poller_test PRIVATE eqd_modbus eqd_modbus_server eqd_rig_backend eqd_catch_main)
catch_discover_tests(modbus_poller_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:modbus:tsan" TIMEOUT 30)

# RTU for real over a socat pty pair; exits 77 (skipped) only when socat is missing.
add_executable(modbus_rtu_test unit/modbus_rtu_test.cpp)
target_link_libraries(modbus_rtu_test PRIVATE eqd_modbus eqd_modbus_server eqd_catch_main)
catch_discover_tests(modbus_rtu_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration" SKIP_RETURN_CODE 77 TIMEOUT 30)

# Custom maps of the YAML configuration (errors with file:line): forecast_power, cmd_lease against the
# buses' lease_ms, profile_version against expected_profile_version (through the rig plan).
add_executable(modbus_map_config_test unit/modbus_map_config_test.cpp)
target_link_libraries(modbus_map_config_test PRIVATE eqd_config eqd_modbus eqd_daemon eqd_catch_main)
catch_discover_tests(modbus_map_config_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit")
