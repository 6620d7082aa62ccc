# owned by the io/neware area: the Neware BTS transport (read only, TCP/XML API).
# The protocol without a network: the bounded XML parser, the requests, the decoding of replies.
add_executable(neware_protocol_test unit/neware_protocol_test.cpp)
target_link_libraries(neware_protocol_test PRIVATE eqd_neware eqd_catch_main)
catch_discover_tests(neware_protocol_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:neware")

# Its keys in the configuration, the rig plan, and the refusal of its channels as buffers.
add_executable(neware_config_test unit/neware_config_test.cpp)
target_link_libraries(neware_config_test PRIVATE eqd_daemon eqd_config eqd_catch_main)
catch_discover_tests(neware_config_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:neware:config")

# The client against the BTS-like server (sim/bts_server.hpp): states, step and cycle numbers, faults
# (malformed, partial, oversized, silent, slowloris), reconnect.
add_executable(neware_client_test integration/neware_client_test.cpp)
target_link_libraries(neware_client_test PRIVATE eqd_neware eqd_bts_server eqd_catch_main)
catch_discover_tests(neware_client_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:neware:tsan" TIMEOUT 90)

# End to end: the real eqd reads the e2e rig's tests through eqsim --bts and converges with cab2's
# buffers over Modbus, and with eqsim's SunSpec storage as the only buffer (its SunSpec meter near 0 W);
# a BTS channel named as a buffer is refused.
add_executable(neware_e2e_test integration/neware_e2e_test.cpp)
target_link_libraries(neware_e2e_test PRIVATE nlohmann_json::nlohmann_json PkgConfig::MODBUS eqd_catch_main)
target_compile_definitions(neware_e2e_test PRIVATE EQD_BIN="$<TARGET_FILE:eqd>" EQSIM_BIN="$<TARGET_FILE:eqsim>"
                                                   EQCTL_BIN="$<TARGET_FILE:eqctl>" EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(neware_e2e_test eqd eqsim eqctl)
catch_discover_tests(neware_e2e_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:neware" TIMEOUT 120)

# The BTS-like server itself, with a raw socket and requests shaped as the public clients send them.
add_executable(bts_server_test unit/bts_server_test.cpp)
target_link_libraries(bts_server_test PRIVATE eqd_bts_server eqd_catch_main)
catch_discover_tests(bts_server_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:sim:neware" TIMEOUT 30)
